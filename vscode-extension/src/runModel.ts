// The state of one run as the editor shows it, built from `parex/taskEvent`s and the final
// `RunResult`: pure, no `vscode`, clock passed in.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  parseBudget,
  parseChanges,
  parsePlannedTasks,
  parseUsage,
  type Budget,
  type Changes,
  type Range,
  type RunResult,
  type TaskEvent,
  type TaskResult,
  type Usage,
} from './protocol';

export type TaskState =
  | 'pending' // known from the plan, no event yet
  | 'queued'
  | 'lockWait'
  | 'running'
  | 'retrying'
  | 'ready' // review mode: done on its branch, waiting for a reviewer (not final)
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  | 'rejected'; // review mode: a reviewer rejected it (final; its branch is kept)

export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'skipped', 'cancelled', 'rejected']);

/** States whose clock has stopped: the final ones, and `ready` (the work is done, a person decides). */
function stopped(state: TaskState): boolean {
  return FINAL_STATES.has(state) || state === 'ready';
}

/** An agent's shared rate-limit pause (`cooldown` event): its tasks wait until `until` (local ms). */
export interface Cooldown {
  agent: string;
  until: number;
  reason: string;
}

/** An agent's effective concurrency (`concurrency` event): `level` of at most `max` tasks at once. */
export interface AgentConcurrency {
  agent: string;
  level: number;
  max: number;
}

/** What the run has spent, and its budget when it has one. */
export interface Spend {
  spent: Usage;
  budget?: Budget;
  exceeded: boolean;
}

export interface TaskView {
  id: string;
  state: TaskState;
  attempt: number;
  /** Local clock (ms) when the current attempt started. */
  startedAt?: number;
  /** Local clock (ms) when the task reached a final state. */
  endedAt?: number;
  /** Duration reported by the server, when it did. */
  durationMs?: number;
  lastLine?: string;
  error?: string;
  code?: string;
  exitCode?: number;
  /** The task's log, as the server names it (`logPath` of events, `logUri` of results). */
  logUri?: string;
  /** On a resume: the earlier run this task succeeded in (it did not run again). */
  reusedFrom?: string;
  /** What the task was asked, as the server read it from the plan (`runStarted`). */
  prompt?: string;
  agent?: string;
  /** Where the plan document declares the task. */
  range?: Range;
  /** A model agent's final text. */
  answer?: string;
  usage?: Usage;
  /** Worktree runs: the task's branch, and what it changed against its base. */
  branch?: string;
  changes?: Changes;
  /** Conflicts a dry merge predicted (`conflictPredicted` messages), until the task runs again or lands. */
  conflicts?: string[];
}

export interface RunCounts {
  total: number;
  finished: number;
  running: number;
  waiting: number;
  /** Waiting for a reviewer (not finished). */
  ready: number;
  succeeded: number;
  failed: number;
  skipped: number;
  cancelled: number;
  rejected: number;
}

/** What one event changed, for the caller to show. */
export interface Applied {
  /** Lines of task output carried by an `output` event (complete lines, no line ends). */
  outputLines: string[];
  /** The task's new state when the event changed it. */
  stateChange?: TaskState;
}

