// The "Parallel Tasks" view: one item per task of the current (or last) run, with its state,
// elapsed time and latest output line.
import * as vscode from 'vscode';
import { formatDuration, stateIcon, taskDescription } from './format';
import type { RunModel, TaskState, TaskView } from './runModel';

const STATE_COLOR: Partial<Record<TaskState, string>> = {
  running: 'charts.blue',
  retrying: 'charts.yellow',
  lockWait: 'charts.yellow',
  succeeded: 'testing.iconPassed',
  failed: 'testing.iconFailed',
  skipped: 'testing.iconSkipped',
  cancelled: 'disabledForeground',
};

/** What a tree item stands for; the argument of the item's commands. */
export interface TaskNode {
  runId: string | undefined;
  taskId: string;
}

export class TaskTreeProvider implements vscode.TreeDataProvider<TaskNode> {
  private readonly changed = new vscode.EventEmitter<TaskNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private model: RunModel | undefined;

  setModel(model: RunModel | undefined): void {
    this.model = model;
    this.refresh();
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getChildren(element?: TaskNode): TaskNode[] {
    if (element || !this.model) return [];
    const runId = this.model.runId;
    return this.model.list().map((t) => ({ runId, taskId: t.id }));
  }

  getTreeItem(node: TaskNode): vscode.TreeItem {
    const task = this.model?.get(node.taskId);
    const item = new vscode.TreeItem(node.taskId, vscode.TreeItemCollapsibleState.None);
    item.id = `${node.runId ?? ''}/${node.taskId}`;
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

function tooltip(task: TaskView, elapsed: number | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${task.id}** — ${task.state}`);
  if (task.attempt > 1) md.appendMarkdown(`, attempt ${task.attempt}`);
  if (elapsed !== undefined) md.appendMarkdown(`, ${formatDuration(elapsed)}`);
  if (task.exitCode !== undefined) md.appendMarkdown(`, exit code ${task.exitCode}`);
  if (task.error) md.appendMarkdown('\n\n').appendText(task.error);
  if (task.lastLine) md.appendMarkdown('\n\n').appendCodeblock(task.lastLine, 'text');
  md.appendMarkdown('\n\nClick to open the log.');
  return md;
}
