// How to start the parex language server: pure, no `vscode`; the file system is passed in.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from: the setting, PATH, a workspace virtualenv, or a bare guess. */
  source: 'setting' | 'path' | 'venv' | 'default';
}

export interface ResolveOptions {
  /** The `parex.serverCommand` setting (an array of strings or a path; anything else counts as unset). */
  configured: unknown;
  /** The PATH environment variable. */
  pathEnv: string | undefined;
  /** File system paths of the workspace folders, first one first. */
  workspaceFolders: readonly string[];
  platform?: NodeJS.Platform;
  /** PATHEXT on Windows. */
  pathExt?: string;
  homeDir?: string;
  /** Whether `file` exists and can be executed. */
  isExecutable?: (file: string) => boolean;
}

export const SERVER_EXECUTABLE = 'parex-lsp';
export const STDIO_FLAG = '--stdio';

export function defaultIsExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The setting's value when it is a non-empty array of strings (executable first) or one string
 * (the executable's path, not split on spaces), else undefined.
 */
export function configuredCommand(value: unknown): string[] | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : [value.trim()];
  if (!Array.isArray(value) || value.length === 0) return undefined;
  if (!value.every((v) => typeof v === 'string')) return undefined;
  const parts = (value as string[]).map((v) => v.trim());
  if (parts[0] === '') return undefined;
  return parts;
}

/** Expands `${workspaceFolder}`, `${userHome}` and a leading `~` in one argument. */
export function expandVariables(arg: string, workspaceFolder: string | undefined, homeDir: string | undefined): string {
  let out = arg;
  if (workspaceFolder !== undefined) out = out.split('${workspaceFolder}').join(workspaceFolder);
  if (homeDir !== undefined) {
    out = out.split('${userHome}').join(homeDir);
    if (out === '~') out = homeDir;
    else if (out.startsWith('~/') || out.startsWith('~\\')) out = homeDir + out.slice(1);
  }
  return out;
}

/** `name` on PATH (with PATHEXT on Windows), or undefined. */
export function findOnPath(
  name: string,
  pathEnv: string | undefined,
  platform: NodeJS.Platform,
  isExecutable: (file: string) => boolean,
  pathExt?: string,
): string | undefined {
  if (!pathEnv) return undefined;
  const p = platform === 'win32' ? path.win32 : path.posix;
  const delimiter = platform === 'win32' ? ';' : ':';
  const exts = platform === 'win32' ? (pathExt ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean) : [''];
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = p.join(dir, name + ext.toLowerCase());
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** `<folder>/.venv/bin/parex-lsp` (`.venv\Scripts\parex-lsp.exe` on Windows). */
export function venvExecutable(folder: string, platform: NodeJS.Platform): string {
  return platform === 'win32'
    ? path.win32.join(folder, '.venv', 'Scripts', `${SERVER_EXECUTABLE}.exe`)
    : path.posix.join(folder, '.venv', 'bin', SERVER_EXECUTABLE);
}

/** Appends `--stdio` unless the arguments already choose a transport. */
export function withStdio(args: readonly string[]): string[] {
  const hasTransport = args.some((a) => a === STDIO_FLAG || a === '--tcp' || a.startsWith('--pipe') || a.startsWith('--socket'));
  return hasTransport ? [...args] : [...args, STDIO_FLAG];
}

/**
 * The command that starts the server: the setting when it is set; else `parex-lsp` on PATH;
 * else the first workspace folder's `.venv/bin/parex-lsp` that exists; else a bare `parex-lsp`
 * (whose failure to start names what to install or set). Always with `--stdio`.
 */
export function resolveServerCommand(options: ResolveOptions): ServerCommand {
  const platform = options.platform ?? process.platform;
  const isExecutable = options.isExecutable ?? defaultIsExecutable;
  const configured = configuredCommand(options.configured);
  if (configured) {
    const expanded = configured.map((a) => expandVariables(a, options.workspaceFolders[0], options.homeDir));
    return { command: expanded[0], args: withStdio(expanded.slice(1)), source: 'setting' };
  }
  const onPath = findOnPath(SERVER_EXECUTABLE, options.pathEnv, platform, isExecutable, options.pathExt);
  if (onPath) return { command: onPath, args: [STDIO_FLAG], source: 'path' };
  for (const folder of options.workspaceFolders) {
    const candidate = venvExecutable(folder, platform);
    if (isExecutable(candidate)) return { command: candidate, args: [STDIO_FLAG], source: 'venv' };
  }
  return { command: SERVER_EXECUTABLE, args: [STDIO_FLAG], source: 'default' };
}

/** One line for the log: the command as a shell would show it. */
export function describeCommand(cmd: ServerCommand): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [cmd.command, ...cmd.args].map(quote).join(' ');
}
