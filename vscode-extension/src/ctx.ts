// What one window of the extension holds: the language client, the views a run is shown in,
// the run going on (a RunSession) and the last one. Starts runs, routes the server's task
// events to the session they belong to, and presents a run's end.
import * as vscode from 'vscode';
import { WorkDoneProgress } from 'vscode-languageclient/node';
import { answersMarkdown, hasAnswers, withEarlierAnswers } from './answers';
import { AnswersProvider, ANSWERS_SCHEME, KEEP_ANSWERS, showAnswers } from './answersView';
import { ParexClient } from './client';
import { summaryMessage, summarySeverity, tagLines } from './format';
import * as lsp_ext from './lsp_ext';
import { splitLines } from './planDetect';
import {
  parseRunResult,
  parseTaskEvent,
  type PlanRef,
  type ReviewAction,
  type ReviewResult,
  type RunParams,
  type RunResult,
  type TaskEvent,
} from './protocol';
import { DIFF_SCHEME } from './reviewDiff';
import { ReviewDiffs } from './reviewDiffs';
import { RunModel } from './runModel';
import { withRunSettings } from './runSettings';
import { RunSession, type RunViews } from './session';
import { TaskTreeProvider } from './taskTree';

const INVALID_PARAMS = -32602;

/** The last run that ended in this window: what "Retry Failed" and the task commands are about. */
export interface LastRun {
  runId: string;
  label: string;
  plan: PlanRef | undefined;
  model: RunModel;
}

export class Ctx implements RunViews {
  readonly output = vscode.window.createOutputChannel('Parallel Tasks');
  readonly serverLog = vscode.window.createOutputChannel('parex Language Server');
  /** The changed files of ready tasks (`parex/diff`), for the view and the diff editor. */
  readonly diffs = new ReviewDiffs(() => this.client.running);
  readonly tree = new TaskTreeProvider(this.diffs);
  readonly treeView = vscode.window.createTreeView('parexTasks', { treeDataProvider: this.tree, showCollapseAll: false });
  readonly statusBar = vscode.window.createStatusBarItem('parex.run', vscode.StatusBarAlignment.Left, 10);
  readonly answers = new AnswersProvider();
  readonly client: ParexClient;
  session: RunSession | undefined;
  lastRun: LastRun | undefined;
  /** The answers document of the last run that had answers. */
  lastAnswers: vscode.Uri | undefined;
  /** Results with answers, by run id (the last KEEP_ANSWERS): a resume takes its kept tasks' answers from there. */
  private readonly answered = new Map<string, RunResult>();
  /** Runs whose end was shown: their late events are not taken for a new run. */
  private readonly endedRuns = new Set<string>();

