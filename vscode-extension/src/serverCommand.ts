// How to start the parex language server: pure, no `vscode`; the file system and the probing of
// Python interpreters are passed in.
//
// In order: the `parex.serverCommand` setting; the server bundled in the extension
// (bundled/libs, run as `python -m parex_lsp` by a Python 3.11+ — the Python extension's
// interpreter, else python3 or python on PATH); `parex-lsp` on PATH; a workspace `.venv`.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from: the setting, the bundled server, PATH, a workspace virtualenv, or a bare guess. */
  source: 'setting' | 'bundled' | 'path' | 'venv' | 'default';
  /** Variables to set in the server's environment, on top of the editor's (PYTHONPATH for the bundled server). */
  env?: Record<string, string>;
  /** Why the sources tried before this one were passed over (e.g. a Python too old), for the log and errors. */
  notes: string[];
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
  /** The folder of the server bundled in the extension (bundled/libs), when the extension has one. */
  bundledLibs?: string;
  /** The interpreter the Python extension selected for the workspace, when it is installed. */
  selectedPython?: string;
  /** The `[major, minor]` version of a Python interpreter, or undefined when it does not run. */
  pythonVersion?: (python: string) => Promise<[number, number] | undefined>;
  /** The editor's PYTHONPATH, kept after the bundled libs. */
  pythonPathEnv?: string;
}

/** The oldest Python the server runs on (pyproject.toml: requires-python). */
export const MIN_PYTHON: readonly [number, number] = [3, 11];
/** The server's package, run with `python -m`. */
export const SERVER_MODULE = 'parex_lsp';

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

/** `major.minor[.patch...]` as printed by the probe, or undefined. */
export function parsePythonVersion(text: string): [number, number] | undefined {
  const m = /^\s*(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function supportsServer(version: readonly [number, number]): boolean {
  return version[0] > MIN_PYTHON[0] || (version[0] === MIN_PYTHON[0] && version[1] >= MIN_PYTHON[1]);
}

/** Runs `python -c` to read its version; undefined when it cannot be run (10 s at most). */
export function defaultPythonVersion(python: string): Promise<[number, number] | undefined> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
      { timeout: 10_000, windowsHide: true },
      (err, stdout) => resolve(err ? undefined : parsePythonVersion(String(stdout))),
    );
  });
}

/** PYTHONPATH for the bundled server: its libs first, then whatever the editor had. */
export function bundledPythonPath(libs: string, existing: string | undefined, platform: NodeJS.Platform): string {
  const delimiter = platform === 'win32' ? ';' : ':';
  return existing ? `${libs}${delimiter}${existing}` : libs;
}

/**
 * The first Python 3.11+ among the Python extension's interpreter, `python3` and `python` on
 * PATH; with notes on those passed over.
 */
export async function findPython(options: ResolveOptions, notes: string[]): Promise<string | undefined> {
  const platform = options.platform ?? process.platform;
  const isExecutable = options.isExecutable ?? defaultIsExecutable;
  const versionOf = options.pythonVersion ?? defaultPythonVersion;
  const candidates: { label: string; python: string | undefined }[] = [];
  if (options.selectedPython) candidates.push({ label: "the Python extension's interpreter", python: options.selectedPython });
  for (const name of platform === 'win32' ? ['python', 'python3'] : ['python3', 'python']) {
    candidates.push({ label: `${name} on PATH`, python: findOnPath(name, options.pathEnv, platform, isExecutable, options.pathExt) });
  }
  const seen = new Set<string>();
  for (const { label, python } of candidates) {
    if (!python) {
      notes.push(`${label}: not found`);
      continue;
    }
    if (seen.has(python)) continue;
    seen.add(python);
    const version = await versionOf(python);
    if (!version) notes.push(`${label} (${python}): does not run`);
    else if (!supportsServer(version)) notes.push(`${label} (${python}): Python ${version.join('.')}, the server needs ${MIN_PYTHON.join('.')} or later`);
    else return python;
  }
  return undefined;
}

/**
 * The command that starts the server: the setting when it is set; else the bundled server run
 * by a Python 3.11+; else `parex-lsp` on PATH; else the first workspace folder's
 * `.venv/bin/parex-lsp` that exists; else a bare `parex-lsp` (whose failure to start names what
 * to install or set, with the notes). Always with `--stdio`.
 */
export async function resolveServerCommand(options: ResolveOptions): Promise<ServerCommand> {
  const platform = options.platform ?? process.platform;
  const isExecutable = options.isExecutable ?? defaultIsExecutable;
  const notes: string[] = [];
  const configured = configuredCommand(options.configured);
  if (configured) {
    const expanded = configured.map((a) => expandVariables(a, options.workspaceFolders[0], options.homeDir));
    return { command: expanded[0], args: withStdio(expanded.slice(1)), source: 'setting', notes };
  }
  if (options.bundledLibs !== undefined) {
    const python = await findPython(options, notes);
    if (python) {
      return {
        command: python,
        args: ['-m', SERVER_MODULE, STDIO_FLAG],
        source: 'bundled',
        env: { PYTHONPATH: bundledPythonPath(options.bundledLibs, options.pythonPathEnv, platform) },
        notes,
      };
    }
  }
  const onPath = findOnPath(SERVER_EXECUTABLE, options.pathEnv, platform, isExecutable, options.pathExt);
  if (onPath) return { command: onPath, args: [STDIO_FLAG], source: 'path', notes };
  for (const folder of options.workspaceFolders) {
    const candidate = venvExecutable(folder, platform);
    if (isExecutable(candidate)) return { command: candidate, args: [STDIO_FLAG], source: 'venv', notes };
  }
  return { command: SERVER_EXECUTABLE, args: [STDIO_FLAG], source: 'default', notes };
}

/** What to tell a person whose server did not start: what to install or set. */
export function startFailureAdvice(cmd: ServerCommand): string {
  if (cmd.source === 'setting') return 'Check the "parex.serverCommand" setting.';
  const tried = cmd.notes.length > 0 ? ` (${cmd.notes.join('; ')})` : '';
  return `The extension runs its bundled server with Python ${MIN_PYTHON.join('.')} or later: install one${tried}, select it in the Python extension, or set "parex.serverCommand".`;
}

/** One line for the log: the command as a shell would show it. */
export function describeCommand(cmd: ServerCommand): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [cmd.command, ...cmd.args].map(quote).join(' ');
}
