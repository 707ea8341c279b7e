// Text the extension shows: notifications, progress messages, output lines, tree labels.
// Pure, no `vscode`.
import type { Changes, RunResult, Usage } from './protocol';
import type { Cooldown, RunCounts, Spend, TaskState, TaskView } from './runModel';

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
): Record<'succeeded' | 'kept' | 'failed' | 'skipped' | 'cancelled' | 'rejected' | 'ready' | 'other', number> {
  const counts = { succeeded: 0, kept: 0, failed: 0, skipped: 0, cancelled: 0, rejected: 0, ready: 0, other: 0 };
  for (const t of result.tasks) {
    if (t.status === 'succeeded' && t.reusedFrom) {
      counts.kept++;
    } else if (
      t.status === 'succeeded' ||
      t.status === 'failed' ||
      t.status === 'skipped' ||
      t.status === 'cancelled' ||
      t.status === 'rejected' ||
      t.status === 'ready'
    ) {
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
  if (c.rejected > 0) parts.push(`${c.rejected} rejected`);
  if (c.ready > 0) parts.push(`${c.ready} left ready for review`);
  if (c.kept > 0) parts.push(`${c.kept} kept from the earlier run`);
  const verdict =
    result.status === 'succeeded'
      ? 'done'
      : result.status === 'cancelled'
        ? 'cancelled'
        : result.status === 'failed'
          ? 'failed'
          : result.status === 'ready'
            ? 'waiting for review'
            : result.status;
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
  if (c.ready > 0) parts.push(`${c.ready} ready for review`);
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  if (c.rejected > 0) parts.push(`${c.rejected} rejected`);
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
    case 'ready':
      text = `ready for review${task.changes ? ` (${changesText(task.changes)})` : ''}`;
      break;
    case 'rejected':
      text = `rejected${task.branch ? `; its work is kept on ${task.branch}` : ''}`;
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
    case 'ready':
      return 'git-pull-request';
    case 'rejected':
      return 'git-pull-request-closed';
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
  ready: 'ready for review',
  rejected: 'rejected',
};

/** The description next to a task in the tree: `running · 4.2s · last output line`. */
export function taskDescription(task: TaskView, elapsedMs: number | undefined, maxLine = 60): string {
  const parts: string[] = [STATE_LABEL[task.state]];
  if (task.reusedFrom && task.state === 'succeeded') return `succeeded earlier · kept from run ${task.reusedFrom}`;
  if (task.attempt > 1) parts[0] += ` (attempt ${task.attempt})`;
  if (elapsedMs !== undefined) parts.push(formatDuration(elapsedMs));
  if (task.state === 'ready' && task.changes) parts.push(changesText(task.changes));
  if (task.state === 'ready' && task.conflicts?.length) parts.push(`⚠ ${plural(task.conflicts.length, 'predicted conflict')}`);
  const detail =
    task.state === 'failed' || task.state === 'skipped' || task.state === 'rejected' ? (task.error ?? task.lastLine) : task.lastLine;
  if (detail) parts.push(truncate(detail, maxLine));
  return parts.join(' · ');
}

export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * The status bar text: `$(sync~spin) parex 1/3` while running (`· 1 to review` when tasks wait for a
 * reviewer), the outcome after; then the run's spend, and any agent's rate-limit pause.
 */
export function statusBarText(c: RunCounts, finished: boolean, spend?: Spend, cooldowns: readonly string[] = []): string {
  const extra = [spend ? spendText(spend) : undefined, ...cooldowns].filter((p): p is string => p !== undefined && p !== '');
  const tail = extra.length > 0 ? ` · ${extra.join(' · ')}` : '';
  return statusBarOutcome(c, finished) + tail;
}

function statusBarOutcome(c: RunCounts, finished: boolean): string {
  if (!finished && c.ready > 0) return `$(git-pull-request) parex ${c.finished}/${c.total} · ${c.ready} to review`;
  if (!finished) return `$(sync~spin) parex ${c.finished}/${c.total}`;
  if (c.failed + c.skipped + c.rejected > 0) return `$(error) parex ${c.failed + c.skipped + c.rejected}/${c.total} failed`;
  if (c.cancelled > 0) return `$(circle-slash) parex cancelled`;
  return `$(pass) parex ${c.succeeded}/${c.total}`;
}

/** The first line of a run in the output channel: `=== 14:03:07 parex.toml (2 tasks)`. */
export function runHeader(label: string, taskCount: number | undefined, time: Date): string {
  const clock = [time.getHours(), time.getMinutes(), time.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  return `=== ${clock} ${label}${taskCount ? ` (${plural(taskCount, 'task')})` : ''}`;
}

/** `+12 −3 in 2 files` (a branch's `changes`; commits are an implementation detail of the agent). */
export function changesText(changes: Changes): string {
  return `+${changes.added} −${changes.removed} in ${plural(changes.files, 'file')}`;
}

/** `$0.42`, with cents below a dollar shown to 4 places so a cheap run is not `$0.00`. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd) || usd < 0) usd = 0;
  if (usd === 0) return '$0';
  return usd < 1 ? `$${usd.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')}` : `$${usd.toFixed(2)}`;
}

/** `12.3k`, `1.2M`: token counts at a glance. */
export function formatTokens(n: number): string {
  if (!Number.isFinite(n) || n < 0) n = 0;
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

function tokensOf(u: Usage): number {
  return (u.promptTokens ?? 0) + (u.completionTokens ?? 0);
}

/**
 * The run's spend against its budget: `$0.42 / $5`, `12.3k / 100k tokens`, both when the budget has
 * both; without a budget, what was spent (`$0.42`, else `12.3k tokens`). `budget reached` once exceeded.
 */
export function spendText(spend: Spend): string {
  const { spent, budget } = spend;
  const parts: string[] = [];
  if (budget?.usd !== undefined) parts.push(`${formatUsd(spent.costUsd ?? 0)} / ${formatUsd(budget.usd)}`);
  if (budget?.tokens !== undefined) parts.push(`${formatTokens(tokensOf(spent))} / ${formatTokens(budget.tokens)} tokens`);
  if (parts.length === 0) {
    if (spent.costUsd !== undefined && spent.costUsd > 0) parts.push(formatUsd(spent.costUsd));
    else if (tokensOf(spent) > 0) parts.push(`${formatTokens(tokensOf(spent))} tokens`);
  }
  if (parts.length === 0) return '';
  return `${parts.join(', ')}${spend.exceeded ? ' (budget reached)' : ''}`;
}

/** `claude: rate limited, resuming in 42s` (the seconds rounded up, so it never says 0s while waiting). */
export function cooldownText(cooldown: Cooldown, now: number): string {
  const left = Math.max(0, cooldown.until - now);
  const seconds = Math.ceil(left / 1000);
  const when = seconds < 60 ? `${seconds}s` : formatDuration(seconds * 1000);
  return `${cooldown.agent}: rate limited, resuming in ${when}`;
}
