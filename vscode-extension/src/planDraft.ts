// "Plan Parallel Tasks…": where the draft goes, and the server's `parex/plan` answer read
// defensively. Pure, no `vscode`.
import type { Range } from './protocol';

export const DRAFT_NAME = 'plan.parex.toml';

/**
 * Where the draft will be saved: `<root>/plan.parex.toml`, or `plan-2.parex.toml`, `plan-3…` when
 * that name is taken (a file on disk, or a draft still open unsaved). The server finds the
 * workspace from it, and the editor opens the draft as an untitled document with that path.
 */
export function draftPlanPath(root: string, taken: (file: string) => boolean, sep = '/'): string {
  const base = root.endsWith(sep) ? root : root + sep;
  for (let n = 1; ; n++) {
    const file = base + (n === 1 ? DRAFT_NAME : `plan-${n}.parex.toml`);
    if (!taken(file)) return file;
  }
}

export interface PlanProblem {
  range: Range;
  /** 1 error, 2 warning, 3 information, 4 hint (LSP). */
  severity: number;
  code?: string;
  message: string;
}

export interface PlanDraft {
  text: string;
  valid: boolean;
  rounds: number;
  problems: PlanProblem[];
}

function isPosition(p: unknown): p is { line: number; character: number } {
  const o = p as { line?: unknown; character?: unknown };
  return typeof p === 'object' && p !== null && Number.isInteger(o.line) && Number.isInteger(o.character);
}

/** The `{text, valid, rounds, problems}` answer; throws when there is no text to open. */
export function parsePlanDraft(raw: unknown): PlanDraft {
  const obj = raw as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || typeof obj.text !== 'string') {
    throw new Error(`unexpected answer to parex/plan: ${JSON.stringify(raw)?.slice(0, 200)}`);
  }
  const problems: PlanProblem[] = [];
  for (const p of Array.isArray(obj.problems) ? obj.problems : []) {
    const d = p as { range?: { start?: unknown; end?: unknown }; severity?: unknown; code?: unknown; message?: unknown };
    if (typeof p !== 'object' || p === null || typeof d.message !== 'string') continue;
    const start = isPosition(d.range?.start) ? d.range.start : { line: 0, character: 0 };
    const end = isPosition(d.range?.end) ? d.range.end : start;
    problems.push({
      range: { start: { line: start.line, character: start.character }, end: { line: end.line, character: end.character } },
      severity: typeof d.severity === 'number' && d.severity >= 1 && d.severity <= 4 ? d.severity : 1,
      ...(typeof d.code === 'string' || typeof d.code === 'number' ? { code: String(d.code) } : {}),
      message: d.message,
    });
  }
  return {
    text: obj.text,
    valid: obj.valid === true,
    rounds: typeof obj.rounds === 'number' ? obj.rounds : 1,
    problems,
  };
}

/** What the notification says once the draft is open. */
export function planDraftMessage(draft: PlanDraft, name: string): string {
  const rounds = `${draft.rounds} round${draft.rounds === 1 ? '' : 's'}`;
  if (draft.valid) return `parex: drafted ${name} in ${rounds}; it validates. Edit it, save it, then Run Parallel Tasks.`;
  const n = draft.problems.length;
  return `parex: drafted ${name} in ${rounds}; ${n} problem${n === 1 ? '' : 's'} left (in the Problems panel) to fix before it runs.`;
}

/** The `files` of the request: the active editor's file, as a workspace-relative path with `/`, when it is inside `root`. */
export function requestFiles(root: string, activeFile: string | undefined, sep = '/'): string[] {
  if (!activeFile) return [];
  const base = root.endsWith(sep) ? root : root + sep;
  if (!activeFile.startsWith(base)) return [];
  const rel = activeFile.slice(base.length);
  return rel ? [rel.split(sep).join('/')] : [];
}

/** One edit of a document, as `onDidChangeTextDocument` reports it: the range replaced (before the edit) and the new text. */
export interface TextChange {
  range: Range;
  text: string;
}

type Pos = { line: number; character: number };

function cmp(a: Pos, b: Pos): number {
  return a.line - b.line || a.character - b.character;
}

/**
 * The draft's problems after the person's edits (the server does not lint an unsaved draft, so
 * they stay until it is saved or closed): a problem before an edit stays where it is, one after
 * it moves with the text, and one the edit touches is dropped, being fixed.
 */
export function shiftProblems<T extends { range: Range }>(problems: readonly T[], changes: readonly TextChange[]): T[] {
  let out = [...problems];
  for (const { range: r, text } of changes) {
    const added = text.split(/\r\n|\r|\n/);
    const lineDelta = added.length - 1 - (r.end.line - r.start.line);
    // Where the edit's old end is now: its line moved by lineDelta, its column just after the new text.
    const newEndChar = added.length === 1 ? r.start.character + text.length : added[added.length - 1].length;
    const move = (p: Pos): Pos =>
      p.line === r.end.line
        ? { line: p.line + lineDelta, character: newEndChar + (p.character - r.end.character) }
        : { line: p.line + lineDelta, character: p.character };
    const next: T[] = [];
    for (const p of out) {
      if (cmp(p.range.start, r.start) < 0 && cmp(p.range.end, r.start) <= 0) next.push(p);
      else if (cmp(p.range.start, r.end) >= 0) next.push({ ...p, range: { start: move(p.range.start), end: move(p.range.end) } });
    }
    out = next;
  }
  return out;
}
