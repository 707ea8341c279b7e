import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  changesText,
  cooldownText,
  formatTokens,
  formatUsd,
  spendText,
  formatDuration,
  formatSpeedup,
  progressMessage,
  progressPercentage,
  runHeader,
  stateLine,
  statusBarText,
  summaryMessage,
  summarySeverity,
  tagLines,
  taskDescription,
  truncate,
} from '../src/format';
import type { RunResult } from '../src/protocol';
import type { RunCounts, TaskView } from '../src/runModel';

const result: RunResult = {
  runId: 'r1',
  status: 'failed',
  tasks: [
    { id: 'ok', status: 'succeeded', attempts: 1, durationMs: 1500 },
    { id: 'bad', status: 'failed', attempts: 1, durationMs: 800, exitCode: 3 },
  ],
  wallMs: 1200,
  workMs: 2300,
  speedup: 2300 / 1200,
};

describe('formatDuration', () => {
  it('picks a unit that reads well', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(850), '850ms');
    assert.equal(formatDuration(4290), '4.2s');
    assert.equal(formatDuration(42_900), '42s');
    assert.equal(formatDuration(65_000), '1m 05s');
    assert.equal(formatDuration(3_720_000), '1h 02m');
  });
  it('treats nonsense as zero', () => {
    assert.equal(formatDuration(-5), '0ms');
    assert.equal(formatDuration(Number.NaN), '0ms');
  });
});

describe('formatSpeedup', () => {
  it('one decimal, two below 1, a dash when unknown', () => {
    assert.equal(formatSpeedup(1.9166), '1.9×');
    assert.equal(formatSpeedup(0.456), '0.46×');
    assert.equal(formatSpeedup(0), '–');
    assert.equal(formatSpeedup(Number.POSITIVE_INFINITY), '–');
  });
});

describe('summaryMessage', () => {
  it('gives counts, wall time, work time and speedup', () => {
    assert.equal(summaryMessage(result), 'Parallel tasks failed: 1 succeeded, 1 failed in 1.2s (2.3s of work, 1.9× speedup)');
    assert.equal(summarySeverity(result), 'error');
  });
  it('leaves out empty categories of a success', () => {
    const ok: RunResult = { ...result, status: 'succeeded', tasks: [result.tasks[0]], workMs: 1500, speedup: 1.25 };
    assert.equal(summaryMessage(ok), 'Parallel tasks done: 1 succeeded in 1.2s (1.5s of work, 1.3× speedup)');
    assert.equal(summarySeverity(ok), 'info');
  });
  it('names skipped and cancelled tasks', () => {
    const r: RunResult = {
      ...result,
      status: 'cancelled',
      tasks: [
        { id: 'a', status: 'cancelled', attempts: 1, durationMs: 10 },
        { id: 'b', status: 'skipped', attempts: 0, durationMs: 0 },
      ],
    };
    assert.equal(summaryMessage(r), 'Parallel tasks cancelled: 0 succeeded, 1 skipped, 1 cancelled in 1.2s (2.3s of work, 1.9× speedup)');
    assert.equal(summarySeverity(r), 'warning');
  });
  it('counts the tasks a resume kept apart', () => {
    const r: RunResult = {
      ...result,
      tasks: [{ id: 'ok', status: 'succeeded', attempts: 0, durationMs: 0, reusedFrom: 'r0' }, result.tasks[1]],
      workMs: 800,
      speedup: 800 / 1200,
    };
    assert.equal(summaryMessage(r), 'Parallel tasks failed: 0 succeeded, 1 failed, 1 kept from the earlier run in 1.2s (800ms of work, 0.67× speedup)');
    assert.equal(taskDescription({ id: 'ok', state: 'succeeded', attempt: 0, reusedFrom: 'r0' }, 0), 'succeeded earlier · kept from run r0');
    assert.equal(stateLine({ id: 'ok', state: 'succeeded', attempt: 0, reusedFrom: 'r0' }, 'succeeded', 0), '[ok] ── succeeded in run r0; not run again');
  });
});

const counts = (c: Partial<RunCounts>): RunCounts => ({
  total: 0, finished: 0, running: 0, waiting: 0, ready: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0, rejected: 0, ...c,
});

describe('progress', () => {
  it('message and percentage from the counts', () => {
    const c = counts({ total: 4, finished: 1, failed: 1, running: 2, waiting: 1 });
    assert.equal(progressMessage(c), '1/4 done · 2 running · 1 waiting · 1 failed');
    assert.equal(progressPercentage(c), 25);
    assert.equal(progressPercentage(counts({})), 0);
  });
  it('status bar shows progress, then the outcome', () => {
    assert.equal(statusBarText(counts({ total: 3, finished: 1 }), false), '$(sync~spin) parex 1/3');
    assert.equal(statusBarText(counts({ total: 3, finished: 3, succeeded: 2, failed: 1 }), true), '$(error) parex 1/3 failed');
    assert.equal(statusBarText(counts({ total: 3, finished: 3, succeeded: 3 }), true), '$(pass) parex 3/3');
  });
});

