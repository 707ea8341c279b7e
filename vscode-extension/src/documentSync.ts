// Which open documents the server sees: plan files and documents with `callN:` lines, nothing
// else. Pure, no `vscode`: the language client's middleware asks, this answers what to send.
import { hasCallLine, isPlanFileName } from './planDetect';

/** What the server needs of a document: a plan file by its name, any other by its `callN:` lines. */
export function serverNeeds(doc: { fileName: string; getText(): string }): boolean {
  return isPlanFileName(doc.fileName) || hasCallLine(doc.getText());
}

/**
 * What to send for an editor event:
 * - `forward`: pass the notification on (the server has the document);
 * - `open`: send `didOpen` with the document's current text instead (it became one the server needs);
 * - `close`: send `didClose` instead (it no longer is one: the server reads it from disk again, if at all);
 * - `drop`: send nothing.
 */
export type SyncStep = 'forward' | 'open' | 'close' | 'drop';

/** The documents the server has open, by uri; every decision keeps it in step with what was sent. */
export class DocumentSync {
  private readonly open = new Set<string>();

  has(uri: string): boolean {
    return this.open.has(uri);
  }

  /** `textDocument/didOpen` from the editor. */
  opened(uri: string, needed: boolean): SyncStep {
    if (!needed) return 'drop';
    this.open.add(uri);
    return 'forward';
  }

  /** `textDocument/didChange`: `needed` is whether the changed text still (or now) needs the server. */
  changed(uri: string, needed: boolean): SyncStep {
    const has = this.open.has(uri);
    if (has && needed) return 'forward';
    if (has) {
      this.open.delete(uri);
      return 'close';
    }
    if (needed) {
      this.open.add(uri);
      return 'open';
    }
    return 'drop';
  }

  /** `textDocument/didSave`: only for documents the server has. */
  saved(uri: string): SyncStep {
    return this.open.has(uri) ? 'forward' : 'drop';
  }

  /** `textDocument/didClose`. */
  closed(uri: string): SyncStep {
    return this.open.delete(uri) ? 'forward' : 'drop';
  }

  /** The server went away: it has nothing open any more. */
  reset(): void {
    this.open.clear();
  }
}
