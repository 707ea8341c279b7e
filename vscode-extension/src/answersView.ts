// Read-only documents holding the answers of a run's model tasks
// (`parex-answers:/parex answers — <runId>`), and showing them beside the editor.
import * as vscode from 'vscode';
import { answersTitle } from './answers';

export const ANSWERS_SCHEME = 'parex-answers';
/** How many runs' answers a window keeps. */
export const KEEP_ANSWERS = 20;

export class AnswersProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  uriFor(runId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: ANSWERS_SCHEME, path: `/${answersTitle(runId)}` });
  }

  set(uri: vscode.Uri, text: string): void {
    const key = uri.toString();
    this.texts.delete(key);
    this.texts.set(key, text);
    while (this.texts.size > KEEP_ANSWERS) this.texts.delete(this.texts.keys().next().value as string);
    this.changed.fire(uri);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '_The answers of this run are no longer kept in this window._\n';
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** Opens an answers document as markdown: where answers are shown already, else beside the active editor. */
export async function showAnswers(uri: vscode.Uri, preserveFocus: boolean): Promise<void> {
  try {
    let doc = await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== 'markdown') doc = await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    const visible = vscode.window.visibleTextEditors;
    const shown =
      visible.find((e) => e.document.uri.toString() === uri.toString()) ??
      visible.find((e) => e.document.uri.scheme === ANSWERS_SCHEME);
    const viewColumn = shown?.viewColumn ?? vscode.ViewColumn.Beside;
    await vscode.window.showTextDocument(doc, { viewColumn, preview: false, preserveFocus });
  } catch (err) {
    void vscode.window.showWarningMessage(`parex: cannot show the answers: ${err instanceof Error ? err.message : String(err)}`);
  }
}
