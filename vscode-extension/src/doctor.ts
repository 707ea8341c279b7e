// "Check Setup": what `parex-lsp doctor --json [PLAN]` found, as lines for the output channel and
// one notification. Pure, no `vscode`.
import { cliFailure, type CliOutput } from './serverCli';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** false: a failure is only a warning (e.g. git when the plan does not use worktrees). */
  required: boolean;
}

export interface DoctorReport {
  ok: boolean;
  workspace: string;
  checks: DoctorCheck[];
  /** An invalid plan's problems (`path:line:col: message`); then there are no checks. */
  problems: string[];
}

/**
 * The doctor's answer: exit 0 (all in place), 1 (a check failed) or 2 (the plan is invalid), each
 * with one JSON object on stdout. Anything else (it did not run, it crashed, an older server
 * without `--json`) throws with what it said.
 */
export function parseDoctor(out: CliOutput): DoctorReport {
  if (out.code !== 0 && out.code !== 1 && out.code !== 2) throw new Error(cliFailure('doctor --json', out));
  let raw: unknown;
  try {
    raw = JSON.parse(out.stdout.trim().split(/\r?\n/).pop() ?? '');
  } catch {
    throw new Error(cliFailure('doctor --json', { ...out, stderr: out.stderr || `printed no JSON: ${out.stdout.slice(0, 200)}` }));
  }
  const obj = raw as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || typeof obj.ok !== 'boolean' || !Array.isArray(obj.checks)) {
    throw new Error(`parex-lsp doctor --json: expected {ok, workspace, checks, problems}, got ${JSON.stringify(raw).slice(0, 200)}`);
  }
  const checks: DoctorCheck[] = (obj.checks as unknown[])
    .filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null)
    .map((c) => ({
      name: String(c.name ?? '?'),
      ok: c.ok === true,
      detail: typeof c.detail === 'string' ? c.detail : '',
      required: c.required !== false,
    }));
  const problems = Array.isArray(obj.problems) ? obj.problems.map(String) : [];
  return { ok: obj.ok && problems.length === 0, workspace: typeof obj.workspace === 'string' ? obj.workspace : '', checks, problems };
}

/** What to fix: the plan's problems, then each required check that failed (as `name: detail`). */
export function doctorProblems(report: DoctorReport): string[] {
  return [...report.problems, ...report.checks.filter((c) => !c.ok && c.required).map((c) => `${c.name}: ${c.detail}`)];
}

/** One line per check (✓ passed, ✗ failed, ⚠ a failure that is only a warning), then the plan's problems. */
export function doctorLines(report: DoctorReport, plan: string | undefined): string[] {
  const lines = [`parex setup of ${report.workspace || 'the workspace'}${plan ? ` for ${plan}` : ''}:`];
  for (const c of report.checks) lines.push(`${c.ok ? '✓' : c.required ? '✗' : '⚠'} ${c.name}: ${c.detail}`);
  if (report.problems.length > 0) {
    lines.push(`✗ the plan is invalid (${report.problems.length} problem(s)):`);
    for (const p of report.problems) lines.push(`    ${p}`);
  }
  const n = doctorProblems(report).length;
  lines.push(n === 0 ? 'everything needed is in place' : `${n} problem(s) to fix`);
  return lines;
}

/** The notification: all in place, or how many problems and the first. */
export function doctorMessage(report: DoctorReport): { severity: 'info' | 'warning'; text: string } {
  const problems = doctorProblems(report);
  if (problems.length === 0) return { severity: 'info', text: 'Parex setup: everything needed is in place' };
  return { severity: 'warning', text: `Parex setup: ${problems.length} problem(s): ${problems[0]}` };
}
