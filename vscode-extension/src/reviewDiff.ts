// How a ready task's changed files are named and shown in the diff editor: the read-only
// `parex-diff:` documents of both sides, built from a `parex/diff` answer. Pure, no `vscode`.
import type { DiffResult, FileDiff } from './protocol';

export const DIFF_SCHEME = 'parex-diff';

export type DiffSide = 'base' | 'result';

/** One side of one changed file of one task. */
export interface DiffRef {
  runId: string;
  taskId: string;
  side: DiffSide;
  /** The file's path in the repository (forward slashes). */
  path: string;
}

/**
 * The uri parts of a side: the file's own path (so the editor picks its language from the name)
 * and the run, task and side in the query.
 */
export function diffUriParts(ref: DiffRef): { scheme: string; path: string; query: string } {
  const query = new URLSearchParams({ run: ref.runId, task: ref.taskId, side: ref.side }).toString();
  return { scheme: DIFF_SCHEME, path: `/${ref.path.replace(/^\/+/, '')}`, query };
}

/** The side a `parex-diff:` uri names, or undefined when its query lacks the run, task or side. */
export function parseDiffUri(path: string, query: string): DiffRef | undefined {
  const params = new URLSearchParams(query);
  const runId = params.get('run');
  const taskId = params.get('task');
  const side = params.get('side');
  const file = path.replace(/^\/+/, '');
  if (!runId || !taskId || (side !== 'base' && side !== 'result') || file === '') return undefined;
  return { runId, taskId, side, path: file };
}

/**
 * The text of one side: the file's content, empty when the file does not exist on that side (added
 * or deleted), and a one-line note when the server sent no text (binary, or over its size limit).
 */
export function sideText(file: FileDiff, side: DiffSide): string {
  const text = side === 'base' ? file.base : file.result;
  if (text !== null) return text;
  const absent = side === 'base' ? file.status === 'added' : file.status === 'deleted';
  if (absent) return '';
  const blob = side === 'base' ? file.baseBlob : file.resultBlob;
  return `(binary or too large to show${blob ? `; git blob ${blob}` : ''})\n`;
}

/** The text a `parex-diff:` uri stands for, from the task's `parex/diff` answer; undefined when the file is not in it. */
export function diffDocument(diff: DiffResult, ref: DiffRef): string | undefined {
  const file = diff.files.find((f) => f.path === ref.path);
  return file ? sideText(file, ref.side) : undefined;
}

/** The diff editor's title: `greeting.txt (main ↔ edit)`. */
export function diffTitle(taskId: string, file: FileDiff, baseBranch: string): string {
  const name = file.path.split('/').pop() ?? file.path;
  return `${name} (${baseBranch || 'base'} ↔ ${taskId})`;
}

/** The tree's description of a changed file: its folder and what happened to it (`src · modified`). */
export function changedFileDescription(file: FileDiff): string {
  const slash = file.path.lastIndexOf('/');
  const dir = slash > 0 ? file.path.slice(0, slash) : '';
  return dir ? `${dir} · ${file.status}` : file.status;
}
