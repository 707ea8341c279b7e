// Wire shapes of the parex protocol (docs/protocol.md), as the extension reads and sends them;
// the methods themselves are declared in lsp_ext.ts.
// Everything read from the server is treated as untrusted: unknown kinds and fields are kept
// or ignored, never fatal.

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type PlanRef = { uri: string } | { uri: string; range: Range } | { tasks: TaskSpec[] };

export interface TaskSpec {
  id: string;
  prompt: string;
  agent?: string;
  dependsOn?: string[];
  files?: string[];
  retries?: number;
  timeout?: number;
}

export interface RunParams {
  plan: PlanRef;
  maxConcurrency?: number;
  isolation?: 'none' | 'worktree';
  /** `review`: every task's branch waits for `parex/review` (worktree runs). */
  merge?: 'auto' | 'review';
  only?: string[];
  resume?: string;
  detach?: boolean;
  /** Where the tasks run: this machine, or a Ray cluster (default: the plan's `[run] executor`). */
  executor?: 'local' | 'ray';
  /** The Ray cluster's address, for `executor: "ray"` (default: the plan's). */
  rayAddress?: string;
  workDoneToken?: string | number;
}

/** `parex/plan`: what the plan should do, files whose text goes with it, where it will be saved. */
export interface PlanParams {
  request: string;
  /** Workspace-relative paths. */
  files?: string[];
  /** A file: URI; the server finds the workspace from it. */
  uri?: string;
}

export type TaskStatus = 'succeeded' | 'failed' | 'skipped' | 'cancelled' | 'ready' | 'rejected';
export type RunStatus = 'succeeded' | 'failed' | 'cancelled' | 'ready';

export interface TaskResult {
  id: string;
  status: TaskStatus | string;
  attempts: number;
  durationMs: number;
  exitCode?: number | null;
  error?: string | null;
  /** Reason code of a failure (`exit-code`, `timeout`, ...), as in the diagnostics. */
  code?: string;
  logUri?: string;
  logPath?: string;
  /** On a resume: the earlier run this task succeeded in; it did not run again. */
  reusedFrom?: string;
  /** A model agent's final text (e.g. of a `callN:` prompt); shell tasks have none. */
  answer?: string;
  /** Token counts (and cost, when the agent has prices) of a model agent's task. */
  usage?: Usage;
  /** Worktree runs: the task's branch, and what it changed against its base. */
  branch?: string;
  changes?: Changes;
}

/** What a task's branch changed against its merge base with the base branch. */
export interface Changes {
  files: number;
  added: number;
  removed: number;
  commits: number;
}

/** A run's budget (`[run] budget`): either or both. */
export interface Budget {
  usd?: number;
  tokens?: number;
}

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  costUsd?: number;
}

export interface RunResult {
  runId: string;
  status: RunStatus | string;
  tasks: TaskResult[];
  wallMs: number;
  workMs: number;
  speedup: number;
  /** The tasks' usage added up, when any task had some. */
  usage?: Usage;
  /** What the run spent against its budget, when it had one. */
  budget?: BudgetResult;
}

export interface BudgetResult {
  spent: Usage;
  budget: Budget;
  exceeded: boolean;
  summary?: string;
}

/** Task-level kinds; run-level events (`runStarted`, `runFinished`) carry `taskId: null`. */
export type TaskEventKind =
  | 'queued'
  | 'started'
  | 'output'
  | 'retrying'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  | 'lockWait'
  | 'ready'
  | 'rejected'
  | 'merged'
  | 'conflictPredicted'
  | 'usage'
  | 'runStarted'
  | 'runFinished'
  | 'cooldown'
  | 'concurrency'
  | 'budgetExceeded';

export interface TaskEvent {
  runId: string;
  taskId: string | null;
  kind: TaskEventKind | string;
  attempt: number;
  timestamp: string | number;
  data?: Record<string, unknown> | null;
}

export interface CancelParams {
  runId: string;
  taskId?: string;
}

export interface CancelResult {
  cancelled: string[];
}

export interface StatusParams {
  runId?: string;
}

export interface StatusResult {
  runs: unknown[];
}

export type ReviewAction = 'accept' | 'reject' | 'retry';

export interface ReviewParams {
  runId: string;
  taskId: string;
  action: ReviewAction;
  /** Required for `retry`: what the agent should do differently. */
  feedback?: string;
}