describe('output lines', () => {
  it('tags every line with its task', () => {
    assert.deepEqual(tagLines('api', ['collected 3 items', '', 'ok']), ['[api] collected 3 items', '[api] ', '[api] ok']);
  });
  it('state lines say what happened, and how long it took', () => {
    const task: TaskView = { id: 'bad', state: 'failed', attempt: 1, exitCode: 3, error: 'exit code 3' };
    assert.equal(stateLine(task, 'failed', 800), '[bad] ── failed (exit 3): exit code 3 after 800ms');
    assert.equal(stateLine({ id: 'x', state: 'running', attempt: 2 }, 'running', 0), '[x] ── started (attempt 2)');
    assert.equal(stateLine({ id: 'x', state: 'succeeded', attempt: 1 }, 'succeeded', 4200), '[x] ── succeeded after 4.2s');
  });
  it('run header has the time, label and task count', () => {
    assert.equal(runHeader('parex.toml', 2, new Date(2025, 0, 1, 9, 5, 7)), '=== 09:05:07 parex.toml (2 tasks)');
    assert.equal(runHeader('parex.toml', undefined, new Date(2025, 0, 1, 9, 5, 7)), '=== 09:05:07 parex.toml');
  });
});

describe('tree descriptions', () => {
  it('state, elapsed time and the latest line', () => {
    assert.equal(taskDescription({ id: 'a', state: 'running', attempt: 1, lastLine: 'building' }, 4200), 'running · 4.2s · building');
    assert.equal(taskDescription({ id: 'a', state: 'queued', attempt: 0 }, undefined), 'queued');
  });
  it('a failure shows its reason before its last line', () => {
    const t: TaskView = { id: 'a', state: 'failed', attempt: 2, lastLine: 'boom', error: 'exit code 1' };
    assert.equal(taskDescription(t, 900), 'failed (attempt 2) · 900ms · exit code 1');
  });
  it('truncates long lines to one', () => {
    assert.equal(truncate('a\n  b', 10), 'a b');
    assert.equal(truncate('abcdefghijk', 5), 'abcd…');
  });
});

describe('review and spend', () => {
  it('ready and rejected tasks in the view, the output and the summary', () => {
    const ready: TaskView = { id: 'edit', state: 'ready', attempt: 1, changes: { files: 2, added: 12, removed: 3, commits: 1 }, conflicts: ['x'] };
    assert.equal(taskDescription(ready, 4200), 'ready for review · 4.2s · +12 −3 in 2 files · ⚠ 1 predicted conflict');
    assert.equal(stateLine(ready, 'ready', 4200), '[edit] ── ready for review (+12 −3 in 2 files)');
    assert.equal(stateLine({ id: 'edit', state: 'rejected', attempt: 1, branch: 'parex/r/edit' }, 'rejected', 1), '[edit] ── rejected; its work is kept on parex/r/edit');
    assert.equal(changesText({ files: 1, added: 1, removed: 0, commits: 1 }), '+1 −0 in 1 file');
    const result = { runId: 'r', status: 'failed', wallMs: 1000, workMs: 1000, speedup: 1, tasks: [
      { id: 'a', status: 'succeeded', attempts: 1, durationMs: 1 },
      { id: 'b', status: 'rejected', attempts: 1, durationMs: 1 },
    ] };
    assert.equal(summaryMessage(result), 'Parallel tasks failed: 1 succeeded, 0 failed, 1 rejected in 1.0s (1.0s of work, 1.0× speedup)');
    assert.equal(progressMessage(counts({ total: 3, finished: 1, succeeded: 1, ready: 2 })), '1/3 done · 2 ready for review');
  });
  it('the status bar: tasks to review, the spend against the budget, rate-limit pauses', () => {
    const c = counts({ total: 2, finished: 1, succeeded: 1, ready: 1 });
    assert.equal(statusBarText(c, false), '$(git-pull-request) parex 1/2 · 1 to review');
    const spend = { spent: { promptTokens: 9000, completionTokens: 3300, costUsd: 0.42 }, budget: { usd: 5 }, exceeded: false };
    assert.equal(
      statusBarText(counts({ total: 2, finished: 0, running: 2 }), false, spend, ['claude: rate limited, resuming in 42s']),
      '$(sync~spin) parex 0/2 · $0.42 / $5.00 · claude: rate limited, resuming in 42s',
    );
    assert.equal(statusBarText(counts({ total: 1, finished: 1, rejected: 1 }), true), '$(error) parex 1/1 failed');
  });
  it('spend reads as money, tokens, or both', () => {
    assert.equal(spendText({ spent: { costUsd: 0.0123 }, budget: { usd: 1 }, exceeded: false }), '$0.0123 / $1.00');
    assert.equal(spendText({ spent: { promptTokens: 1500, completionTokens: 550 }, budget: { tokens: 2000 }, exceeded: true }), '2.0k / 2.0k tokens (budget reached)');
    assert.equal(spendText({ spent: { promptTokens: 10, completionTokens: 5, costUsd: 0.5 }, budget: { usd: 2, tokens: 100_000 }, exceeded: false }), '$0.5 / $2.00, 15 / 100k tokens');
    assert.equal(spendText({ spent: { promptTokens: 12_000, completionTokens: 345 }, exceeded: false }), '12k tokens');
    assert.equal(spendText({ spent: { costUsd: 3.5 }, exceeded: false }), '$3.50');
    assert.equal(spendText({ spent: {}, exceeded: false }), '');
    assert.equal(formatUsd(0), '$0');
    assert.equal(formatTokens(1_234_567), '1.2M');
  });
  it('a cooldown counts down, rounded up', () => {
    const cooldown = { agent: 'claude', until: 100_000, reason: 'HTTP 429' };
    assert.equal(cooldownText(cooldown, 58_000), 'claude: rate limited, resuming in 42s');
    assert.equal(cooldownText(cooldown, 99_900), 'claude: rate limited, resuming in 1s');
    assert.equal(cooldownText(cooldown, 0), 'claude: rate limited, resuming in 1m 40s');
  });
});
