// The extension's commands, each a function of the window's Ctx (registered in extension.ts).
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import type { Ctx } from './ctx';
import { changesText, stateIcon, taskDescription } from './format';
import * as lsp_ext from './lsp_ext';
import type { PlanDrafting } from './planDrafting';
import { choosePlan, PLAN_FILE_EXCLUDE, PLAN_FILE_GLOB } from './planDetect';
import { parseLogUri, type PlanRef, type Range, type ReviewAction } from './protocol';
import { changedFileDescription } from './reviewDiff';
import type { RunModel, TaskView } from './runModel';
import type { ServerTools } from './serverTools';
import type { TaskNode } from './taskTree';

type Cmd = (...args: never[]) => unknown;

/** Command id → handler, for `vscode.commands.registerCommand`. */
export function commands(ctx: Ctx, tools: ServerTools, drafting: PlanDrafting): Record<string, Cmd> {
  return {
    'parex.showRunTimeline': (runId?: unknown) => tools.showRunTimeline(typeof runId === 'string' ? runId : undefined),
    'parex.checkSetup': () => tools.checkSetup(),
    'parex.planParallelTasks': () => drafting.planParallelTasks(),
    'parex.runParallelTasks': () => runParallelTasks(ctx),
    'parex.cancelParallelTasks': () => cancelParallelTasks(ctx),
    'parex.retryFailedParallelTasks': () => retryFailedParallelTasks(ctx),
    'parex.showParallelTaskLog': (node?: TaskNode) => showParallelTaskLog(ctx, node),
    'parex.showParallelTaskAnswers': () => showParallelTaskAnswers(ctx),
    'parex.cancelParallelTask': (node?: TaskNode) => cancelParallelTask(ctx, node),
    'parex.retryParallelTask': (node?: TaskNode) => retryParallelTask(ctx, node),
    'parex.acceptParallelTask': (node?: TaskNode) => reviewParallelTask(ctx, 'accept', node),
    'parex.rejectParallelTask': (node?: TaskNode) => reviewParallelTask(ctx, 'reject', node),
    'parex.retryParallelTaskWithFeedback': (node?: TaskNode) => reviewParallelTask(ctx, 'retry', node),
    'parex.showParallelTaskChanges': (node?: TaskNode) => showParallelTaskChanges(ctx, node),
    'parex.restartServer': () => ctx.client.restart(),
  };
}

interface Target {
  plan: PlanRef;
  label: string;
  /** The tasks known before the server says (the `callN:` ids of a selection), shown as pending. */
  taskIds: string[];
}

async function runParallelTasks(ctx: Ctx): Promise<void> {
  const target = await pickPlan();
  if (target) await ctx.run({ plan: target.plan }, target.label, target.taskIds);
}

/**
 * The plan "Run Parallel Tasks" means: the active plan file, the `callN:` lines of the
 * selection (or document), or a plan file of the workspace (the only one, or one picked).
 * Open documents are synced with the server, so `{uri}` and `{uri, range}` run the text as it
 * is in the editor, unsaved or untitled.
 */
