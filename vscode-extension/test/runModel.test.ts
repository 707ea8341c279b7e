import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLogUri, parsePlannedTasks, parseRunResult, parseTaskEvent, type TaskEvent } from '../src/protocol';
import { outputLines, RunModel } from '../src/runModel';

const ev = (taskId: string | null, kind: string, data?: Record<string, unknown>, attempt = 1): TaskEvent => ({
  runId: 'r1',
  taskId,
  kind,
  attempt,
  timestamp: '2025-01-01T00:00:00Z',
  data,
});

describe('RunModel', () => {
  it('follows tasks through their events', () => {
    const m = new RunModel(['ok', 'bad'], 1000);
    assert.equal(m.runId, undefined);
    m.apply(ev(null, 'runStarted'), 1000);
    assert.equal(m.runId, 'r1');
    m.apply(ev('ok', 'queued'), 1000);
    const started = m.apply(ev('ok', 'started'), 1100);
    assert.equal(started.stateChange, 'running');
    m.apply(ev('bad', 'started'), 1200);
    const out = m.apply(ev('ok', 'output', { text: 'line one\nline two\n' }), 1300);
    assert.deepEqual(out.outputLines, ['line one', 'line two']);
    assert.equal(out.stateChange, undefined);
    assert.equal(m.get('ok')?.lastLine, 'line two');
    assert.deepEqual(m.counts(), { total: 2, finished: 0, running: 2, waiting: 0, ready: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0, rejected: 0 });
    assert.equal(m.elapsedMs(m.get('ok')!, 1600), 500);

    m.apply(ev('ok', 'succeeded'), 2100);
    m.apply(ev('bad', 'failed', { error: 'exit code 3', code: 'exit-code', exitCode: 3 }), 2200);
    const bad = m.get('bad')!;
    assert.equal(bad.state, 'failed');
    assert.equal(bad.error, 'exit code 3');
    assert.equal(bad.code, 'exit-code');
    assert.equal(bad.exitCode, 3);
    assert.equal(m.elapsedMs(m.get('ok')!, 9999), 1000, 'a finished task stops its clock');
    assert.equal(m.finished, false);
    m.apply(ev(null, 'runFinished'), 2300);
    assert.equal(m.finished, true);
    assert.deepEqual(m.unfinishedOrFailed().map((t) => t.id), ['bad']);
  });

  it('takes the task list of runStarted, and a log path as a file uri', () => {
    const m = new RunModel([], 0);
    m.apply(ev(null, 'runStarted', { tasks: ['z', 'a', 7] }), 0);
    assert.deepEqual(m.list().map((t) => [t.id, t.state]), [['z', 'pending'], ['a', 'pending']]);
    m.apply(ev('a', 'failed', { reason: 'exited with code 3', logPath: '/w/.parex/runs/r1/a b.log' }), 0);
    assert.equal(m.get('a')!.error, 'exited with code 3');
    assert.equal(m.get('a')!.logUri, 'file:///w/.parex/runs/r1/a%20b.log');
  });

  it("takes the tasks runStarted announces: prompts, agents, ranges and logs as the server read them", () => {
    const m = new RunModel(['call2'], 0);
    const range = { start: { line: 3, character: 0 }, end: { line: 4, character: 9 } };
    m.apply(ev(null, 'runStarted', {
      tasks: [
        { id: 'call1', prompt: 'summarise\nthe parser', agent: 'model', range, logPath: '/w/.parex/runs/r1/call1.log' },
        { id: 'call2', prompt: 'name two risks', agent: 'model', range: null, logPath: '/w/.parex/runs/r1/call2.log' },
      ],
    }), 0);
    assert.deepEqual(m.list().map((t) => t.id), ['call2', 'call1']);
    assert.deepEqual(m.get('call1'), {
      id: 'call1', state: 'pending', attempt: 0, prompt: 'summarise\nthe parser', agent: 'model', range,
      logUri: 'file:///w/.parex/runs/r1/call1.log',
    });
    assert.equal(m.get('call2')!.range, undefined);
    assert.deepEqual([...m.prompts()], [['call2', 'name two risks'], ['call1', 'summarise\nthe parser']]);
  });

  it("takes a result's logPath when it has no logUri, and never builds a path itself", () => {
    const m = new RunModel(['a', 'b'], 0);
    m.applyResult({ runId: 'r1', status: 'failed', wallMs: 1, workMs: 1, speedup: 1, tasks: [
      { id: 'a', status: 'failed', attempts: 1, durationMs: 1, logPath: '/w/.parex/runs/r1/a.log' },
      { id: 'b', status: 'failed', attempts: 1, durationMs: 1 },
    ] }, 5);
    assert.equal(m.get('a')!.logUri, 'file:///w/.parex/runs/r1/a.log');
    assert.equal(m.get('b')!.logUri, undefined);
    assert.deepEqual([...m.prompts()], []);
  });

  it('learns tasks it was not told of, in event order', () => {
    const m = new RunModel([], 0);
    m.apply(ev('b', 'queued'), 0);
    m.apply(ev('a', 'queued'), 0);
    assert.deepEqual(m.list().map((t) => t.id), ['b', 'a']);
  });

  it('a retry restarts the clock and counts the attempt', () => {
    const m = new RunModel(['t'], 0);
    m.apply(ev('t', 'started'), 100);
    m.apply(ev('t', 'retrying', { reason: 'rate limit' }), 500);
    assert.equal(m.get('t')!.error, 'rate limit');
    assert.equal(m.counts().running, 1);
    m.apply(ev('t', 'started', undefined, 2), 900);
    assert.equal(m.get('t')!.attempt, 2);
    assert.equal(m.get('t')!.error, undefined);
    assert.equal(m.elapsedMs(m.get('t')!, 1000), 100);
  });

  it('the result overrides what events said and is the summary', () => {
    const m = new RunModel(['ok', 'bad'], 0);
    m.apply(ev('ok', 'started'), 0);
    const result = {
      runId: 'r1',
      status: 'failed',
      tasks: [
        { id: 'ok', status: 'succeeded', attempts: 1, durationMs: 40, logUri: 'file:///w/.parex/runs/r1/ok.log' },
        { id: 'old', status: 'succeeded', attempts: 0, durationMs: 0, reusedFrom: 'r0' },
        { id: 'bad', status: 'skipped', attempts: 0, durationMs: 0, code: 'dependency-failed' },
      ],
      wallMs: 50,
      workMs: 40,
      speedup: 0.8,
    };
    m.applyResult(result, 60);
    assert.equal(m.get('ok')!.state, 'succeeded');
    assert.equal(m.get('ok')!.logUri, 'file:///w/.parex/runs/r1/ok.log');
    assert.equal(m.elapsedMs(m.get('ok')!, 1000), 40);
    assert.equal(m.get('bad')!.state, 'skipped');
    assert.equal(m.get('bad')!.code, 'dependency-failed');
    assert.equal(m.get('old')!.reusedFrom, 'r0');
    assert.equal(m.get('ok')!.reusedFrom, undefined);
    assert.equal(m.summary(1000), result);
    // A late event of the same attempt does not pull the task back.
    m.apply(ev('ok', 'started'), 70);
    assert.equal(m.get('ok')!.state, 'succeeded');
  });

  it('builds a summary from events when no result came', () => {
    const m = new RunModel([], 1000, 'r9');
    m.apply({ ...ev('a', 'started'), runId: 'r9' }, 1000);
    m.apply({ ...ev('b', 'started'), runId: 'r9' }, 1000);
    m.apply({ ...ev('a', 'succeeded'), runId: 'r9' }, 3000);
    m.apply({ ...ev('b', 'failed', { error: 'boom' }), runId: 'r9' }, 3000);
    m.apply({ ...ev(null, 'runFinished'), runId: 'r9' }, 3000);
    const s = m.summary(5000);
    assert.equal(s.runId, 'r9');
    assert.equal(s.status, 'failed');
    assert.equal(s.wallMs, 2000);
    assert.equal(s.workMs, 4000);
    assert.equal(s.speedup, 2);
    assert.deepEqual(s.tasks.map((t) => [t.id, t.status, t.error]), [['a', 'succeeded', undefined], ['b', 'failed', 'boom']]);
  });

  it('ignores kinds it does not know', () => {
    const m = new RunModel(['t'], 0);
    assert.deepEqual(m.apply(ev('t', 'somethingNew'), 0), { outputLines: [] });
    assert.equal(m.get('t')!.state, 'pending');
  });
});

