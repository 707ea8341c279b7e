// The parex extensions of LSP, typed: what the extension sends and receives besides standard
// LSP (docs/protocol.md §2–3). Results and events are still parsed defensively (protocol.ts):
// the types say what the contract promises, the parsers cope with a server that breaks it.
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type {
  CancelParams,
  CancelResult,
  DiffParams,
  DiffResult,
  PlanParams,
  ReviewParams,
  ReviewResult,
  RunParams,
  RunResult,
  StatusParams,
  StatusResult,
  TaskEvent,
} from './protocol';

/** Runs a plan; answers with the `RunResult` when the run ends (or `{runId}` when detached). */
export const run = new RequestType<RunParams, RunResult | { runId: string }, void>('parex/run');
/** Cancels a run, or one task of it. */
export const cancel = new RequestType<CancelParams, CancelResult, void>('parex/cancel');
/** The live runs of the server, or one. */
export const status = new RequestType<StatusParams, StatusResult, void>('parex/status');
/** Decides a `ready` task of a review-mode run: accept (merge), reject (branch kept), retry with feedback. */
export const review = new RequestType<ReviewParams, ReviewResult, void>('parex/review');
/** A task's branch against its merge base: each changed file's base and result texts, and the unified diff. */
export const diff = new RequestType<DiffParams, DiffResult, void>('parex/diff');
/** Drafts a plan with the workspace's planning agent: `{text, valid, rounds, problems}` (nothing is written). */
export const plan = new RequestType<PlanParams, unknown, void>('parex/plan');
/** Every state change and output chunk of a run; the first (`runStarted`) lists the run's tasks. */
export const taskEvent = new NotificationType<TaskEvent>('parex/taskEvent');

/** Commands the server lists in `executeCommandProvider` (sent through workspace/executeCommand). */
export const SERVER_COMMAND_SHOW_LOG = 'parex.showLog';
export const SERVER_COMMAND_RETRY_TASK = 'parex.retryTask';
