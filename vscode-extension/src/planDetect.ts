// Which plan a "Run Parallel Tasks" means, from the active document: pure, no `vscode`.
import type { Range } from './protocol';

/** `parex.toml`, or any `*.parex.toml` (a file named just `.parex.toml` counts too). */
export function isPlanFileName(fileName: string): boolean {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  return base === 'parex.toml' || base.endsWith('.parex.toml');
}

/** The glob that finds plan files in a workspace (`workspace.findFiles`). */
export const PLAN_FILE_GLOB = '**/{parex.toml,*.parex.toml}';
export const PLAN_FILE_EXCLUDE = '**/node_modules/**';

/**
 * A `callN:` line, as the server reads it: optionally behind a comment marker or a list bullet
 * (`# call1:`, `// call2:`, `- call3:`, `> call4:`). The extension only finds these lines (which
 * documents to sync, which ids a selection holds); what a call's prompt is, the server says.
 * The grammar's cases are shared with the server and the Neovim plugin: tests/cases/call_lines.json.
 */
export const CALL_LINE = /^(\s*(?:#+|\/\/+|--|;+|\*|-|>)?\s*)(call\d+)\s*:/;
// The same, over a whole text: `^` at every line start, and whitespace that never crosses a line end.
const ANY_CALL_LINE = new RegExp(CALL_LINE.source.split('\\s').join('[^\\S\\r\\n]'), 'm');

/** Whether a document's text holds at least one `callN:` line (without splitting it into lines). */
export function hasCallLine(text: string): boolean {
  return ANY_CALL_LINE.test(text);
}

export interface CallLine {
  line: number;
  id: string;
}

/** The `callN:` lines of `lines` between `first` and `last` (zero-based, inclusive). */
export function findCallLines(lines: readonly string[], first = 0, last = lines.length - 1): CallLine[] {
  const found: CallLine[] = [];
  for (let n = Math.max(first, 0); n <= Math.min(last, lines.length - 1); n++) {
    const m = CALL_LINE.exec(lines[n]);
    if (m) found.push({ line: n, id: m[2] });
  }
  return found;
}

/** Splits a document's text into lines the way editors count them (\n, \r\n or \r). */
export function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

/**
 * The range to send with a `callN:` plan, or undefined when there is no `callN:` line in it.
 *
 * With a selection, the range covers the selected lines whole: from the start of the first line
 * to the end of the last one, where a selection that ends at column 0 of a later line does not
 * take that line. Without one (undefined or empty), the whole document. Either way the end sits
 * at the end of a line, so a server that reads the range by lines or by characters sees the same
 * calls.
 */
export function callPlanRange(lines: readonly string[], selection?: Range): Range | undefined {
  if (lines.length === 0) return undefined;
  let first = 0;
  let last = lines.length - 1;
  const empty =
    !selection ||
    (selection.start.line === selection.end.line && selection.start.character === selection.end.character);
  if (!empty && selection) {
    const [a, b] = comparePositions(selection.start, selection.end) <= 0
      ? [selection.start, selection.end]
      : [selection.end, selection.start];
    first = clamp(a.line, 0, lines.length - 1);
    last = clamp(b.line, 0, lines.length - 1);
    if (b.character === 0 && b.line > a.line && b.line <= lines.length - 1) last = b.line - 1;
  }
  if (findCallLines(lines, first, last).length === 0) return undefined;
  return {
    start: { line: first, character: 0 },
    end: { line: last, character: lines[last].length },
  };
}

function comparePositions(a: { line: number; character: number }, b: { line: number; character: number }): number {
  return a.line - b.line || a.character - b.character;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(Math.max(n, lo), hi);
}

export type PlanChoice =
  | { kind: 'file'; uri: string }
  | { kind: 'calls'; uri: string; range: Range; taskIds: string[] }
  | { kind: 'pick' };

/**
 * What "Run Parallel Tasks" runs given the active document (if any): the plan file itself, the
 * `callN:` lines of the selection (or document), or nothing, in which case the user picks a plan
 * file of the workspace.
 */
export function choosePlan(
  active: { uri: string; fileName: string; text: string; selection?: Range } | undefined,
): PlanChoice {
  if (!active) return { kind: 'pick' };
  if (isPlanFileName(active.fileName)) return { kind: 'file', uri: active.uri };
  const lines = splitLines(active.text);
  const range = callPlanRange(lines, active.selection);
  if (!range) return { kind: 'pick' };
  const taskIds = findCallLines(lines, range.start.line, range.end.line).map((c) => c.id);
  return { kind: 'calls', uri: active.uri, range, taskIds };
}
