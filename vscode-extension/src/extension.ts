// The parex extension's entry points: builds the window's Ctx, registers the commands, starts the
// language server. What each part does lives in its own module: client.ts (the server's
// lifecycle), ctx.ts (runs and their events), session.ts (one run on screen), commands.ts.
import * as vscode from 'vscode';
import { commands } from './commands';
import { Ctx } from './ctx';
import { PlanDrafting } from './planDrafting';
import { onInterpreterChange } from './pythonExtension';
import { ServerTools } from './serverTools';

let ctx: Ctx | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const window = new Ctx(context);
  ctx = window;
  const tools = new ServerTools(window);
  const drafting = new PlanDrafting(window);
  context.subscriptions.push(tools, drafting);
  for (const [id, handler] of Object.entries(commands(window, tools, drafting))) {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  }
  // A new server command, or a new interpreter for the bundled server: restart, unless a run would be cut short.
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('parex.serverCommand') && !window.busy) void window.client.restart();
    }),
  );
  void onInterpreterChange(() => {
    if (window.client.source === 'bundled' && !window.busy) void window.client.restart();
  }).then((sub) => sub && context.subscriptions.push(sub));
  await window.client.start();
}

export async function deactivate(): Promise<void> {
  await ctx?.client.stop();
  ctx = undefined;
}