  constructor(context: vscode.ExtensionContext) {
    this.client = new ParexClient(context.extensionPath, this.serverLog, (raw) => this.onTaskEvent(raw));
    this.statusBar.name = 'Parallel Tasks';
    this.statusBar.command = 'parexTasks.focus';
    context.subscriptions.push(
      this.output,
      this.serverLog,
      this.treeView,
      this.statusBar,
      this.answers,
      vscode.workspace.registerTextDocumentContentProvider(ANSWERS_SCHEME, this.answers),
      this.diffs,
      vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, this.diffs),
      this.client,
    );
    // The Parallel Tasks view shows from now on (showing it earlier would activate the extension in every workspace).
    void vscode.commands.executeCommand('setContext', 'parex.active', true);
    void this.setContext(false, false);
  }

  /** A run is going on in this window. */
  get busy(): boolean {
    return this.session !== undefined && !this.session.ended;
  }

  /** Sends `parex/run` and shows the run until its result comes back. */
  async run(params: Omit<RunParams, 'workDoneToken'>, label: string, taskIds: readonly string[]): Promise<void> {
    if (this.session && !this.session.ended) {
      const running = this.session;
      const choice = await vscode.window.showWarningMessage(`parex: a run is going on (${running.label}).`, 'Cancel It', 'Show Tasks');
      if (choice === 'Cancel It') await this.cancel(running);
      if (choice === 'Show Tasks') void vscode.commands.executeCommand('parexTasks.focus');
      return;
    }
    const client = await this.client.start();
    if (!client) return;
    const config = vscode.workspace.getConfiguration('parex');
    const request: RunParams = withRunSettings(params, {
      maxConcurrency: config.get('maxConcurrency'),
      executor: config.get('executor'),
      rayAddress: config.get('rayAddress'),
    });
    const token = `parex-vscode/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    request.workDoneToken = token;
    const session = this.begin(true, label, new RunModel(taskIds, Date.now()), params);
    const progressListener = client.onProgress(WorkDoneProgress.type, token, (value) => session.onRunProgress(value));
    let result: RunResult | undefined;
    try {
      const raw: unknown = await client.sendRequest(lsp_ext.run, request, session.requestCancel.token);
      result = parseRunResult(raw);
      if (!result) throw new Error(`unexpected answer to ${lsp_ext.run.method}: ${JSON.stringify(raw)}`);
    } catch (err) {
      this.failed(session, err);
      return;
    } finally {
      progressListener.dispose();
    }
    this.finished(session, result);
  }

  /** Cancels a run: `parex/cancel` once its id is known, else `$/cancelRequest` on the pending `parex/run`. */
  async cancel(session: RunSession): Promise<void> {
    if (session.ended) return;
    session.markCancelRequested();
    const runId = session.model.runId;
    const client = this.client.running;
    if (runId && client) {
      try {
        await client.sendRequest(lsp_ext.cancel, { runId });
        return;
      } catch (err) {
        this.serverLog.appendLine(`${lsp_ext.cancel.method} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    session.requestCancel.cancel();
  }

  /**
   * Decides a ready task (`parex/review`). The run's events then show what followed (merged and
   * succeeded, rejected, or queued again); the answer's status is returned for the caller to say.
   */
  async review(runId: string, taskId: string, action: ReviewAction, feedback?: string): Promise<ReviewResult> {
    const client = await this.client.start();
    if (!client) throw new Error('the parex language server is not running');
    const params = feedback === undefined ? { runId, taskId, action } : { runId, taskId, action, feedback };
    const result = await client.sendRequest(lsp_ext.review, params);
    this.diffs.forget(runId, taskId);
    this.tree.refresh();
    return result;
  }

  /** The run a task command is about: the one shown, or the last one. */
  currentModel(): RunModel | undefined {
    return this.session?.model ?? this.lastRun?.model;
  }

  async showLastAnswers(): Promise<boolean> {
    if (!this.lastAnswers) return false;
    await showAnswers(this.lastAnswers, false);
    return true;
  }

  private begin(own: boolean, label: string, model: RunModel, params: Omit<RunParams, 'workDoneToken'> | undefined): RunSession {
    const session = new RunSession(this, { own, label, model, params, onCancel: (s) => void this.cancel(s) });
    this.session = session;
    void this.setContext(true, false);
    return session;
  }

  private onTaskEvent(raw: unknown): void {
    const event = parseTaskEvent(raw);
    if (!event) return;
    let session = this.busy ? this.session : undefined;
    if (session && session.model.runId !== undefined && session.model.runId !== event.runId) {
      // Another run (another client, or a second one of ours): its output only.
      this.logForeign(event);
      return;
    }
    if (!session) {
      if (this.endedRuns.has(event.runId)) return;
      // A run this window did not ask for through "Run Parallel Tasks", such as a "Retry task"
      // code action: show it all the same.
      session = this.begin(false, `run ${event.runId}`, new RunModel([], Date.now(), event.runId), undefined);
    }
    // A task that leaves `ready` (or becomes ready again after a retry) has another diff.
    if (event.taskId !== null && event.kind !== 'output' && event.kind !== 'usage' && event.kind !== 'conflictPredicted') {
      this.diffs.forget(event.runId, event.taskId);
    }
    session.apply(event);
    if (event.kind === 'runFinished' && !session.own) {
      this.finished(session, parseRunResult(event.data) ?? session.model.summary(Date.now()));
    }
  }

  private logForeign(event: TaskEvent): void {
    if (event.kind !== 'output' || event.taskId === null) return;
    const text = typeof event.data?.text === 'string' ? event.data.text : '';
    for (const line of tagLines(`${event.runId}/${event.taskId}`, splitLines(text.replace(/\r?\n$/, '')))) {
      this.output.appendLine(line);
    }
  }

  private finished(session: RunSession, result: RunResult): void {
    session.finish(result);
    this.endedRuns.add(result.runId);
    this.lastRun = { runId: result.runId, label: session.label, plan: session.params?.plan, model: session.model };
    this.presentAnswers(session, result.runId);
    const message = summaryMessage(result);
    this.output.appendLine(`=== ${message}`);
    const failed = result.tasks.some((t) => t.status !== 'succeeded');
    void this.setContext(false, failed);
    const actions = failed ? ['Show Problems', 'Retry Failed', 'Show Log', 'Show Timeline'] : ['Show Log', 'Show Timeline'];
    const severity = summarySeverity(result);
    const show =
      severity === 'error'
        ? vscode.window.showErrorMessage
        : severity === 'warning'
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    void show(message, ...actions).then((choice) => {
      if (choice === 'Show Problems') void vscode.commands.executeCommand('workbench.actions.view.problems');
      if (choice === 'Retry Failed') void vscode.commands.executeCommand('parex.retryFailedParallelTasks');
      if (choice === 'Show Log') void vscode.commands.executeCommand('parex.showParallelTaskLog');
      if (choice === 'Show Timeline') void vscode.commands.executeCommand('parex.showRunTimeline', result.runId);
    });
  }

  /** The answers of model tasks (a callN: fan-out), side by side with the document. */
  private presentAnswers(session: RunSession, runId: string): void {
    const withAnswers = withEarlierAnswers(session.model.summary(Date.now()), (id) => this.answered.get(id));
    if (!hasAnswers(withAnswers)) return;
    this.answered.set(runId, withAnswers);
    while (this.answered.size > KEEP_ANSWERS) this.answered.delete(this.answered.keys().next().value as string);
    const uri = this.answers.uriFor(runId);
    this.answers.set(uri, answersMarkdown(withAnswers, { label: session.label, prompts: session.model.prompts() }));
    this.lastAnswers = uri;
    void vscode.commands.executeCommand('setContext', 'parex.hasAnswers', true);
    void showAnswers(uri, true);
  }

  private failed(session: RunSession, err: unknown): void {
    session.fail();
    if (session.model.runId) this.endedRuns.add(session.model.runId);
    void this.setContext(false, false);
    if (session.cancelRequested) {
      this.output.appendLine('=== run cancelled');
      void vscode.window.showWarningMessage(`Parallel tasks cancelled (${session.label}).`);
      return;
    }
    const code = (err as { code?: unknown })?.code;
    const message = err instanceof Error ? err.message : String(err);
    this.output.appendLine(`=== run failed to start: ${message}`);
    if (code === INVALID_PARAMS) {
      void vscode.window.showErrorMessage(`parex: the plan is invalid: ${message}`, 'Show Problems').then((c) => {
        if (c) void vscode.commands.executeCommand('workbench.actions.view.problems');
      });
    } else {
      void vscode.window.showErrorMessage(`parex: the run failed: ${message}`, 'Show Server Log').then((c) => {
        if (c) this.serverLog.show();
      });
    }
  }

  private async setContext(running: boolean, hasFailures: boolean): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'parex.running', running);
    await vscode.commands.executeCommand('setContext', 'parex.hasFailures', hasFailures);
  }
}
