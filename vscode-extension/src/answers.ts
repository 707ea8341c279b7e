// The answers of a run's model tasks (e.g. a `callN:` fan-out), side by side in one markdown
// document: one section per task, in plan order. Pure, no `vscode`.
import { countResult, formatDuration } from './format';
import type { RunResult, TaskResult, Usage } from './protocol';

/** True when at least one task of the result carries a model's answer. */
export function hasAnswers(result: RunResult): boolean {
  return result.tasks.some((t) => typeof t.answer === 'string');
}

/**
 * The result with the answers of the tasks a resume kept (`reusedFrom`), taken from that
 * earlier run's result when `earlier` knows it and the result itself lacks them.
 */
export function withEarlierAnswers(result: RunResult, earlier: (runId: string) => RunResult | undefined): RunResult {
  let changed = false;
  const tasks = result.tasks.map((t) => {
    if (!t.reusedFrom || t.answer !== undefined) return t;
    const answer = earlier(t.reusedFrom)?.tasks.find((e) => e.id === t.id)?.answer;
    if (typeof answer !== 'string') return t;
    changed = true;
    return { ...t, answer };
  });
  return changed ? { ...result, tasks } : result;
}

/** The title of a run's answers document: `parex answers — <runId>`. */
export function answersTitle(runId: string): string {
  return `parex answers — ${runId}`;
}

/** `1,200 prompt + 340 completion tokens · $0.0123`; '' when there is nothing to say (none, or all zero). */
export function formatUsage(usage: Usage | undefined): string {
  if (!usage || !Object.values(usage).some((n) => typeof n === 'number' && n > 0)) return '';
  const parts: string[] = [];
  const tokens: string[] = [];
  if (usage.promptTokens !== undefined) tokens.push(`${formatCount(usage.promptTokens)} prompt`);
  if (usage.completionTokens !== undefined) tokens.push(`${formatCount(usage.completionTokens)} completion`);
  if (tokens.length > 0) parts.push(`${tokens.join(' + ')} tokens`);
  if (usage.costUsd !== undefined) parts.push(formatCost(usage.costUsd));
  return parts.join(' · ');
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `$0.0123` (four decimals below a dollar, two above). */
export function formatCost(usd: number): string {
  if (!Number.isFinite(usd) || usd < 0) return '$0';
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

/** A prompt as a markdown block quote (every line quoted, blank lines kept inside the quote). */
export function quote(text: string): string {
  return text
    .replace(/\s+$/, '')
    .split(/\r\n|\r|\n/)
    .map((line) => (line.trim() === '' ? '>' : `> ${line}`))
    .join('\n');
}

function taskSection(task: TaskResult, prompt: string | undefined): string[] {
  const lines = [`## ${task.id}`, ''];
  if (prompt !== undefined && prompt.trim() !== '') lines.push(quote(prompt), '');
  const failed = task.status !== 'succeeded';
  if (failed) {
    const why = task.code ?? (typeof task.exitCode === 'number' ? `exit ${task.exitCode}` : undefined);
    let head = `**${task.status}**${why ? ` (${why})` : ''}`;
    if (task.error) {
      const error = task.error.replace(/\s+$/, '');
      if (error.includes('\n')) {
        lines.push(`${head}:`, '', '```text', error, '```', '');
      } else {
        lines.push(`${head}: ${error}`, '');
      }
      head = '';
    }
    if (head) lines.push(head, '');
  }
  if (typeof task.answer === 'string') {
    if (task.reusedFrom) lines.push(`_kept from run ${task.reusedFrom}_`, '');
    lines.push(task.answer.trim() === '' ? '_(the model answered with no text)_' : task.answer.replace(/\s+$/, ''), '');
  } else if (!failed) {
    lines.push(task.reusedFrom ? `_succeeded in run ${task.reusedFrom}; no answer kept_` : '_succeeded; no answer (not a model task)_', '');
  }
  const usage = formatUsage(task.usage);
  if (usage) lines.push(`*${usage}*`, '');
  return lines;
}

export interface AnswersOptions {
  /** What the run was (e.g. `notes.md: call1, call2`). */
  label?: string;
  /** Each task's prompt by id, when known (the `callN:` lines of the document that ran). */
  prompts?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
}

function promptOf(prompts: AnswersOptions['prompts'], id: string): string | undefined {
  if (!prompts) return undefined;
  if (prompts instanceof Map) return prompts.get(id);
  const record = prompts as Readonly<Record<string, string>>;
  return Object.prototype.hasOwnProperty.call(record, id) ? record[id] : undefined;
}

/**
 * The answers document of a run, e.g.
 *
 * ```
 * # parex answers — 20250101-120000-ab12
 *
 * notes.md: call1, call2 · 1 succeeded, 1 failed in 2.1s · 20 prompt + 10 completion tokens
 *
 * ## call1
 *
 * > explain parser.py
 *
 * The parser reads …
 *
 * *10 prompt + 5 completion tokens*
 *
 * ## call2
 * …
 * ```
 */
export function answersMarkdown(result: RunResult, options: AnswersOptions = {}): string {
  const c = countResult(result);
  const counts = [`${c.succeeded + c.kept} succeeded`];
  if (c.failed > 0) counts.push(`${c.failed} failed`);
  if (c.skipped > 0) counts.push(`${c.skipped} skipped`);
  if (c.cancelled > 0) counts.push(`${c.cancelled} cancelled`);
  const summary = [options.label, `${counts.join(', ')} in ${formatDuration(result.wallMs)}`, formatUsage(result.usage)]
    .filter((s): s is string => Boolean(s))
    .join(' · ');
  const lines = [`# ${answersTitle(result.runId)}`, '', summary, ''];
  for (const task of result.tasks) lines.push(...taskSection(task, promptOf(options.prompts, task.id)));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return `${lines.join('\n')}\n`;
}
