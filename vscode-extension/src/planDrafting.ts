// "Plan Parallel Tasks…": asks for a request, sends `parex/plan` under a cancellable progress
// notification, opens the draft beside the editor as an untitled `plan.parex.toml` (nothing is
// written until it is saved) and shows the problems left as diagnostics on it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import * as lsp_ext from './lsp_ext';
import { draftPlanPath, parsePlanDraft, planDraftMessage, requestFiles, shiftProblems, type PlanDraft } from './planDraft';
import type { Range } from './protocol';
import { workFolder } from './serverTools';

const SEVERITY = [vscode.DiagnosticSeverity.Error, vscode.DiagnosticSeverity.Warning, vscode.DiagnosticSeverity.Information, vscode.DiagnosticSeverity.Hint];

function fromRange(r: vscode.Range): Range {
  return { start: { line: r.start.line, character: r.start.character }, end: { line: r.end.line, character: r.end.character } };
}

export class PlanDrafting implements vscode.Disposable {
  /** The problems the planner left in a draft, until it is saved or closed. */
  readonly diagnostics = vscode.languages.createDiagnosticCollection('parex-plan');
  private readonly subscriptions: vscode.Disposable[] = [];
  /** The version of each draft when its problems were set: a later version is the person's edit. */
  private readonly versions = new Map<string, number>();

  constructor(private readonly ctx: Ctx) {
    this.subscriptions.push(
      // The server does not lint an unsaved draft: its problems stay, moved along with the person's edits.
      vscode.workspace.onDidChangeTextDocument((e) => {
        const key = e.document.uri.toString();
        const set = this.versions.get(key);
        if (set === undefined || e.document.version <= set || e.contentChanges.length === 0) return;
        const changes = e.contentChanges.map((c) => ({ range: fromRange(c.range), text: c.text }));
        const kept = shiftProblems(
          (this.diagnostics.get(e.document.uri) ?? []).map((d) => ({ range: fromRange(d.range), diagnostic: d })),
          changes,
        );
        this.diagnostics.set(
          e.document.uri,
          kept.map(({ range, diagnostic }) => {
            diagnostic.range = new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
            return diagnostic;
          }),
        );
      }),
      // Saved (a new file, which the server lints) or closed: the draft's problems go.
      vscode.workspace.onDidCloseTextDocument((doc) => {
        this.diagnostics.delete(doc.uri);
        this.versions.delete(doc.uri.toString());
      }),
    );
  }

  dispose(): void {
    this.diagnostics.dispose();
    for (const s of this.subscriptions) s.dispose();
  }

  async planParallelTasks(): Promise<void> {
    const folder = workFolder();
    if (!folder || folder.uri.scheme !== 'file') {
      void vscode.window.showWarningMessage('parex: open a folder first: the plan is drafted for its workspace.');
      return;
    }
    const request = await vscode.window.showInputBox({
      title: 'Plan Parallel Tasks',
      prompt: 'What should the plan do? The planning agent of the workspace drafts the tasks.',
      placeHolder: 'e.g. add rate limiting to the API',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'Say what the plan should do.' : undefined),
    });
    if (request === undefined) return;
    const root = folder.uri.fsPath;
    const open = new Set(vscode.workspace.textDocuments.map((d) => d.uri.fsPath));
    const target = draftPlanPath(root, (f) => fs.existsSync(f) || open.has(f), path.sep);
    const active = vscode.window.activeTextEditor?.document;
    const files = requestFiles(root, active?.uri.scheme === 'file' ? active.uri.fsPath : undefined, path.sep);
    const params = { request: request.trim(), uri: vscode.Uri.file(target).toString(), ...(files.length > 0 ? { files } : {}) };
    const client = await this.ctx.client.start();
    if (!client) return;
    let draft: PlanDraft;
    try {
      const raw = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Drafting a plan…', cancellable: true },
        // No timeout: drafting takes as many rounds with the model as it needs. Cancel sends $/cancelRequest.
        (_progress, token) => client.sendRequest(lsp_ext.plan, params, token),
      );
      draft = parsePlanDraft(raw);
    } catch (err) {
      if (err instanceof vscode.CancellationError || (err as { code?: unknown })?.code === -32800) {
        void vscode.window.showInformationMessage('parex: drafting the plan was cancelled.');
        return;
      }
      this.failed(err);
      return;
    }
    await this.openDraft(target, draft);
  }

  private async openDraft(target: string, draft: PlanDraft): Promise<void> {
    // An untitled document with the plan's path: saving writes it there without asking for a name,
    // and its name makes it a plan file (the server lints it, Run Parallel Tasks runs it).
    const uri = vscode.Uri.file(target).with({ scheme: 'untitled' });
    const doc = await vscode.workspace.openTextDocument(uri);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(0, 0, doc.lineCount, 0), draft.text);
    await vscode.workspace.applyEdit(edit);
    const languages = await vscode.languages.getLanguages();
    const shown = languages.includes('toml') ? await vscode.languages.setTextDocumentLanguage(doc, 'toml') : doc;
    await vscode.window.showTextDocument(shown, { viewColumn: vscode.ViewColumn.Beside, preview: false });
    this.versions.set(uri.toString(), shown.version);
    this.diagnostics.set(
      uri,
      draft.valid
        ? []
        : draft.problems.map((p) => {
            const d = new vscode.Diagnostic(
              new vscode.Range(p.range.start.line, p.range.start.character, p.range.end.line, p.range.end.character),
              p.message,
              SEVERITY[p.severity - 1],
            );
            d.source = 'parex plan';
            if (p.code !== undefined) d.code = p.code;
            return d;
          }),
    );
    const name = path.basename(target);
    const message = planDraftMessage(draft, name);
    if (draft.valid) void vscode.window.showInformationMessage(message);
    else
      void vscode.window.showWarningMessage(message, 'Show Problems').then((c) => {
        if (c) void vscode.commands.executeCommand('workbench.actions.view.problems');
      });
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const problems = (err as { data?: { problems?: unknown } })?.data?.problems;
    const where = Array.isArray(problems)
      ? problems
          .map((p: { path?: unknown; message?: unknown; range?: { start?: { line?: unknown } } }) =>
            typeof p?.message === 'string'
              ? `${typeof p.path === 'string' ? `${p.path}:${typeof p.range?.start?.line === 'number' ? p.range.start.line + 1 : '?'}: ` : ''}${p.message}`
              : undefined,
          )
          .filter((s): s is string => s !== undefined)
      : [];
    this.ctx.output.appendLine(`=== Plan Parallel Tasks failed: ${message}`);
    for (const line of where) this.ctx.output.appendLine(`    ${line}`);
    void vscode.window.showErrorMessage(`parex: no plan drafted: ${message}`, 'Show Details').then((c) => {
      if (c) this.ctx.output.show(true);
    });
  }
}