async function pickPlan(): Promise<Target | undefined> {
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
    return { plan: { uri: choice.uri, range: choice.range }, label, taskIds: choice.taskIds };
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

async function cancelParallelTasks(ctx: Ctx): Promise<void> {
  if (!ctx.session || !ctx.busy) {
    void vscode.window.showInformationMessage('parex: no run is going on.');
    return;
  }
  await ctx.cancel(ctx.session);
}

/** Resumes the last run: its failed, cancelled, skipped and never-started tasks run again. */
async function retryFailedParallelTasks(ctx: Ctx): Promise<void> {
  const last = ctx.lastRun;
  if (!last?.plan) {
    // Nothing run from this window yet (or the last run came from elsewhere): resume the
    // server's last run of the plan at hand.
    const target = await pickPlan();
    if (!target) return;
    await ctx.run({ plan: target.plan, resume: last?.runId ?? 'last' }, `retry: ${target.label}`, []);
    return;
  }
  const retry = last.model.unfinishedOrFailed();
  if (retry.length === 0) {
    void vscode.window.showInformationMessage(`parex: every task of the last run (${last.label}) succeeded.`);
    return;
  }
  await ctx.run({ plan: last.plan, resume: last.runId }, `retry: ${last.label}`, retry.map((t) => t.id));
}

async function pickTask(
  ctx: Ctx,
  title: string,
  node: TaskNode | undefined,
  filter: (t: TaskView) => boolean = () => true,
): Promise<{ model: RunModel; task: TaskView } | undefined> {
  const model = ctx.currentModel();
  if (!model) {
    void vscode.window.showInformationMessage('parex: no run yet. Run Parallel Tasks first.');
    return undefined;
  }
  if (node) {
    const task = model.get(node.taskId);
    return task ? { model, task } : undefined;
  }
  const tasks = model.list().filter(filter);
  if (tasks.length === 0) {
    void vscode.window.showInformationMessage('parex: no task to choose from in this run.');
    return undefined;
  }
  const now = Date.now();
  const picked = await vscode.window.showQuickPick(
    tasks.map((t) => ({ label: `$(${stateIcon(t.state)}) ${t.id}`, description: taskDescription(t, model.elapsedMs(t, now)), task: t })),
    { title, placeHolder: `Task of run ${model.runId ?? ''}`, matchOnDescription: true },
  );
  return picked ? { model, task: picked.task } : undefined;
}

/** Opens a task's log where the server says it is (`parex.showLog`, else the log the events and result named). */
async function showParallelTaskLog(ctx: Ctx, node?: TaskNode): Promise<void> {
  const picked = await pickTask(ctx, 'Show Parallel Task Log', node);
  if (!picked) return;
  const { model, task } = picked;
  let uri: string | undefined;
  const client = ctx.client.running;
  if (client && model.runId) {
    try {
      const answer = await client.sendRequest(ExecuteCommandRequest.type, {
        command: lsp_ext.SERVER_COMMAND_SHOW_LOG,
        arguments: [{ runId: model.runId, taskId: task.id }],
      });
      uri = parseLogUri(answer);
    } catch (err) {
      ctx.serverLog.appendLine(`${lsp_ext.SERVER_COMMAND_SHOW_LOG} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  uri ??= task.logUri;
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

async function showParallelTaskAnswers(ctx: Ctx): Promise<void> {
  if (!(await ctx.showLastAnswers())) {
    void vscode.window.showInformationMessage(
      'parex: no answers yet. Runs of model tasks (e.g. callN: lines with a model agent) show their answers.',
    );
  }
}

async function cancelParallelTask(ctx: Ctx, node?: TaskNode): Promise<void> {
  if (!ctx.busy) return;
  const picked = await pickTask(ctx, 'Cancel Parallel Task', node, (t) => !['succeeded', 'failed', 'skipped', 'cancelled'].includes(t.state));
  const client = ctx.client.running;
  if (!picked?.model.runId || !client) return;
  await client.sendRequest(lsp_ext.cancel, { runId: picked.model.runId, taskId: picked.task.id });
}

/** Reruns one task (`parex.retryTask`); the server starts the run, and its events show it here. */
async function retryParallelTask(ctx: Ctx, node?: TaskNode): Promise<void> {
  if (ctx.busy) {
    void vscode.window.showWarningMessage('parex: wait for the run to end (or cancel it) before retrying a task.');
    return;
  }
  const picked = await pickTask(ctx, 'Retry Parallel Task', node, (t) => t.state !== 'succeeded');
  if (!picked?.model.runId) return;
  const client = await ctx.client.start();
  if (!client) return;
  void client
    .sendRequest(ExecuteCommandRequest.type, {
      command: lsp_ext.SERVER_COMMAND_RETRY_TASK,
      arguments: [{ runId: picked.model.runId, taskId: picked.task.id }],
    })
    .then(undefined, (err: unknown) =>
      vscode.window.showErrorMessage(`parex: retry of ${picked.task.id} failed: ${err instanceof Error ? err.message : String(err)}`),
    );
}

const REVIEW_TITLE: Record<ReviewAction, string> = {
  accept: 'Accept Parallel Task',
  reject: 'Reject Parallel Task',
  retry: 'Retry Parallel Task with Feedback',
};

const isReady = (t: TaskView): boolean => t.state === 'ready';

/**
 * Accepts (merges), rejects (keeps the branch) or sends back with feedback a task that is ready
 * for review; from the view's inline actions (`node`) or the palette (a ready task is picked).
 */
async function reviewParallelTask(ctx: Ctx, action: ReviewAction, node?: TaskNode): Promise<void> {
  const title = REVIEW_TITLE[action];
  const picked = await pickTask(ctx, title, node, isReady);
  if (!picked) return;
  const { model, task } = picked;
  if (!model.runId) return;
  if (task.state !== 'ready') {
    void vscode.window.showInformationMessage(`parex: ${task.id} is ${task.state}, not ready for review.`);
    return;
  }
  let feedback: string | undefined;
  if (action === 'retry') {
    feedback = await vscode.window.showInputBox({
      title: `${title}: ${task.id}`,
      prompt: 'What should the agent do differently? It runs again from its own branch, with this added to its prompt.',
      placeHolder: 'e.g. keep the public API unchanged',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'Say what to change: a retry needs feedback.' : undefined),
    });
    if (feedback === undefined) return;
  }
  try {
    const result = await ctx.review(model.runId, task.id, action, feedback);
    const outcome =
      result.status === 'succeeded'
        ? `${task.id} accepted: merged into ${task.branch ? `the base branch from ${task.branch}` : 'the base branch'}.`
        : result.status === 'rejected'
          ? `${task.id} rejected; its work is kept on ${result.branch ?? task.branch ?? 'its branch'}.`
          : result.status === 'failed'
            ? `${task.id} could not be merged; see its log and the Problems panel.`
            : `${task.id} runs again with your feedback.`;
    ctx.output.appendLine(`[${task.id}] ── review: ${action}${feedback ? ` (${feedback.trim()})` : ''} → ${result.status}`);
    const show = result.status === 'failed' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    void show(`parex: ${outcome}`);
  } catch (err) {
    void vscode.window.showErrorMessage(`parex: ${title.toLowerCase()} ${task.id} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Opens the diff editor on a file a ready task changed: the one clicked in the view, or one picked. */
async function showParallelTaskChanges(ctx: Ctx, node?: TaskNode): Promise<void> {
  const picked = await pickTask(ctx, 'Show Parallel Task Changes', node, isReady);
  if (!picked?.model.runId) return;
  const { model, task } = picked;
  const runId = model.runId as string;
  try {
    let file = node?.file?.path;
    if (file === undefined) {
      const diff = await ctx.diffs.get(runId, task.id);
      if (diff.files.length === 0) {
        void vscode.window.showInformationMessage(`parex: ${task.id} changed no file.`);
        return;
      }
      const choice =
        diff.files.length === 1
          ? { path: diff.files[0].path }
          : await vscode.window.showQuickPick(
              diff.files.map((f) => ({ label: f.path, description: changedFileDescription(f), path: f.path })),
              { title: `Changes of ${task.id}${task.changes ? ` (${changesText(task.changes)})` : ''}`, placeHolder: 'File to compare with the base' },
            );
      file = choice?.path;
    }
    if (file !== undefined) await ctx.diffs.open(runId, task.id, file);
  } catch (err) {
    void vscode.window.showErrorMessage(`parex: cannot show the changes of ${task.id}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function toRange(selection: vscode.Selection): Range {
  return {
    start: { line: selection.start.line, character: selection.start.character },
    end: { line: selection.end.line, character: selection.end.character },
  };
}
