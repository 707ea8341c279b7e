// The language client's lifecycle: finding the server (serverCommand.ts), starting, stopping
// and restarting it, and which documents it is sent (documentSync.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { DocumentSync, serverNeeds } from './documentSync';
import * as lsp_ext from './lsp_ext';
import type { TaskEvent } from './protocol';
import { selectedInterpreter } from './pythonExtension';
import { describeCommand, resolveServerCommand, type ServerCommand, startFailureAdvice } from './serverCommand';

/** Where `scripts/bundle-server.sh` puts the server and its dependencies inside the extension. */
const BUNDLED_LIBS = path.join('bundled', 'libs');

export class ParexClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private command: ServerCommand | undefined;
  private readonly sync = new DocumentSync();

  constructor(
    private readonly extensionPath: string,
    readonly serverLog: vscode.OutputChannel,
    private readonly onTaskEvent: (raw: TaskEvent) => void,
  ) {}

  /** The running client, if any (for requests that make no sense without one, such as cancel). */
  get running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  /** How the server was started last: the bundled server is restarted when the Python interpreter changes. */
  get source(): ServerCommand['source'] | undefined {
    return this.command?.source;
  }

  /** The running client, started first when needed; undefined when the server cannot start (the person was told). */
  async start(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    if (this.starting) return this.starting;
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.sync.reset();
    if (client) {
      try {
        await client.stop();
      } catch {
        // stopping a client that never started
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
  }

  /**
   * The command the server is (or would be) started with, resolved anew: the server's own command
   * line (`report`, `doctor`) runs with it, `--stdio` replaced by the subcommand.
   */
  async serverCommand(): Promise<ServerCommand> {
    return this.resolve((vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath));
  }

  private async resolve(folders: string[]): Promise<ServerCommand> {
    const libs = path.join(this.extensionPath, BUNDLED_LIBS);
    return resolveServerCommand({
      configured: vscode.workspace.getConfiguration('parex').get('serverCommand'),
      pathEnv: process.env.PATH,
      pathExt: process.env.PATHEXT,
      workspaceFolders: folders,
      homeDir: os.homedir(),
      bundledLibs: fs.existsSync(path.join(libs, 'parex_lsp')) ? libs : undefined,
      selectedPython: await selectedInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri),
      pythonPathEnv: process.env.PYTHONPATH,
    });
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const cmd = await this.resolve(folders);
    this.command = cmd;
    for (const note of cmd.notes) this.serverLog.appendLine(`passed over ${note}`);
    this.serverLog.appendLine(`starting (${cmd.source}): ${describeCommand(cmd)}`);
    // No `transport`: the language client would append its own `--stdio`.
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      options: { cwd: folders[0] ?? os.homedir(), env: { ...process.env, ...cmd.env } },
    };
    const clientOptions: LanguageClientOptions = {
      // Every file and untitled document passes the selector; the middleware then sends only
      // those the server needs (plan files, documents with callN: lines), unsaved text included.
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      middleware: this.middleware(),
      outputChannel: this.serverLog,
      diagnosticCollectionName: 'parex',
    };
    const client = new LanguageClient('parex', 'parex', serverOptions, clientOptions);
    this.client = client;
    client.onNotification(lsp_ext.taskEvent, this.onTaskEvent);
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped) this.sync.reset();
    });
    try {
      await client.start();
      return client;
    } catch (err) {
      this.client = undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.serverLog.appendLine(`could not start the server: ${message}`);
      void vscode.window
        .showErrorMessage(
          `parex: could not start the language server (${describeCommand(cmd)}): ${message}. ${startFailureAdvice(cmd)}`,
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

  /** Document sync limited to what the server needs, and code actions asked only where parex put a diagnostic. */
  private middleware(): Middleware {
    const sync = this.sync;
    const sendOpen = async (doc: vscode.TextDocument) =>
      this.client?.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri: doc.uri.toString(), languageId: doc.languageId, version: doc.version, text: doc.getText() },
      });
    const sendClose = async (doc: vscode.TextDocument) =>
      this.client?.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri: doc.uri.toString() } });
    return {
      didOpen: async (doc, next) => {
        if (sync.opened(doc.uri.toString(), serverNeeds(doc)) === 'forward') await next(doc);
      },
      didChange: async (event, next) => {
        const step = sync.changed(event.document.uri.toString(), serverNeeds(event.document));
        if (step === 'forward') await next(event);
        else if (step === 'open') await sendOpen(event.document);
        else if (step === 'close') await sendClose(event.document);
      },
      didSave: async (doc, next) => {
        if (sync.saved(doc.uri.toString()) === 'forward') await next(doc);
      },
      didClose: async (doc, next) => {
        if (sync.closed(doc.uri.toString()) === 'forward') await next(doc);
      },
      provideCodeActions: (doc, range, context, token, next) =>
        context.diagnostics.some((d) => d.source === 'parex') ? next(doc, range, context, token) : [],
    };
  }
}
