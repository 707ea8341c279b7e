import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
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
