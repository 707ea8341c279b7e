// The changed files of ready tasks, as `parex/diff` answers them: read-only `parex-diff:`
// documents for VS Code's diff editor, and the files listed under each ready task in the view.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as lsp_ext from './lsp_ext';
import { parseDiffResult, type DiffResult } from './protocol';
import { diffDocument, diffTitle, diffUriParts, DIFF_SCHEME, parseDiffUri, type DiffSide } from './reviewDiff';

export class ReviewDiffs implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** One `parex/diff` per ready task: its answer does not change while the task stays ready. */
  private readonly cache = new Map<string, Promise<DiffResult>>();

  constructor(private readonly client: () => LanguageClient | undefined) {}

  /** The task's diff, asked once while it is ready. */
  get(runId: string, taskId: string): Promise<DiffResult> {
    const key = `${runId}/${taskId}`;
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.fetch(runId, taskId);
      this.cache.set(key, pending);
      pending.catch(() => this.cache.delete(key)); // a failed ask is asked again next time
    }
    return pending;
  }

  /** The task left `ready` (accepted, rejected, sent back): its next diff is a new one. */
  forget(runId: string, taskId: string): void {
    if (!this.cache.delete(`${runId}/${taskId}`)) return;
    // Diff editors still open on the task show its new state (or say it has none) when asked again.
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme !== DIFF_SCHEME) continue;
      const ref = parseDiffUri(doc.uri.path, doc.uri.query);
      if (ref?.runId === runId && ref.taskId === taskId) this.changed.fire(doc.uri);
    }
  }

  private async fetch(runId: string, taskId: string): Promise<DiffResult> {
    const client = this.client();
    if (!client) throw new Error('the parex language server is not running');
    const raw: unknown = await client.sendRequest(lsp_ext.diff, { runId, taskId });
    const diff = parseDiffResult(raw);
    if (!diff) throw new Error(`unexpected answer to ${lsp_ext.diff.method}: ${JSON.stringify(raw)}`);
    return diff;
  }

  uri(runId: string, taskId: string, side: DiffSide, path: string): vscode.Uri {
    return vscode.Uri.from(diffUriParts({ runId, taskId, side, path }));
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = parseDiffUri(uri.path, uri.query);
    if (!ref) throw new Error(`not a parex diff document: ${uri.toString()}`);
    const text = diffDocument(await this.get(ref.runId, ref.taskId), ref);
    if (text === undefined) throw new Error(`task ${ref.taskId} of run ${ref.runId} did not change ${ref.path}`);
    return text;
  }

  /** Opens VS Code's diff editor on one changed file: the base on the left, the task's on the right. */
  async open(runId: string, taskId: string, path: string): Promise<void> {
    const diff = await this.get(runId, taskId);
    const file = diff.files.find((f) => f.path === path);
    if (!file) throw new Error(`task ${taskId} did not change ${path}`);
    await vscode.commands.executeCommand(
      'vscode.diff',
      this.uri(runId, taskId, 'base', path),
      this.uri(runId, taskId, 'result', path),
      diffTitle(taskId, file, diff.baseBranch),
      { preview: true },
    );
  }

  dispose(): void {
    this.changed.dispose();
    this.cache.clear();
  }
}

export { DIFF_SCHEME };