describe('outputLines', () => {
  it('splits complete lines and drops the final line end only', () => {
    assert.deepEqual(outputLines('a\nb\n'), ['a', 'b']);
    assert.deepEqual(outputLines('a\r\n\r\nb'), ['a', '', 'b']);
    assert.deepEqual(outputLines('\n'), ['']);
    assert.deepEqual(outputLines(''), []);
  });
});

describe('protocol parsing', () => {
  it('parseTaskEvent keeps what it needs and refuses what lacks a runId or kind', () => {
    assert.deepEqual(parseTaskEvent({ runId: 'r', taskId: null, kind: 'runStarted', attempt: 0, timestamp: 5 }), {
      runId: 'r', taskId: null, kind: 'runStarted', attempt: 0, timestamp: 5, data: undefined,
    });
    assert.equal(parseTaskEvent({ taskId: 't', kind: 'started' }), undefined);
    assert.equal(parseTaskEvent({ runId: 'r', taskId: 3, kind: 'started' }), undefined);
    assert.equal(parseTaskEvent('nope'), undefined);
    assert.equal(parseTaskEvent({ runId: 'r', taskId: 't', kind: 'output', data: { text: 'x\n' } })?.data?.text, 'x\n');
  });
  it('parseRunResult fills what is missing and refuses what is not a result', () => {
    const r = parseRunResult({
      runId: 'r', status: 'failed', wallMs: 100,
      tasks: [{ id: 'a', status: 'failed', attempts: 2, durationMs: 150, exitCode: 1, error: 'exit code 1', code: 'exit-code' }, { nope: 1 }],
    });
    assert.deepEqual(r, {
      runId: 'r', status: 'failed', wallMs: 100, workMs: 150, speedup: 1.5,
      tasks: [{ id: 'a', status: 'failed', attempts: 2, durationMs: 150, exitCode: 1, error: 'exit code 1', code: 'exit-code' }],
    });
    assert.equal(parseRunResult({ runId: 'r' }), undefined);
    assert.equal(parseRunResult(null), undefined);
  });
  it('parsePlannedTasks takes objects or bare ids, dropping entries without an id and ranges that are not ranges', () => {
    assert.equal(parsePlannedTasks({}), undefined);
    assert.equal(parsePlannedTasks(undefined), undefined);
    assert.deepEqual(parsePlannedTasks({ tasks: ['a', '', 3, { prompt: 'no id' }, { id: 'b', prompt: '', agent: '', range: { start: { line: 1 } }, logPath: '' },
      { id: 'c', range: { start: { line: 0, character: 0 }, end: { line: 0, character: 5 } }, extra: true }] }), [
      { id: 'a' },
      { id: 'b', prompt: '' },
      { id: 'c', range: { start: { line: 0, character: 0 }, end: { line: 0, character: 5 } } },
    ]);
  });
  it('parseLogUri takes the uri itself or an object holding it', () => {
    assert.equal(parseLogUri('file:///l.log'), 'file:///l.log');
    assert.equal(parseLogUri({ uri: 'file:///l.log' }), 'file:///l.log');
    assert.equal(parseLogUri({ logUri: 'file:///m.log' }), 'file:///m.log');
    assert.equal(parseLogUri({}), undefined);
    assert.equal(parseLogUri(''), undefined);
  });
});

