// The server's own command line (`report`, `status --json`, `doctor --json`), run with the same
// executable the language client starts: pure, no `vscode`; the process runner is passed in.
import { execFile } from 'node:child_process';
import type { ServerCommand } from './serverCommand';

export interface CliInvocation {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

export interface CliOutput {
  /** The exit code; null when the process was killed or could not be started. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why the process could not be started or was killed (e.g. ENOENT, a timeout), when it was not an exit. */
  error?: string;
}

/** Runs one invocation in `cwd`; the environment is the editor's plus the invocation's. */
export type CliRunner = (inv: CliInvocation, cwd: string) => Promise<CliOutput>;

/** Transport arguments of a server command: a subcommand takes none of them. */
function isTransportArg(arg: string): boolean {
  return arg === '--stdio' || arg === '--tcp' || arg.startsWith('--pipe') || arg.startsWith('--socket');
}

/**
 * The server command with `subcommand` in place of its transport: `python -m parex_lsp --stdio`
 * becomes `python -m parex_lsp report RUN -o FILE`, a setting's options (e.g. `--log-file`) kept.
 */
export function cliInvocation(cmd: ServerCommand, subcommand: readonly string[]): CliInvocation {
  const args = [...cmd.args.filter((a) => !isTransportArg(a)), ...subcommand];
  return cmd.env ? { command: cmd.command, args, env: cmd.env } : { command: cmd.command, args };
}

/** Runs with `execFile` (no shell): at most `timeoutMs`, output up to 64 MB. */
export function execRunner(timeoutMs = 120_000): CliRunner {
  return (inv, cwd) =>
    new Promise((resolve) => {
      execFile(
        inv.command,
        inv.args,
        { cwd, env: { ...process.env, ...inv.env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, windowsHide: true },
        (err, stdout, stderr) => {
          const out = { stdout: String(stdout), stderr: String(stderr) };
          if (!err) return resolve({ code: 0, ...out });
          const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null };
          if (typeof e.code === 'number') return resolve({ code: e.code, ...out });
          const why = e.killed || e.signal ? `stopped after ${timeoutMs / 1000}s (${e.signal ?? 'killed'})` : e.message;
          resolve({ code: null, ...out, error: why });
        },
      );
    });
}

/** The last lines of a text (a traceback's end says what went wrong), at most `max`. */
export function lastLines(text: string, max = 6): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.slice(-max).join('\n');
}

/**
 * What to tell a person when `parex-lsp <what>` did not do its job: the exit (or why it did not
 * run) and the end of its stderr, which the server words for people (`parex: no runs in /ws`).
 */
export function cliFailure(what: string, out: CliOutput): string {
  const how = out.code === null ? `did not run: ${out.error ?? 'unknown error'}` : `exited with code ${out.code}`;
  const said = lastLines(out.stderr) || lastLines(out.stdout);
  return `parex-lsp ${what} ${how}${said ? `: ${said}` : ''}`;
}