/** The task's status after the decision, with its review fields. */
export interface ReviewResult {
  runId: string;
  taskId: string;
  status: string;
  branch?: string;
  changes?: Changes;
}

export interface DiffParams {
  runId: string;
  taskId: string;
}

export type FileChangeStatus = 'added' | 'modified' | 'deleted';

export interface FileDiff {
  path: string;
  status: FileChangeStatus | string;
  baseBlob?: string | null;
  resultBlob?: string | null;
  /** The file's text at the merge base; null when absent, binary or too large. */
  base: string | null;
  /** The file's text on the task's branch; null when absent, binary or too large. */
  result: string | null;
}

export interface DiffResult {
  branch: string;
  baseBranch: string;
  /** The merge base (a commit id). */
  base: string;
  head: string;
  files: FileDiff[];
  /** The unified diff. */
  diff: string;
}

/**
 * A task as the run's first event (`runStarted`, `data.tasks`) announces it: what the server
 * read from the plan, so a client learns a run's tasks, prompts and logs without parsing plans.
 * An older server sends the ids alone.
 */
export interface PlannedTask {
  id: string;
  prompt?: string;
  agent?: string;
  /** Where the task is declared in the plan document (LSP range), when it comes from one. */
  range?: Range;
  logPath?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A `parex/taskEvent` payload, or undefined when it lacks what every event must have. */
export function parseTaskEvent(value: unknown): TaskEvent | undefined {
  if (!isRecord(value)) return undefined;
  const { runId, taskId, kind, attempt, timestamp, data } = value;
  if (typeof runId !== 'string' || runId === '' || typeof kind !== 'string' || kind === '') return undefined;
  if (taskId !== null && taskId !== undefined && typeof taskId !== 'string') return undefined;
  return {
    runId,
    taskId: typeof taskId === 'string' ? taskId : null,
    kind,
    attempt: typeof attempt === 'number' && Number.isFinite(attempt) ? attempt : 1,
    timestamp: typeof timestamp === 'string' || typeof timestamp === 'number' ? timestamp : '',
    data: isRecord(data) ? data : undefined,
  };
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function parseTaskResult(value: unknown): TaskResult | undefined {
  if (!isRecord(value) || typeof value.id !== 'string') return undefined;
  const result: TaskResult = {
    id: value.id,
    status: typeof value.status === 'string' ? value.status : 'unknown',
    attempts: num(value.attempts, 0),
    durationMs: num(value.durationMs, 0),
  };
  if (typeof value.exitCode === 'number') result.exitCode = value.exitCode;
  if (typeof value.error === 'string') result.error = value.error;
  if (typeof value.code === 'string') result.code = value.code;
  if (typeof value.logUri === 'string') result.logUri = value.logUri;
  if (typeof value.logPath === 'string' && value.logPath !== '') result.logPath = value.logPath;
  if (typeof value.reusedFrom === 'string' && value.reusedFrom !== '') result.reusedFrom = value.reusedFrom;
  if (typeof value.answer === 'string') result.answer = value.answer;
  const usage = parseUsage(value.usage);
  if (usage) result.usage = usage;
  if (typeof value.branch === 'string' && value.branch !== '') result.branch = value.branch;
  const changes = parseChanges(value.changes);
  if (changes) result.changes = changes;
  return result;
}

/** `{promptTokens, completionTokens, costUsd?}`, keeping only the finite numbers; undefined when none is. */
export function parseUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const usage: Usage = {};
  for (const key of ['promptTokens', 'completionTokens', 'costUsd'] as const) {
    const n = value[key];
    if (typeof n === 'number' && Number.isFinite(n)) usage[key] = n;
  }
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/** A `RunResult`, or undefined when `value` does not look like one (no runId or no tasks list). */
export function parseRunResult(value: unknown): RunResult | undefined {
  if (!isRecord(value) || typeof value.runId !== 'string' || !Array.isArray(value.tasks)) return undefined;
  const tasks = value.tasks.map(parseTaskResult).filter((t): t is TaskResult => t !== undefined);
  const wallMs = num(value.wallMs);
  const workMs = num(value.workMs, tasks.reduce((sum, t) => sum + t.durationMs, 0));
  const result: RunResult = {
    runId: value.runId,
    status: typeof value.status === 'string' ? value.status : 'unknown',
    tasks,
    wallMs,
    workMs,
    speedup: num(value.speedup, wallMs > 0 ? workMs / wallMs : 0),
  };
  const usage = parseUsage(value.usage);
  if (usage) result.usage = usage;
  const budget = isRecord(value.budget) ? parseBudget(value.budget.budget) : undefined;
  if (budget && isRecord(value.budget)) {
    result.budget = { spent: parseUsage(value.budget.spent) ?? {}, budget, exceeded: value.budget.exceeded === true };
    if (typeof value.budget.summary === 'string') result.budget.summary = value.budget.summary;
  }
  return result;
}

/**
 * The log uri in an answer to `parex.showLog`: the protocol says the uri itself; a `{uri}` or
 * `{logUri}` object is accepted too.
 */
export function parseLogUri(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (isRecord(value)) {
    if (typeof value.uri === 'string' && value.uri !== '') return value.uri;
    if (typeof value.logUri === 'string' && value.logUri !== '') return value.logUri;
  }
  return undefined;
}

function isPosition(value: unknown): value is Position {
  return isRecord(value) && Number.isInteger(value.line) && Number.isInteger(value.character);
}

function parseRange(value: unknown): Range | undefined {
  if (!isRecord(value) || !isPosition(value.start) || !isPosition(value.end)) return undefined;
  return {
    start: { line: value.start.line, character: value.start.character },
    end: { line: value.end.line, character: value.end.character },
  };
}

/**
 * The tasks a `runStarted` event announces (`data.tasks`), in plan order: objects
 * `{id, prompt, agent, range, logPath}`, or bare ids from an older server. Undefined when the
 * event has no task list; entries without an id are dropped.
 */
export function parsePlannedTasks(data: Record<string, unknown> | null | undefined): PlannedTask[] | undefined {
  const raw = data?.tasks;
  if (!Array.isArray(raw)) return undefined;
  const tasks: PlannedTask[] = [];
  for (const entry of raw) {
    if (typeof entry === 'string') {
      if (entry !== '') tasks.push({ id: entry });
      continue;
    }
    if (!isRecord(entry) || typeof entry.id !== 'string' || entry.id === '') continue;
    const task: PlannedTask = { id: entry.id };
    if (typeof entry.prompt === 'string') task.prompt = entry.prompt;
    if (typeof entry.agent === 'string' && entry.agent !== '') task.agent = entry.agent;
    const range = parseRange(entry.range);
    if (range) task.range = range;
    if (typeof entry.logPath === 'string' && entry.logPath !== '') task.logPath = entry.logPath;
    tasks.push(task);
  }
  return tasks;
}

/** `{files, added, removed, commits}`, when every field is a finite number. */
export function parseChanges(value: unknown): Changes | undefined {
  if (!isRecord(value)) return undefined;
  const { files, added, removed, commits } = value;
  const all = [files, added, removed, commits];
  if (!all.every((n) => typeof n === 'number' && Number.isFinite(n))) return undefined;
  return { files: files as number, added: added as number, removed: removed as number, commits: commits as number };
}

/** `{usd?, tokens?}`, keeping the positive numbers; undefined when none is. */
export function parseBudget(value: unknown): Budget | undefined {
  if (!isRecord(value)) return undefined;
  const budget: Budget = {};
  if (typeof value.usd === 'number' && value.usd > 0) budget.usd = value.usd;
  if (typeof value.tokens === 'number' && value.tokens > 0) budget.tokens = value.tokens;
  return budget.usd !== undefined || budget.tokens !== undefined ? budget : undefined;
}

/** An answer to `parex/diff`, or undefined when it lacks its files; files without a path are dropped. */
export function parseDiffResult(value: unknown): DiffResult | undefined {
  if (!isRecord(value) || !Array.isArray(value.files)) return undefined;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const files: FileDiff[] = [];
  for (const f of value.files) {
    if (!isRecord(f) || typeof f.path !== 'string' || f.path === '') continue;
    files.push({
      path: f.path,
      status: typeof f.status === 'string' ? f.status : 'modified',
      baseBlob: text(f.baseBlob),
      resultBlob: text(f.resultBlob),
      base: text(f.base),
      result: text(f.result),
    });
  }
  return {
    branch: typeof value.branch === 'string' ? value.branch : '',
    baseBranch: typeof value.baseBranch === 'string' ? value.baseBranch : '',
    base: typeof value.base === 'string' ? value.base : '',
    head: typeof value.head === 'string' ? value.head : '',
    files,
    diff: typeof value.diff === 'string' ? value.diff : '',
  };
}
