// The commands that run the server's own command line rather than ask the running server:
// "Show Run Timeline" (`parex-lsp report`, in a webview) and "Check Setup" (`parex-lsp doctor
// --json`). What they decide lives in timeline.ts and doctor.ts; this file holds the effects.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { doctorLines, doctorMessage, parseDoctor } from './doctor';
import { isPlanFileName } from './planDetect';
import { cliFailure, cliInvocation, execRunner, type CliOutput, type CliRunner } from './serverCli';
import { describeCommand } from './serverCommand';
import { hasScript, parseRunList, runPickItems, timelineTitle, timelineWebviewHtml } from './timeline';

/** The folder the server's command line runs in: the active document's workspace folder, else the first. */
export function workFolder(): vscode.WorkspaceFolder | undefined {
  const active = vscode.window.activeTextEditor?.document.uri;
  return (active && vscode.workspace.getWorkspaceFolder(active)) || vscode.workspace.workspaceFolders?.[0];
}

export class ServerTools implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly run: CliRunner = execRunner(),
  ) {}

  dispose(): void {
    this.panel?.dispose();
  }

  /** `<server command> <subcommand...>` in `cwd`, logged to the server log. */
  private async cli(subcommand: string[], cwd: string): Promise<CliOutput> {
    const inv = cliInvocation(await this.ctx.client.serverCommand(), subcommand);
    this.ctx.serverLog.appendLine(`running in ${cwd}: ${describeCommand({ ...inv, source: 'setting', notes: [] })}`);
    const out = await this.run(inv, cwd);
    if (out.code !== 0) this.ctx.serverLog.appendLine(cliFailure(subcommand[0], out));
    return out;
  }

  /**
   * Opens a run's timeline (`parex-lsp report`) in a webview beside the editor: the run given (a
   * run that just ended), else the only run, else one picked, newest first.
   */
  async showRunTimeline(runId?: string): Promise<void> {
    const folder = workFolder();
    if (!folder) {
      void vscode.window.showWarningMessage('parex: open a folder first: runs are kept in its .parex/runs.');
      return;
    }
    const cwd = folder.uri.fsPath;
    try {
      const listed = await this.cli(['status', '--json'], cwd);
      if (listed.code !== 0) throw new Error(cliFailure('status --json', listed));
      const { workspace, runs } = parseRunList(listed.stdout);
      if (runId === undefined) {
        if (runs.length === 0) {
          void vscode.window.showInformationMessage(`parex: no runs yet in ${workspace}. Run Parallel Tasks first.`);
          return;
        }
        if (runs.length === 1) runId = runs[0].runId;
        else {
          const picked = await vscode.window.showQuickPick(runPickItems(runs), {
            title: 'Show Run Timeline',
            placeHolder: 'Run to show (newest first)',
            matchOnDescription: true,
            matchOnDetail: true,
          });
          if (!picked) return;
          runId = picked.runId;
        }
      }
      const html = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `parex: timeline of ${runId}` },
        () => this.report(runId as string, workspace, cwd),
      );
      this.show(runId, html);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`parex: cannot show the timeline: ${message}`, 'Show Server Log').then((c) => {
        if (c) this.ctx.serverLog.show();
      });
    }
  }

  /** `report RUN -w WORKSPACE -o <tmp>/RUN.html`, its page read back; the temporary folder removed. */
  private async report(runId: string, workspace: string, cwd: string): Promise<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parex-timeline-'));
    try {
      const file = path.join(dir, 'report.html');
      const out = await this.cli(['report', runId, '--workspace', workspace, '--output', file], cwd);
      if (out.code !== 0 || !fs.existsSync(file)) throw new Error(cliFailure(`report ${runId}`, out));
      return fs.readFileSync(file, 'utf8');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  private show(runId: string, report: string): void {
    const scripts = hasScript(report);
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        'parex.runTimeline',
        timelineTitle(runId),
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        // Nothing is loaded from disk; scripts only when the page has some (the CSP names them by nonce).
        { enableScripts: scripts, enableFindWidget: true, localResourceRoots: [] },
      );
      this.panel.onDidDispose(() => (this.panel = undefined));
    } else {
      this.panel.webview.options = { enableScripts: scripts, localResourceRoots: [] };
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.panel.title = timelineTitle(runId);
    this.panel.webview.html = timelineWebviewHtml(report, randomBytes(16).toString('base64'));
  }

  /**
   * `doctor --json [PLAN]` (the active plan file, if any): one line per check in the Parallel
   * Tasks output channel, and a notification with the verdict.
   */
  async checkSetup(): Promise<void> {
    const folder = workFolder();
    const doc = vscode.window.activeTextEditor?.document;
    const plan = doc && doc.uri.scheme === 'file' && isPlanFileName(doc.fileName) ? doc.uri.fsPath : undefined;
    const cwd = plan ? path.dirname(plan) : (folder?.uri.fsPath ?? os.homedir());
    try {
      const out = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'parex: checking the setup…' },
        () => this.cli(plan ? ['doctor', '--json', plan] : ['doctor', '--json'], cwd),
      );
      const report = parseDoctor(out);
      const shown = plan ? vscode.workspace.asRelativePath(plan) : undefined;
      // The doctor reads the plan from disk: unsaved edits are not checked, and the person is told.
      this.ctx.output.appendLine(`=== Check Setup${plan && doc?.isDirty ? ' (of the saved plan: its unsaved changes are not checked)' : ''}`);
      for (const line of doctorLines(report, shown)) this.ctx.output.appendLine(line);
      const { severity, text } = doctorMessage(report);
      const show = severity === 'info' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
      void show(text, 'Show Details').then((c) => {
        if (c) this.ctx.output.show(true);
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`parex: cannot check the setup: ${message}`, 'Show Server Log').then((c) => {
        if (c) this.ctx.serverLog.show();
      });
    }
  }
}