describe('RunModel: review mode', () => {
  const changes = { files: 1, added: 2, removed: 0, commits: 1 };
  it('a ready task waits for a reviewer, with its branch and changes; accept ends it', () => {
    const m = new RunModel(['edit', 'after'], 0);
    m.apply(ev('edit', 'started'), 100);
    const ready = m.apply(ev('edit', 'ready', { durationMs: 400, branch: 'parex/r1/edit', branchKept: true, changes }), 500);
    assert.equal(ready.stateChange, 'ready');
    const edit = m.get('edit')!;
    assert.equal(edit.branch, 'parex/r1/edit');
    assert.deepEqual(edit.changes, changes);
    assert.equal(m.elapsedMs(edit, 9999), 400, "a ready task's clock has stopped");
    assert.deepEqual(m.readyTasks().map((t) => t.id), ['edit']);
    const c = m.counts();
    assert.equal(c.ready, 1);
    assert.equal(c.finished, 0, 'ready is not finished');
    m.apply(ev('edit', 'conflictPredicted', { other: null, files: ['a'], message: 'conflicts with main in a' }), 600);
    m.apply(ev('edit', 'conflictPredicted', { other: null, files: ['a'], message: 'conflicts with main in a' }), 600);
    assert.deepEqual(edit.conflicts, ['conflicts with main in a']);
    m.apply(ev('edit', 'merged', { commit: 'abc' }), 700);
    assert.equal(edit.conflicts, undefined);
    m.apply(ev('edit', 'succeeded', { durationMs: 400 }), 700);
    assert.equal(edit.state, 'succeeded');
    assert.equal(m.counts().ready, 0);
  });
  it('retry sends a ready task back to the queue; reject is final', () => {
    const m = new RunModel([], 0);
    m.apply(ev('edit', 'started'), 0);
    m.apply(ev('edit', 'ready', { durationMs: 10, changes }), 10);
    assert.equal(m.apply(ev('edit', 'queued'), 20).stateChange, 'queued', 'a retry leaves ready');
    m.apply(ev('edit', 'started', undefined, 2), 30);
    assert.equal(m.get('edit')!.durationMs, undefined, 'the new attempt has its own clock');
    m.apply(ev('edit', 'ready', { durationMs: 5, changes }, 2), 35);
    m.apply(ev('edit', 'rejected', { code: 'rejected', reason: 'rejected; its work is kept on branch parex/r1/edit' }, 2), 40);
    assert.equal(m.get('edit')!.state, 'rejected');
    assert.equal(m.apply(ev('edit', 'queued', undefined, 2), 50).stateChange, undefined, 'rejected is final');
    assert.deepEqual(m.counts(), { total: 1, finished: 1, running: 0, waiting: 0, ready: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0, rejected: 1 });
    assert.equal(m.summary(60).status, 'failed', 'a rejected task counts against the run, as a skipped one does');
  });
  it('a result that leaves tasks ready keeps them ready, with their changes', () => {
    const m = new RunModel(['edit'], 0);
    m.applyResult(parseRunResult({
      runId: 'r1', status: 'ready', wallMs: 10, tasks: [{ id: 'edit', status: 'ready', attempts: 1, durationMs: 10, branch: 'parex/r1/edit', changes }],
    })!, 10);
    assert.equal(m.get('edit')!.state, 'ready');
    assert.deepEqual(m.get('edit')!.changes, changes);
  });
});

