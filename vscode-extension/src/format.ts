// Text the extension shows: notifications, progress messages, output lines, tree labels.
// Pure, no `vscode`.
import type { RunResult } from './protocol';
import type { RunCounts, TaskState, TaskView } from './runModel';

/** `850ms`, `4.2s`, `42s`, `1m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1000;
  if (seconds < 10) return `${(Math.floor(seconds * 10) / 10).toFixed(1)}s`;
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  const totalSeconds = Math.floor(seconds);
  const m = Math.floor(totalSeconds / 60);
  const s = totalSeconds % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** `1.9×` (one decimal; two below 1, so that a slowdown reads as one). */
export function formatSpeedup(speedup: number): string {
  if (!Number.isFinite(speedup) || speedup <= 0) return '–';
  return `${speedup < 1 ? speedup.toFixed(2) : speedup.toFixed(1)}×`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Counts of a result's tasks by status. */
export function countResult(
  result: RunResult,
): Record<'succeeded' | 'kept' | 'failed' | 'skipped' | 'cancelled' | 'other', number> {
  const counts = { succeeded: 0, kept: 0, failed: 0, skipped: 0, cancelled: 0, other: 0 };
  for (const t of result.tasks) {
    if (t.status === 'succeeded' && t.reusedFrom) {
      counts.kept++;
    } else if (t.status === 'succeeded' || t.status === 'failed' || t.status === 'skipped' || t.status === 'cancelled') {
      counts[t.status]++;
    } else counts.other++;
  }
  return counts;
}

/**
 * The notification at the end of a run, e.g.
 * `Parallel tasks failed: 1 succeeded, 1 failed in 1.2s (2.3s of work, 1.9× speedup)`.
 * Tasks a resume did not run again (they succeeded before) are counted apart, as "kept".
 */
export function summaryMessage(result: RunResult): string {
  const c = countResult(result);
  const parts = [`${c.succeeded} succeeded`];
  if (c.failed > 0 || result.status === 'failed') parts.push(`${c.failed} failed`);
  if (c.skipped > 0) parts.push(`${c.skipped} skipped`);
  if (c.cancelled > 0) parts.push(`${c.cancelled} cancelled`);
  if (c.kept > 0) parts.push(`${c.kept} kept from the earlier run`);
  const verdict =
    result.status === 'succeeded' ? 'done' : result.status === 'cancelled' ? 'cancelled' : result.status === 'failed' ? 'failed' : result.status;
  return (
    `Parallel tasks ${verdict}: ${parts.join(', ')} in ${formatDuration(result.wallMs)} ` +
    `(${formatDuration(result.workMs)} of work, ${formatSpeedup(result.speedup)} speedup)`
  );
}

/** The severity of the end-of-run notification. */
export function summarySeverity(result: RunResult): 'info' | 'warning' | 'error' {
  if (result.status === 'succeeded') return 'info';
  if (result.status === 'cancelled') return 'warning';
  return 'error';
}

/** The running message of the run's progress notification: `1/3 done · 2 running · 1 failed`. */
export function progressMessage(c: RunCounts): string {
  const parts = [`${c.finished}/${c.total} done`];
  if (c.running > 0) parts.push(`${c.running} running`);
  if (c.waiting > 0 && c.finished + c.running < c.total) parts.push(`${c.waiting} waiting`);
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  return parts.join(' · ');
}

/** The percentage (0–100) of finished tasks. */
export function progressPercentage(c: RunCounts): number {
  return c.total > 0 ? Math.round((100 * c.finished) / c.total) : 0;
}

/** Each line tagged with its task: `[api] collected 3 items`. */
export function tagLines(taskId: string, lines: readonly string[]): string[] {
  return lines.map((line) => `[${taskId}] ${line}`);
}

/** The output-channel line for a task's change of state: `[api] ── failed (exit 1): reason`. */
export function stateLine(task: TaskView, state: TaskState, elapsedMs: number | undefined): string {
  let text: string;
  switch (state) {
    case 'running':
      text = task.attempt > 1 ? `started (attempt ${task.attempt})` : 'started';
      break;
    case 'retrying':
      text = `retrying${task.error ? `: ${task.error}` : ''}`;
      break;
    case 'lockWait':
      text = 'waiting for file locks';
      break;
    case 'failed':
      text = `failed${task.exitCode !== undefined ? ` (exit ${task.exitCode})` : ''}${task.error ? `: ${task.error}` : ''}`;
      break;
    case 'skipped':
      text = `skipped${task.error ? `: ${task.error}` : ''}`;
      break;
    case 'succeeded':
      text = task.reusedFrom ? `succeeded in run ${task.reusedFrom}; not run again` : 'succeeded';
      break;
    default:
      text = state;
  }
  if (task.reusedFrom && state === 'succeeded') return `[${task.id}] ── ${text}`;
  if (elapsedMs !== undefined && (state === 'succeeded' || state === 'failed' || state === 'cancelled')) {
    text += ` after ${formatDuration(elapsedMs)}`;
  }
  return `[${task.id}] ── ${text}`;
}

/** Codicon name of a task state, for the tree and quick picks. */
export function stateIcon(state: TaskState): string {
  switch (state) {
    case 'pending':
    case 'queued':
      return 'circle-large-outline';
    case 'lockWait':
      return 'lock';
    case 'running':
      return 'sync~spin';
    case 'retrying':
      return 'debug-restart';
    case 'succeeded':
      return 'pass';
    case 'failed':
      return 'error';
    case 'skipped':
      return 'debug-step-over';
    case 'cancelled':
      return 'circle-slash';
  }
}

const STATE_LABEL: Record<TaskState, string> = {
  pending: 'pending',
  queued: 'queued',
  lockWait: 'waiting for locks',
  running: 'running',
  retrying: 'retrying',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
};

/** The description next to a task in the tree: `running · 4.2s · last output line`. */
export function taskDescription(task: TaskView, elapsedMs: number | undefined, maxLine = 60): string {
  const parts: string[] = [STATE_LABEL[task.state]];
  if (task.reusedFrom && task.state === 'succeeded') return `succeeded earlier · kept from run ${task.reusedFrom}`;
  if (task.attempt > 1) parts[0] += ` (attempt ${task.attempt})`;
  if (elapsedMs !== undefined) parts.push(formatDuration(elapsedMs));
  const detail = task.state === 'failed' || task.state === 'skipped' ? (task.error ?? task.lastLine) : task.lastLine;
  if (detail) parts.push(truncate(detail, maxLine));
  return parts.join(' · ');
}

export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, Math.max(0, max - 1))}…`;
}

/** The status bar text: `$(sync~spin) parex 1/3` while running, the outcome after. */
export function statusBarText(c: RunCounts, finished: boolean): string {
  if (!finished) return `$(sync~spin) parex ${c.finished}/${c.total}`;
  if (c.failed + c.skipped > 0) return `$(error) parex ${c.failed + c.skipped}/${c.total} failed`;
  if (c.cancelled > 0) return `$(circle-slash) parex cancelled`;
  return `$(pass) parex ${c.succeeded}/${c.total}`;
}

/** The first line of a run in the output channel: `=== 14:03:07 parex.toml (2 tasks)`. */
export function runHeader(label: string, taskCount: number | undefined, time: Date): string {
  const clock = [time.getHours(), time.getMinutes(), time.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  return `=== ${clock} ${label}${taskCount ? ` (${plural(taskCount, 'task')})` : ''}`;
}
