// One run shown in the editor, from its request (or first event) to its end: the progress
// notification, the "Parallel Tasks" view, the status bar item and the output channel follow
// its RunModel (runModel.ts), which the server's events and result feed.
import * as vscode from 'vscode';
import type { WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport } from 'vscode-languageclient/node';
import {
  cooldownText,
  formatDuration,
  progressMessage,
  progressPercentage,
  runHeader,
  spendText,
  stateLine,
  statusBarText,
  tagLines,
} from './format';
import type { RunParams, RunResult, TaskEvent } from './protocol';
import type { RunModel } from './runModel';
import type { TaskNode, TaskTreeProvider } from './taskTree';

/** Where a run is shown; one of each per window, shared by its runs one after the other. */
export interface RunViews {
  readonly output: vscode.OutputChannel;
  readonly tree: TaskTreeProvider;
  readonly treeView: vscode.TreeView<TaskNode>;
  readonly statusBar: vscode.StatusBarItem;
}

export interface SessionOptions {
  /** Started from this window (its result comes back as the answer to `parex/run`), or only seen through its events. */
  own: boolean;
  label: string;
  model: RunModel;
  /** What was asked, for "Retry Failed Parallel Tasks" (own runs). */
  params: Omit<RunParams, 'workDoneToken'> | undefined;
  /** The person pressed Cancel on the progress notification. */
  onCancel: (session: RunSession) => void;
}

export class RunSession {
  readonly own: boolean;
  readonly label: string;
  readonly model: RunModel;
  readonly params: Omit<RunParams, 'workDoneToken'> | undefined;
  /** Cancels the pending `parex/run` ($/cancelRequest), for when there is no run id to cancel yet. */
  readonly requestCancel = new vscode.CancellationTokenSource();
  cancelRequested = false;
  ended = false;
  private progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private reported = 0;
  private lspPercentage: number | undefined;
  private lspMessage: string | undefined;
  private endProgress: () => void = () => undefined;
  private readonly ticker: NodeJS.Timeout;
  /** Whether the `parex.hasReady` context (the review commands in the palette) was last set on. */
  private hadReady: boolean | undefined; // undefined: set it on the first update, whatever a run before left

  constructor(
    private readonly views: RunViews,
    options: SessionOptions,
  ) {
    this.own = options.own;
    this.label = options.label;
    this.model = options.model;
    this.params = options.params;
    const ended = new Promise<void>((resolve) => (this.endProgress = resolve));
    views.tree.setModel(this.model);
    views.treeView.title = 'Parallel Tasks';
    views.output.appendLine(runHeader(this.label, this.model.list().length || undefined, new Date()));
    views.output.show(true);
    // Elapsed times in the view move while tasks run.
    this.ticker = setInterval(() => this.updateViews(), 1000);
    this.updateViews();
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Parallel Tasks (${this.label})`, cancellable: true },
      async (progress, cancel) => {
        this.progress = progress;
        this.updateProgress();
        const sub = cancel.onCancellationRequested(() => options.onCancel(this));
        await ended;
        sub.dispose();
      },
    );
  }

  /** The run's own work-done progress: used until the first task event gives real counts. */
  onRunProgress(value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd): void {
    if (value.kind !== 'end' && typeof value.percentage === 'number') this.lspPercentage = value.percentage;
    if (typeof value.message === 'string' && value.message !== '') this.lspMessage = value.message;
    this.updateProgress();
  }

  /** Applies one `parex/taskEvent` of this run and shows what it changed. */
  apply(event: TaskEvent): void {
    const now = Date.now();
    const applied = this.model.apply(event, now);
    if (event.taskId !== null) {
      for (const line of tagLines(event.taskId, applied.outputLines)) this.views.output.appendLine(line);
      const task = this.model.get(event.taskId);
      if (applied.stateChange && task && applied.stateChange !== 'queued') {
        this.views.output.appendLine(stateLine(task, applied.stateChange, this.model.elapsedMs(task, now)));
      }
    }
    this.updateProgress();
    this.updateViews();
  }

  markCancelRequested(): void {
    this.cancelRequested = true;
    this.updateProgress();
  }

  /** The run ended with `result`: the views show the outcome, the notification goes away. */
  finish(result: RunResult): void {
    this.model.applyResult(result, Date.now());
    this.end();
  }

  /** The run request failed (invalid plan, server gone, cancelled before it started). */
  fail(): void {
    if (!this.model.finished) this.model.finishedAt = Date.now();
    this.end();
  }

  private end(): void {
    this.ended = true;
    clearInterval(this.ticker);
    this.requestCancel.dispose();
    this.endProgress();
    this.updateViews();
  }

  private updateProgress(): void {
    if (!this.progress || this.ended) return;
    const counts = this.model.counts();
    const percentage = counts.total > 0 ? progressPercentage(counts) : (this.lspPercentage ?? 0);
    const message = counts.total > 0 ? progressMessage(counts) : (this.lspMessage ?? 'starting…');
    const increment = Math.max(0, Math.min(100, percentage) - this.reported);
    this.reported += increment;
    this.progress.report({ message: this.cancelRequested ? `cancelling… ${message}` : message, increment });
  }

  private updateViews(): void {
    const now = Date.now();
    const counts = this.model.counts();
    const { statusBar, treeView, tree } = this.views;
    // Rate-limit pauses only matter while the run goes on; the spend stays after it.
    const cooldowns = this.model.finished ? [] : this.model.activeCooldowns(now).map((c) => cooldownText(c, now));
    const spend = this.model.spend ? spendText(this.model.spend) : '';
    statusBar.text = statusBarText(counts, this.model.finished, this.model.spend, cooldowns);
    const reduced = this.model.reducedConcurrency().map((c) => `${c.agent}: ${c.level} of ${c.max} at once`);
    statusBar.tooltip = [
      `Parallel Tasks: ${this.label} — ${progressMessage(counts)}`,
      spend ? `spent: ${spend}` : '',
      ...cooldowns,
      ...(this.model.finished ? [] : reduced),
    ]
      .filter((line) => line !== '')
      .join('\n');
    statusBar.show();
    const state = this.model.finished ? summaryShort(this.model) : progressMessage(counts);
    treeView.description = [state, spend, ...cooldowns].filter((p) => p !== '').join(' · ');
    tree.refresh();
    const hasReady = counts.ready > 0;
    if (hasReady !== this.hadReady) {
      this.hadReady = hasReady;
      void vscode.commands.executeCommand('setContext', 'parex.hasReady', hasReady);
    }
  }
}

function summaryShort(model: RunModel): string {
  const result = model.summary(Date.now());
  const c = model.counts();
  const failed = c.failed + c.skipped;
  const rejected = c.rejected ? `, ${c.rejected} rejected` : '';
  return `${c.succeeded}/${c.total} succeeded${failed ? `, ${failed} failed` : ''}${rejected} · ${formatDuration(result.wallMs)}`;
}
