// The parex extension: starts `parex-lsp --stdio`, runs plans with `parex/run`, and shows a run
// as it goes (progress notification, "Parallel Tasks" view, status bar, output channel) and at
// its end (summary with the speedup). Diagnostics and the "Retry task" code action come from the
// server through the language client.
import * as os from 'node:os';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';
import { answersMarkdown, answersTitle, hasAnswers, withEarlierAnswers } from './answers';
import {
  formatDuration,
  progressMessage,
  progressPercentage,
  runHeader,
  stateIcon,
  stateLine,
  statusBarText,
  summaryMessage,
  summarySeverity,
  tagLines,
  taskDescription,
} from './format';
import { callTasks, choosePlan, PLAN_FILE_EXCLUDE, PLAN_FILE_GLOB, splitLines } from './planDetect';
import {
  METHOD_CANCEL,
  METHOD_RUN,
  NOTIFICATION_TASK_EVENT,
  parseLogUri,
  parseRunResult,
  parseTaskEvent,
  type PlanRef,
  type Range,
  type RunParams,
  type RunResult,
  SERVER_COMMAND_RETRY_TASK,
  SERVER_COMMAND_SHOW_LOG,
  type TaskEvent,
} from './protocol';
import { RunModel, type TaskView } from './runModel';
import { describeCommand, resolveServerCommand } from './serverCommand';
import { type TaskNode, TaskTreeProvider } from './taskTree';

const INVALID_PARAMS = -32602;

/** Read-only documents holding the answers of a run's model tasks (`parex-answers:/parex answers — <runId>`). */
const ANSWERS_SCHEME = 'parex-answers';
const KEEP_ANSWERS = 20;

class AnswersProvider implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  uriFor(runId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: ANSWERS_SCHEME, path: `/${answersTitle(runId)}` });
  }

  set(uri: vscode.Uri, text: string): void {
    const key = uri.toString();
    this.texts.delete(key);
    this.texts.set(key, text);
    while (this.texts.size > KEEP_ANSWERS) this.texts.delete(this.texts.keys().next().value as string);
    this.changed.fire(uri);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '_The answers of this run are no longer kept in this window._\n';
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** One run shown in the editor: started here (own) or seen through its events (a retry from a code action). */
interface Session {
  readonly own: boolean;
  readonly label: string;
  readonly model: RunModel;
  /** What was asked, for "Retry Failed Parallel Tasks" (own runs). */
  readonly params: Omit<RunParams, 'workDoneToken'> | undefined;
  /** The prompts of the `callN:` lines that were run, by task id (for the answers document). */
  readonly prompts: ReadonlyMap<string, string> | undefined;
  readonly requestCancel: vscode.CancellationTokenSource;
  progress?: vscode.Progress<{ message?: string; increment?: number }>;
  reported: number;
  lspPercentage?: number;
  lspMessage?: string;
  cancelRequested: boolean;
  ended: boolean;
  end: () => void;
}

interface LastRun {
  runId: string;
  label: string;
  plan: PlanRef | undefined;
  model: RunModel;
  prompts: ReadonlyMap<string, string> | undefined;
}

let extension: ParexExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = new ParexExtension(context);
  await extension.startClient();
}

export async function deactivate(): Promise<void> {
  await extension?.stopClient();
  extension = undefined;
}

class ParexExtension {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private readonly output = vscode.window.createOutputChannel('Parallel Tasks');
  private readonly serverLog = vscode.window.createOutputChannel('parex Language Server');
  private readonly tree = new TaskTreeProvider();
  private readonly treeView: vscode.TreeView<TaskNode>;
  private readonly statusBar = vscode.window.createStatusBarItem('parex.run', vscode.StatusBarAlignment.Left, 10);
  private session: Session | undefined;
  private lastRun: LastRun | undefined;
  private readonly answers = new AnswersProvider();
  /** The answers document of the last run that had answers. */
  private lastAnswers: vscode.Uri | undefined;
  /** Results with answers, by run id (the last KEEP_ANSWERS): a resume takes its kept tasks' answers from there. */
  private readonly answered = new Map<string, RunResult>();
  /** Runs whose end was shown: their late events are not taken for a new run. */
  private readonly endedRuns = new Set<string>();
  private ticker: NodeJS.Timeout | undefined;

