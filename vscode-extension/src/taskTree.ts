// The "Parallel Tasks" view: one item per task of the current (or last) run, with its state,
// elapsed time and latest output line; under a task ready for review, the files it changed.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { changesText, formatDuration, stateIcon, taskDescription } from './format';
import type { FileDiff } from './protocol';
import { changedFileDescription } from './reviewDiff';
import type { ReviewDiffs } from './reviewDiffs';
import type { RunModel, TaskState, TaskView } from './runModel';

const STATE_COLOR: Partial<Record<TaskState, string>> = {
  running: 'charts.blue',
  retrying: 'charts.yellow',
  lockWait: 'charts.yellow',
  succeeded: 'testing.iconPassed',
  failed: 'testing.iconFailed',
  skipped: 'testing.iconSkipped',
  cancelled: 'disabledForeground',
  ready: 'charts.purple',
  rejected: 'disabledForeground',
};

/** What a tree item stands for; the argument of the item's commands. */
export interface TaskNode {
  runId: string | undefined;
  taskId: string;
  /** A file the task changed (items under a ready task); absent for the task itself. */
  file?: FileDiff;
}

export class TaskTreeProvider implements vscode.TreeDataProvider<TaskNode> {
  private readonly changed = new vscode.EventEmitter<TaskNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private model: RunModel | undefined;

  constructor(private readonly diffs: ReviewDiffs) {}

  setModel(model: RunModel | undefined): void {
    this.model = model;
    this.refresh();
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(element?: TaskNode): Promise<TaskNode[]> {
    if (!this.model) return [];
    const runId = this.model.runId;
    if (!element) return this.model.list().map((t) => ({ runId, taskId: t.id }));
    if (element.file || !runId || this.model.get(element.taskId)?.state !== 'ready') return [];
    try {
      const diff = await this.diffs.get(runId, element.taskId);
      return diff.files.map((file) => ({ runId, taskId: element.taskId, file }));
    } catch {
      return []; // the task's tooltip and the Show Changes command say why
    }
  }

  getTreeItem(node: TaskNode): vscode.TreeItem {
    if (node.file) return fileItem(node, node.file);
    const task = this.model?.get(node.taskId);
    const ready = task?.state === 'ready';
    const item = new vscode.TreeItem(node.taskId, ready ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    // A ready task is a new item: its changed files show, expanded, whatever the view remembered.
    item.id = `${node.runId ?? ''}/${node.taskId}${ready ? `#ready${task.attempt}` : ''}`;
    if (!task || !this.model) return item;
    const elapsed = this.model.elapsedMs(task, Date.now());
    item.description = taskDescription(task, elapsed);
    const color = STATE_COLOR[task.state];
    item.iconPath = new vscode.ThemeIcon(stateIcon(task.state), color ? new vscode.ThemeColor(color) : undefined);
    item.tooltip = tooltip(task, elapsed);
    item.contextValue = `parexTask.${task.state}`;
    item.command = {
      command: 'parex.showParallelTaskLog',
      title: 'Show Parallel Task Log',
      arguments: [node],
    };
    return item;
  }
}

function fileItem(node: TaskNode, file: FileDiff): vscode.TreeItem {
  const item = new vscode.TreeItem(path.posix.basename(file.path), vscode.TreeItemCollapsibleState.None);
  item.id = `${node.runId ?? ''}/${node.taskId}/${file.path}`;
  item.description = changedFileDescription(file);
  item.resourceUri = vscode.Uri.from({ scheme: 'parex-file', path: `/${file.path}` }); // the file's icon by its name
  item.iconPath = vscode.ThemeIcon.File;
  item.tooltip = `${file.path} — ${file.status}. Click to compare the base with the task's version.`;
  item.contextValue = 'parexChangedFile';
  item.command = { command: 'parex.showParallelTaskChanges', title: 'Show Parallel Task Changes', arguments: [node] };
  return item;
}

function tooltip(task: TaskView, elapsed: number | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${task.id}** — ${task.state}`);
  if (task.attempt > 1) md.appendMarkdown(`, attempt ${task.attempt}`);
  if (elapsed !== undefined) md.appendMarkdown(`, ${formatDuration(elapsed)}`);
  if (task.exitCode !== undefined) md.appendMarkdown(`, exit code ${task.exitCode}`);
  if (task.changes) md.appendMarkdown('\n\n').appendText(`${task.branch ?? 'its branch'}: ${changesText(task.changes)}`);
  for (const conflict of task.conflicts ?? []) md.appendMarkdown('\n\n⚠ ').appendText(conflict);
  if (task.error) md.appendMarkdown('\n\n').appendText(task.error);
  if (task.lastLine) md.appendMarkdown('\n\n').appendCodeblock(task.lastLine, 'text');
  md.appendMarkdown(task.state === 'ready' ? '\n\nReady for review: accept, reject or retry it with feedback. Click to open the log.' : '\n\nClick to open the log.');
  return md;
}