describe('RunModel: spend and quota', () => {
  it("usage events carry the task's and the run's totals and the budget", () => {
    const m = new RunModel([], 0);
    assert.equal(m.spend, undefined);
    m.apply(ev('a', 'usage', { promptTokens: 10, completionTokens: 5, costUsd: 0.01, run: { promptTokens: 30, completionTokens: 15, costUsd: 0.03 }, budget: { usd: 1 } }), 0);
    assert.deepEqual(m.get('a')!.usage, { promptTokens: 10, completionTokens: 5, costUsd: 0.01 });
    assert.deepEqual(m.spend, { spent: { promptTokens: 30, completionTokens: 15, costUsd: 0.03 }, budget: { usd: 1 }, exceeded: false });
    m.apply(ev(null, 'budgetExceeded', { spent: { tokens: 2000, promptTokens: 1500, completionTokens: 500, costUsd: 1.2 }, budget: { usd: 1 }, message: 'budget reached' }), 0);
    assert.deepEqual(m.spend, { spent: { promptTokens: 1500, completionTokens: 500, costUsd: 1.2 }, budget: { usd: 1 }, exceeded: true });
  });
  it('the result has the last word on spend', () => {
    const m = new RunModel([], 0);
    m.applyResult(parseRunResult({
      runId: 'r1', status: 'failed', wallMs: 1, tasks: [],
      budget: { spent: { promptTokens: 9, completionTokens: 1, costUsd: 0.5 }, budget: { tokens: 5 }, exceeded: true, summary: 'spent 10 of 5 tokens' },
    })!, 1);
    assert.deepEqual(m.spend, { spent: { promptTokens: 9, completionTokens: 1, costUsd: 0.5 }, budget: { tokens: 5 }, exceeded: true });
  });
  it("cooldowns hold until their end, per agent; reduced concurrency is listed", () => {
    const m = new RunModel([], 0);
    m.apply(ev(null, 'cooldown', { agent: 'claude', until: 100, reason: 'HTTP 429' }), 0);
    m.apply(ev(null, 'cooldown', { agent: 'codex', until: 50, reason: 'HTTP 429' }), 0);
    m.apply(ev(null, 'cooldown', { agent: 'broken', until: 'soon' }), 0);
    assert.deepEqual(m.activeCooldowns(40_000).map((c) => c.agent), ['codex', 'claude']);
    assert.deepEqual(m.activeCooldowns(60_000).map((c) => [c.agent, c.until, c.reason]), [['claude', 100_000, 'HTTP 429']]);
    assert.deepEqual(m.activeCooldowns(100_000), []);
    m.apply(ev(null, 'concurrency', { agent: 'claude', level: 2, max: 4, reason: 'rate limited' }), 0);
    m.apply(ev(null, 'concurrency', { agent: 'codex', level: 3, max: 3, reason: 'regrown' }), 0);
    assert.deepEqual(m.reducedConcurrency(), [{ agent: 'claude', level: 2, max: 4 }]);
  });
});