/** Splits the `text` of an output event into lines, dropping the final line end. */
export function outputLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function fileUri(file: string | undefined): string | undefined {
  return file !== undefined && path.isAbsolute(file) ? pathToFileURL(file).toString() : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function finiteNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

const KIND_TO_STATE: Record<string, TaskState> = {
  queued: 'queued',
  lockWait: 'lockWait',
  started: 'running',
  retrying: 'retrying',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
  ready: 'ready',
  rejected: 'rejected',
};

export class RunModel {
  runId: string | undefined;
  /** Local clock when the run started (the request was sent, or the first event arrived). */
  readonly startedAt: number;
  finishedAt: number | undefined;
  result: RunResult | undefined;
  /** The run's spend (from `usage` events' `run` and `budget`, then the result); undefined while nothing was spent. */
  spend: Spend | undefined;
  private readonly tasks = new Map<string, TaskView>();
  private readonly cooldowns = new Map<string, Cooldown>();
  private readonly concurrency = new Map<string, AgentConcurrency>();

  constructor(taskIds: readonly string[], now: number, runId?: string) {
    this.startedAt = now;
    this.runId = runId;
    for (const id of taskIds) this.ensure(id);
  }

  get finished(): boolean {
    return this.finishedAt !== undefined;
  }

  /** The tasks, in the order they became known (plan order, then event order). */
  list(): TaskView[] {
    return [...this.tasks.values()];
  }

  get(id: string): TaskView | undefined {
    return this.tasks.get(id);
  }

  private ensure(id: string): TaskView {
    let task = this.tasks.get(id);
    if (!task) {
      task = { id, state: 'pending', attempt: 0 };
      this.tasks.set(id, task);
    }
    return task;
  }

  /** Applies one event of this run. Run-level events (taskId null) only mark the end. */
  apply(event: TaskEvent, now: number): Applied {
    if (this.runId === undefined) this.runId = event.runId;
    if (event.taskId === null) {
      // runStarted names the plan's tasks, in plan order, with their prompts and logs.
      const planned = event.kind === 'runStarted' ? parsePlannedTasks(event.data) : undefined;
      for (const p of planned ?? []) {
        const task = this.ensure(p.id);
        if (p.prompt !== undefined) task.prompt = p.prompt;
        if (p.agent !== undefined) task.agent = p.agent;
        if (p.range !== undefined) task.range = p.range;
        const logUri = fileUri(p.logPath);
        if (logUri !== undefined) task.logUri = logUri;
      }
      if (event.kind === 'runFinished' && this.finishedAt === undefined) this.finishedAt = now;
      this.applyRunLevel(event);
      return { outputLines: [] };
    }
    const task = this.ensure(event.taskId);
    const data = event.data ?? {};
    if (event.kind === 'usage') {
      const usage = parseUsage(data);
      if (usage !== undefined) task.usage = usage;
      this.takeSpend(parseUsage(data.run), parseBudget(data.budget));
      return { outputLines: [] };
    }
    if (event.kind === 'conflictPredicted') {
      const message = str(data.message);
      if (message !== undefined && !(task.conflicts ?? []).includes(message)) task.conflicts = [...(task.conflicts ?? []), message];
      return { outputLines: [] };
    }
    if (event.kind === 'merged') {
      task.conflicts = undefined;
      return { outputLines: [] };
    }
    if (event.kind === 'output') {
      const lines = outputLines(typeof data.text === 'string' ? data.text : '');
      const last = [...lines].reverse().find((l) => l.trim() !== '');
      if (last !== undefined) task.lastLine = last.trim();
      return { outputLines: lines };
    }
    const state = KIND_TO_STATE[event.kind];
    if (state === undefined) return { outputLines: [] };
    // A late event must not pull a finished task back (events of one task arrive in order, but
    // the final RunResult may have been applied first).
    if (FINAL_STATES.has(task.state) && !FINAL_STATES.has(state) && task.attempt >= event.attempt) {
      return { outputLines: [] };
    }
    task.state = state;
    if (event.attempt > 0) task.attempt = event.attempt;
    if (state === 'running') {
      task.startedAt = now;
      task.endedAt = undefined;
      task.durationMs = undefined;
      task.error = undefined;
      task.code = undefined;
      task.answer = undefined;
      task.conflicts = undefined;
    } else if (stopped(state)) {
      task.endedAt = now;
      const duration = finiteNumber(data.durationMs);
      if (duration !== undefined) task.durationMs = duration;
      const error = str(data.error) ?? str(data.reason) ?? str(data.message);
      if (error !== undefined) task.error = error;
      const code = str(data.code);
      if (code !== undefined) task.code = code;
      const exitCode = finiteNumber(data.exitCode);
      if (exitCode !== undefined) task.exitCode = exitCode;
      const reusedFrom = str(data.reusedFrom);
      if (reusedFrom !== undefined) task.reusedFrom = reusedFrom;
      const logUri = str(data.logUri) ?? fileUri(str(data.logPath));
      if (logUri !== undefined) task.logUri = logUri;
      if (typeof data.answer === 'string') task.answer = data.answer;
      const usage = parseUsage(data.usage);
      if (usage !== undefined) task.usage = usage;
      this.takeReview(task, data);
    } else if (state === 'retrying') {
      const error = str(data.error) ?? str(data.reason);
      if (error !== undefined) task.error = error;
    }
    return { outputLines: [], stateChange: state };
  }

  /** `cooldown`, `concurrency` and `budgetExceeded`: the run's quota and spend. */
  private applyRunLevel(event: TaskEvent): void {
    const data = event.data ?? {};
    const agent = str(data.agent);
    if (event.kind === 'cooldown' && agent !== undefined) {
      const until = finiteNumber(data.until);
      if (until === undefined) return;
      // `until` is the server's epoch seconds; the event's own timestamp would be no better a clock.
      this.cooldowns.set(agent, { agent, until: until * 1000, reason: str(data.reason) ?? 'rate limited' });
    } else if (event.kind === 'concurrency' && agent !== undefined) {
      const level = finiteNumber(data.level);
      const max = finiteNumber(data.max);
      if (level !== undefined && max !== undefined) this.concurrency.set(agent, { agent, level, max });
    } else if (event.kind === 'budgetExceeded') {
      const spent = parseUsage(data.spent);
      this.takeSpend(spent, parseBudget(data.budget));
      if (this.spend) this.spend.exceeded = true;
    }
  }

  private takeSpend(spent: Usage | undefined, budget: Budget | undefined): void {
    if (spent === undefined && budget === undefined) return;
    const spend: Spend = this.spend ?? { spent: {}, exceeded: false };
    if (spent !== undefined) spend.spent = spent;
    if (budget !== undefined) spend.budget = budget;
    this.spend = spend;
  }

  private takeReview(task: TaskView, data: Record<string, unknown>): void {
    const branch = str(data.branch);
    if (branch !== undefined) task.branch = branch;
    const changes = parseChanges(data.changes);
    if (changes !== undefined) task.changes = changes;
  }

  /** The agents whose rate-limit pause is still on at `now`, soonest end first. */
  activeCooldowns(now: number): Cooldown[] {
    return [...this.cooldowns.values()].filter((c) => c.until > now).sort((a, b) => a.until - b.until);
  }

  /** Agents running below their maximum concurrency (after a rate limit). */
  reducedConcurrency(): AgentConcurrency[] {
    return [...this.concurrency.values()].filter((c) => c.level < c.max);
  }

  /** Tasks waiting for a reviewer. */
  readyTasks(): TaskView[] {
    return this.list().filter((t) => t.state === 'ready');
  }

  /** Applies the final result: every task takes the status, duration and log the server reports. */
  applyResult(result: RunResult, now: number): void {
    this.result = result;
    if (this.runId === undefined) this.runId = result.runId;
    if (this.finishedAt === undefined) this.finishedAt = now;
    for (const r of result.tasks) this.applyTaskResult(r, now);
    if (result.budget) {
      this.spend = { spent: result.budget.spent, budget: result.budget.budget, exceeded: result.budget.exceeded };
    } else if (result.usage) {
      this.takeSpend(result.usage, undefined);
    }
  }

  private applyTaskResult(r: TaskResult, now: number): void {
    const task = this.ensure(r.id);
    const state = r.status as TaskState;
    if (stopped(state)) task.state = state;
    if (task.endedAt === undefined) task.endedAt = now;
    task.durationMs = r.durationMs;
    if (r.attempts > 0) task.attempt = r.attempts;
    if (r.error) task.error = r.error;
    if (r.code) task.code = r.code;
    if (r.exitCode !== undefined && r.exitCode !== null) task.exitCode = r.exitCode;
    const logUri = r.logUri || fileUri(r.logPath);
    if (logUri) task.logUri = logUri;
    if (r.reusedFrom) task.reusedFrom = r.reusedFrom;
    if (r.answer !== undefined) task.answer = r.answer;
    if (r.usage) task.usage = r.usage;
    if (r.branch) task.branch = r.branch;
    if (r.changes) task.changes = r.changes;
  }

  /** How long a task has been running (live), or took (finished); undefined before it started. */
  elapsedMs(task: TaskView, now: number): number | undefined {
    if (stopped(task.state) && task.durationMs !== undefined) return task.durationMs;
    if (task.startedAt === undefined) return undefined;
    return Math.max(0, (task.endedAt ?? now) - task.startedAt);
  }

  counts(): RunCounts {
    const c: RunCounts = {
      total: 0,
      finished: 0,
      running: 0,
      waiting: 0,
      ready: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      cancelled: 0,
      rejected: 0,
    };
    for (const t of this.tasks.values()) {
      c.total++;
      switch (t.state) {
        case 'succeeded':
        case 'failed':
        case 'skipped':
        case 'cancelled':
        case 'rejected':
          c.finished++;
          c[t.state]++;
          break;
        case 'ready':
          c.ready++;
          break;
        case 'running':
        case 'retrying':
          c.running++;
          break;
        default:
          c.waiting++;
      }
    }
    return c;
  }

  /** The prompts the server announced, by task id (for the answers document); empty from an older server. */
  prompts(): Map<string, string> {
    const prompts = new Map<string, string>();
    for (const t of this.tasks.values()) if (t.prompt !== undefined) prompts.set(t.id, t.prompt);
    return prompts;
  }

  /** Tasks that a resume would run again. */
  unfinishedOrFailed(): TaskView[] {
    return this.list().filter((t) => t.state !== 'succeeded');
  }

  /**
   * The run's result: the server's when it sent one; else one built from the events (for runs
   * the editor did not start, such as a retry from a code action, whose result goes elsewhere).
   */
  summary(now: number): RunResult {
    if (this.result) return this.result;
    const tasks: TaskResult[] = this.list().map((t) => {
      const r: TaskResult = {
        id: t.id,
        status: t.state,
        attempts: t.attempt,
        durationMs: this.elapsedMs(t, now) ?? 0,
      };
      if (t.exitCode !== undefined) r.exitCode = t.exitCode;
      if (t.error !== undefined) r.error = t.error;
      if (t.code !== undefined) r.code = t.code;
      if (t.logUri !== undefined) r.logUri = t.logUri;
      if (t.reusedFrom !== undefined) r.reusedFrom = t.reusedFrom;
      if (t.answer !== undefined) r.answer = t.answer;
      if (t.usage !== undefined) r.usage = t.usage;
      if (t.branch !== undefined) r.branch = t.branch;
      if (t.changes !== undefined) r.changes = t.changes;
      return r;
    });
    const c = this.counts();
    const status = c.failed + c.skipped + c.rejected > 0 ? 'failed' : c.cancelled > 0 ? 'cancelled' : c.ready > 0 ? 'ready' : 'succeeded';
    const wallMs = Math.max(0, (this.finishedAt ?? now) - this.startedAt);
    const workMs = tasks.reduce((sum, t) => sum + t.durationMs, 0);
    return { runId: this.runId ?? '', status, tasks, wallMs, workMs, speedup: wallMs > 0 ? workMs / wallMs : 0 };
  }
}