  constructor(context: vscode.ExtensionContext) {
    this.treeView = vscode.window.createTreeView('parexTasks', { treeDataProvider: this.tree, showCollapseAll: false });
    this.statusBar.name = 'Parallel Tasks';
    this.statusBar.command = 'parexTasks.focus';
    context.subscriptions.push(
      this.output,
      this.serverLog,
      this.treeView,
      this.statusBar,
      vscode.commands.registerCommand('parex.runParallelTasks', () => this.runCommand()),
      vscode.commands.registerCommand('parex.cancelParallelTasks', () => this.cancelCommand()),
      vscode.commands.registerCommand('parex.retryFailedParallelTasks', () => this.retryFailedCommand()),
      vscode.commands.registerCommand('parex.showParallelTaskLog', (node?: TaskNode) => this.showLogCommand(node)),
      vscode.commands.registerCommand('parex.showParallelTaskAnswers', () => this.showAnswersCommand()),
      vscode.workspace.registerTextDocumentContentProvider(ANSWERS_SCHEME, this.answers),
      this.answers,
      vscode.commands.registerCommand('parex.cancelParallelTask', (node?: TaskNode) => this.cancelTaskCommand(node)),
      vscode.commands.registerCommand('parex.retryParallelTask', (node?: TaskNode) => this.retryTaskCommand(node)),
      vscode.commands.registerCommand('parex.restartServer', () => this.restartClient()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('parex.serverCommand') && !this.session) void this.restartClient();
      }),
      { dispose: () => this.stopTicker() },
    );
    void this.setContext(false, false);
  }

  // ---- the language client -------------------------------------------------------------------

  async startClient(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    if (this.starting) return this.starting;
    this.starting = this.doStartClient().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStartClient(): Promise<LanguageClient | undefined> {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const cmd = resolveServerCommand({
      configured: vscode.workspace.getConfiguration('parex').get('serverCommand'),
      pathEnv: process.env.PATH,
      workspaceFolders: folders,
      homeDir: os.homedir(),
    });
    this.serverLog.appendLine(`starting (${cmd.source}): ${describeCommand(cmd)}`);
    // No `transport`: the language client would append its own `--stdio`.
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      options: { cwd: folders[0] ?? os.homedir(), env: process.env },
    };
    const clientOptions: LanguageClientOptions = {
      // Plan files, and any document whose callN: lines may be run: the server reads open
      // documents from the editor, unsaved changes included.
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher(PLAN_FILE_GLOB) },
      outputChannel: this.serverLog,
      diagnosticCollectionName: 'parex',
    };
    const client = new LanguageClient('parex', 'parex', serverOptions, clientOptions);
    this.client = client;
    client.onNotification(NOTIFICATION_TASK_EVENT, (raw: unknown) => this.onTaskEvent(raw));
    try {
      await client.start();
      return client;
    } catch (err) {
      this.client = undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.serverLog.appendLine(`could not start the server: ${message}`);
      void vscode.window
        .showErrorMessage(
          `parex: could not start the language server (${describeCommand(cmd)}): ${message}. ` +
            'Install parex-lsp (pip install parex-lsp) or set "parex.serverCommand".',
          'Open Settings',
          'Show Log',
        )
        .then((choice) => {
          if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'parex.serverCommand');
          if (choice === 'Show Log') this.serverLog.show();
        });
      try {
        await client.dispose();
      } catch {
        // already stopped
      }
      return undefined;
    }
  }

  async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop();
      } catch {
        // stopping a client that never started
      }
    }
  }

  private async restartClient(): Promise<void> {
    await this.stopClient();
    await this.startClient();
  }

  // ---- Run Parallel Tasks -------------------------------------------------------------------

  private async runCommand(): Promise<void> {
    const target = await this.pickPlan();
    if (!target) return;
    await this.run({ plan: target.plan }, target.label, target.taskIds, target.prompts);
  }

  /** The plan "Run Parallel Tasks" means: the active plan file, callN: lines, or one picked. */
  private async pickPlan(): Promise<
    { plan: PlanRef; label: string; taskIds: string[]; prompts?: ReadonlyMap<string, string> } | undefined
  > {
    const editor = vscode.window.activeTextEditor;
    const doc = editor?.document;
    const choice = choosePlan(
      doc
        ? {
            uri: doc.uri.toString(),
            fileName: doc.fileName,
            text: doc.getText(),
            selection: editor && !editor.selection.isEmpty ? toRange(editor.selection) : undefined,
          }
        : undefined,
    );
    if (choice.kind === 'file' && doc) {
      return { plan: { uri: choice.uri }, label: vscode.workspace.asRelativePath(doc.uri), taskIds: [] };
    }
    if (choice.kind === 'calls' && doc) {
      const label = `${vscode.workspace.asRelativePath(doc.uri)}: ${choice.taskIds.join(', ')}`;
      const tasks = callTasks(splitLines(doc.getText()), choice.range);
      const prompts = new Map(tasks.map((t) => [t.id, t.prompt]));
      if (doc.uri.scheme !== 'file') {
        // The server cannot read an untitled document from disk: send its calls inline.
        return { plan: { tasks }, label, taskIds: choice.taskIds, prompts };
      }
      return { plan: { uri: choice.uri, range: choice.range }, label, taskIds: choice.taskIds, prompts };
    }
    const files = await vscode.workspace.findFiles(PLAN_FILE_GLOB, PLAN_FILE_EXCLUDE, 200);
    if (files.length === 0) {
      void vscode.window.showWarningMessage(
        'parex: nothing to run. Open a parex.toml (or *.parex.toml), or select lines that start with callN:.',
      );
      return undefined;
    }
    files.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
    let uri: vscode.Uri | undefined = files[0];
    if (files.length > 1) {
      const picked = await vscode.window.showQuickPick(
        files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })),
        { title: 'Run Parallel Tasks', placeHolder: 'Plan file to run' },
      );
      uri = picked?.uri;
    }
    if (!uri) return undefined;
    return { plan: { uri: uri.toString() }, label: vscode.workspace.asRelativePath(uri), taskIds: [] };
  }

  /** Sends `parex/run` and shows the run until its result comes back. */
  private async run(
    params: Omit<RunParams, 'workDoneToken'>,
    label: string,
    taskIds: readonly string[],
    prompts?: ReadonlyMap<string, string>,
  ): Promise<void> {
    if (this.session && !this.session.ended) {
      const choice = await vscode.window.showWarningMessage(
        `parex: a run is going on (${this.session.label}).`,
        'Cancel It',
        'Show Tasks',
      );
      if (choice === 'Cancel It') await this.cancelSession(this.session);
      if (choice === 'Show Tasks') void vscode.commands.executeCommand('parexTasks.focus');
      return;
    }
    const client = await this.startClient();
    if (!client) return;
    const maxConcurrency = vscode.workspace.getConfiguration('parex').get<number | null>('maxConcurrency');
    const request: RunParams = { ...params };
    if (typeof maxConcurrency === 'number' && maxConcurrency > 0 && request.maxConcurrency === undefined) {
      request.maxConcurrency = maxConcurrency;
    }
    const token = `parex-vscode/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    request.workDoneToken = token;
    const session = this.beginSession(true, label, new RunModel(taskIds, Date.now()), request, prompts);
    const progressListener = client.onProgress(WorkDoneProgress.type, token, (value) => this.onRunProgress(session, value));
    let result: RunResult | undefined;
    try {
      const raw = await client.sendRequest(METHOD_RUN, request, session.requestCancel.token);
      result = parseRunResult(raw);
      if (!result) throw new Error(`unexpected answer to ${METHOD_RUN}: ${JSON.stringify(raw)}`);
    } catch (err) {
      this.failSession(session, err);
      return;
    } finally {
      progressListener.dispose();
    }
    this.finishSession(session, result);
  }

  private beginSession(
    own: boolean,
    label: string,
    model: RunModel,
    params: Omit<RunParams, 'workDoneToken'> | undefined,
    prompts?: ReadonlyMap<string, string>,
  ): Session {
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const session: Session = {
      own,
      label,
      model,
      params,
      prompts,
      requestCancel: new vscode.CancellationTokenSource(),
      reported: 0,
      cancelRequested: false,
      ended: false,
      end: () => {
        session.ended = true;
        end();
      },
    };
    this.session = session;
    this.tree.setModel(model);
    this.treeView.title = 'Parallel Tasks';
    this.output.appendLine(runHeader(label, model.list().length || undefined, new Date()));
    this.output.show(true);
    void this.setContext(true, false);
    this.startTicker();
    this.updateViews(session);
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Parallel Tasks (${label})`, cancellable: true },
      async (progress, cancel) => {
        session.progress = progress;
        this.updateProgress(session);
        const sub = cancel.onCancellationRequested(() => void this.cancelSession(session));
        await ended;
        sub.dispose();
      },
    );
    return session;
  }

  private onRunProgress(session: Session, value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd): void {
    if (value.kind !== 'end' && typeof value.percentage === 'number') session.lspPercentage = value.percentage;
    if (typeof value.message === 'string' && value.message !== '') session.lspMessage = value.message;
    this.updateProgress(session);
  }

  private updateProgress(session: Session): void {
    if (!session.progress || session.ended) return;
    const counts = session.model.counts();
    const percentage = counts.total > 0 ? progressPercentage(counts) : (session.lspPercentage ?? 0);
    const message = counts.total > 0 ? progressMessage(counts) : (session.lspMessage ?? 'starting…');
    const increment = Math.max(0, Math.min(100, percentage) - session.reported);
    session.reported += increment;
    session.progress.report({ message: session.cancelRequested ? `cancelling… ${message}` : message, increment });
  }

  private updateViews(session: Session): void {
    const counts = session.model.counts();
    this.statusBar.text = statusBarText(counts, session.model.finished);
    this.statusBar.tooltip = `Parallel Tasks: ${session.label} — ${progressMessage(counts)}`;
    this.statusBar.show();
    this.treeView.description = session.model.finished ? summaryShort(session.model) : progressMessage(counts);
    this.tree.refresh();
  }

  // ---- events from the server -----------------------------------------------------------------

  private onTaskEvent(raw: unknown): void {
    const event = parseTaskEvent(raw);
    if (!event) return;
    let session = this.session && !this.session.ended ? this.session : undefined;
    if (session && session.model.runId !== undefined && session.model.runId !== event.runId) {
      // Another run (another client, or a second one of ours): its output only.
      this.logForeign(event);
      return;
    }
    if (!session) {
      if (this.endedRuns.has(event.runId)) return;
      // A run this window did not ask for through "Run Parallel Tasks", such as a "Retry task"
      // code action: show it all the same.
      session = this.beginSession(false, `run ${event.runId}`, new RunModel([], Date.now(), event.runId), undefined);
    }
    const now = Date.now();
    const applied = session.model.apply(event, now);
    if (event.taskId !== null) {
      if (applied.outputLines.length > 0) {
        for (const line of tagLines(event.taskId, applied.outputLines)) this.output.appendLine(line);
      }
      const task = session.model.get(event.taskId);
      if (applied.stateChange && task && applied.stateChange !== 'queued') {
        this.output.appendLine(stateLine(task, applied.stateChange, session.model.elapsedMs(task, now)));
      }
    }
    if (event.kind === 'runFinished' && !session.own) {
      const result = parseRunResult(event.data);
      this.finishSession(session, result ?? session.model.summary(now));
      return;
    }
    this.updateProgress(session);
    this.updateViews(session);
  }

  private logForeign(event: TaskEvent): void {
    if (event.kind !== 'output' || event.taskId === null) return;
    const text = typeof event.data?.text === 'string' ? event.data.text : '';
    for (const line of tagLines(`${event.runId}/${event.taskId}`, splitLines(text.replace(/\r?\n$/, '')))) {
      this.output.appendLine(line);
    }
  }

  // ---- the end of a run --------------------------------------------------------------------------

  private finishSession(session: Session, result: RunResult): void {
    const now = Date.now();
    session.model.applyResult(result, now);
    session.end();
    this.endedRuns.add(result.runId);
    this.lastRun = {
      runId: result.runId,
      label: session.label,
      plan: session.params?.plan,
      model: session.model,
      prompts: session.prompts,
    };
    this.stopTicker();
    this.updateViews(session);
    // The answers of model tasks (a callN: fan-out), side by side with the document.
    const withAnswers = withEarlierAnswers(session.model.summary(now), (runId) => this.answered.get(runId));
    if (hasAnswers(withAnswers)) {
      this.answered.set(result.runId, withAnswers);
      while (this.answered.size > KEEP_ANSWERS) this.answered.delete(this.answered.keys().next().value as string);
      const uri = this.answers.uriFor(result.runId);
      this.answers.set(uri, answersMarkdown(withAnswers, { label: session.label, prompts: session.prompts }));
      this.lastAnswers = uri;
      void vscode.commands.executeCommand('setContext', 'parex.hasAnswers', true);
      void this.showAnswers(uri, true);
    }
    const message = summaryMessage(result);
    this.output.appendLine(`=== ${message}`);
    const failed = result.tasks.some((t) => t.status !== 'succeeded');
    void this.setContext(false, failed);
    const actions = failed ? ['Show Problems', 'Retry Failed', 'Show Log'] : ['Show Log'];
    const severity = summarySeverity(result);
    const show =
      severity === 'error'
        ? vscode.window.showErrorMessage
        : severity === 'warning'
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    void show(message, ...actions).then((choice) => {
      if (choice === 'Show Problems') void vscode.commands.executeCommand('workbench.actions.view.problems');
      if (choice === 'Retry Failed') void this.retryFailedCommand();
      if (choice === 'Show Log') void this.showLogCommand();
    });
  }

  private failSession(session: Session, err: unknown): void {
    session.end();
    if (session.model.runId) this.endedRuns.add(session.model.runId);
    this.stopTicker();
    void this.setContext(false, false);
    const now = Date.now();
    if (!session.model.finished) session.model.finishedAt = now;
    this.updateViews(session);
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

  // ---- Cancel / Retry / Show Log -------------------------------------------------------------

  private async cancelCommand(): Promise<void> {
    const session = this.session;
    if (!session || session.ended) {
      void vscode.window.showInformationMessage('parex: no run is going on.');
      return;
    }
    await this.cancelSession(session);
  }

  private async cancelSession(session: Session): Promise<void> {
    if (session.ended) return;
    session.cancelRequested = true;
    this.updateProgress(session);
    const runId = session.model.runId;
    const client = this.client;
    if (runId && client) {
      try {
        await client.sendRequest(METHOD_CANCEL, { runId });
        return;
      } catch (err) {
        this.serverLog.appendLine(`${METHOD_CANCEL} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // No run id yet (or parex/cancel failed): $/cancelRequest on the pending parex/run.
    session.requestCancel.cancel();
  }

  private async retryFailedCommand(): Promise<void> {
    const last = this.lastRun;
    if (!last?.plan) {
      // Nothing run from this window yet (or the last run came from elsewhere): resume the
      // server's last run of the plan at hand.
      const target = await this.pickPlan();
      if (!target) return;
      await this.run({ plan: target.plan, resume: last?.runId ?? 'last' }, `retry: ${target.label}`, [], target.prompts);
      return;
    }
    const retry = last.model.unfinishedOrFailed();
    if (retry.length === 0) {
      void vscode.window.showInformationMessage(`parex: every task of the last run (${last.label}) succeeded.`);
      return;
    }
    await this.run({ plan: last.plan, resume: last.runId }, `retry: ${last.label}`, retry.map((t) => t.id), last.prompts);
  }

  /** The run a task command is about: the one shown, or the last one. */
  private currentModel(): RunModel | undefined {
    return this.session?.model ?? this.lastRun?.model;
  }

  private async pickTask(title: string, node: TaskNode | undefined, filter?: (t: TaskView) => boolean): Promise<{ model: RunModel; task: TaskView } | undefined> {
    const model = this.currentModel();
    if (!model) {
      void vscode.window.showInformationMessage('parex: no run yet. Run Parallel Tasks first.');
      return undefined;
    }
    if (node) {
      const task = model.get(node.taskId);
      return task ? { model, task } : undefined;
    }
    const tasks = model.list().filter(filter ?? (() => true));
    if (tasks.length === 0) {
      void vscode.window.showInformationMessage('parex: no task to choose from in this run.');
      return undefined;
    }
    const now = Date.now();
    const picked = await vscode.window.showQuickPick(
      tasks.map((t) => ({
        label: `$(${stateIcon(t.state)}) ${t.id}`,
        description: taskDescription(t, model.elapsedMs(t, now)),
        task: t,
      })),
      { title, placeHolder: `Task of run ${model.runId ?? ''}`, matchOnDescription: true },
    );
    return picked ? { model, task: picked.task } : undefined;
  }

  private async showLogCommand(node?: TaskNode): Promise<void> {
    const picked = await this.pickTask('Show Parallel Task Log', node);
    if (!picked) return;
    const { model, task } = picked;
    let uri: string | undefined;
    const client = this.client;
    if (client && model.runId) {
      try {
        const answer = await client.sendRequest(ExecuteCommandRequest.type, {
          command: SERVER_COMMAND_SHOW_LOG,
          arguments: [{ runId: model.runId, taskId: task.id }],
        });
        uri = parseLogUri(answer);
      } catch (err) {
        this.serverLog.appendLine(`${SERVER_COMMAND_SHOW_LOG} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    uri ??= task.logUri;
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!uri && folder && model.runId) {
      uri = vscode.Uri.joinPath(folder.uri, '.parex', 'runs', model.runId, `${task.id}.log`).toString();
    }
    if (!uri) {
      void vscode.window.showWarningMessage(`parex: no log for ${task.id} yet.`);
      return;
    }
    try {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
      await vscode.window.showTextDocument(doc, { preview: true });
    } catch (err) {
      void vscode.window.showWarningMessage(`parex: cannot open the log of ${task.id} (${uri}): ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Show Parallel Task Answers: the answers document of the last run that had model answers. */
  private async showAnswersCommand(): Promise<void> {
    if (!this.lastAnswers) {
      void vscode.window.showInformationMessage(
        'parex: no answers yet. Runs of model tasks (e.g. callN: lines with a model agent) show their answers.',
      );
      return;
    }
    await this.showAnswers(this.lastAnswers, false);
  }

  private async showAnswers(uri: vscode.Uri, preserveFocus: boolean): Promise<void> {
    try {
      let doc = await vscode.workspace.openTextDocument(uri);
      if (doc.languageId !== 'markdown') doc = await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
      // Where it (or another run's answers) is shown already, there; else beside the active editor.
      const visible = vscode.window.visibleTextEditors;
      const shown =
        visible.find((e) => e.document.uri.toString() === uri.toString()) ??
        visible.find((e) => e.document.uri.scheme === ANSWERS_SCHEME);
      const viewColumn = shown?.viewColumn ?? vscode.ViewColumn.Beside;
      await vscode.window.showTextDocument(doc, { viewColumn, preview: false, preserveFocus });
    } catch (err) {
      void vscode.window.showWarningMessage(`parex: cannot show the answers: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async cancelTaskCommand(node?: TaskNode): Promise<void> {
    const session = this.session;
    if (!session || session.ended) return;
    const picked = await this.pickTask('Cancel Parallel Task', node, (t) => !['succeeded', 'failed', 'skipped', 'cancelled'].includes(t.state));
    if (!picked || !picked.model.runId || !this.client) return;
    await this.client.sendRequest(METHOD_CANCEL, { runId: picked.model.runId, taskId: picked.task.id });
  }

  private async retryTaskCommand(node?: TaskNode): Promise<void> {
    if (this.session && !this.session.ended) {
      void vscode.window.showWarningMessage('parex: wait for the run to end (or cancel it) before retrying a task.');
      return;
    }
    const picked = await this.pickTask('Retry Parallel Task', node, (t) => t.state !== 'succeeded');
    if (!picked || !picked.model.runId) return;
    const client = await this.startClient();
    if (!client) return;
    // The server starts the run; its events make it show here like any other.
    void client
      .sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_COMMAND_RETRY_TASK,
        arguments: [{ runId: picked.model.runId, taskId: picked.task.id }],
      })
      .then(undefined, (err: unknown) =>
        vscode.window.showErrorMessage(`parex: retry of ${picked.task.id} failed: ${err instanceof Error ? err.message : String(err)}`),
      );
  }

  // ---- helpers -------------------------------------------------------------------------------

  private startTicker(): void {
    this.stopTicker();
    // Elapsed times in the view move while tasks run.
    this.ticker = setInterval(() => {
      if (this.session && !this.session.ended) this.updateViews(this.session);
    }, 1000);
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private async setContext(running: boolean, hasFailures: boolean): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'parex.running', running);
    await vscode.commands.executeCommand('setContext', 'parex.hasFailures', hasFailures);
  }
}

function toRange(selection: vscode.Selection): Range {
  return {
    start: { line: selection.start.line, character: selection.start.character },
    end: { line: selection.end.line, character: selection.end.character },
  };
}

function summaryShort(model: RunModel): string {
  const result = model.summary(Date.now());
  const c = model.counts();
  const failed = c.failed + c.skipped;
  return `${c.succeeded}/${c.total} succeeded${failed ? `, ${failed} failed` : ''} · ${formatDuration(result.wallMs)}`;
}
