import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answersMarkdown, answersTitle, formatCost, formatUsage, hasAnswers, quote, withEarlierAnswers } from '../src/answers';
import { parseRunResult, type RunResult } from '../src/protocol';
import { RunModel } from '../src/runModel';

/** A fan-out as the server answers it: two calls answered, one failed with an API error. */
const wire = {
  runId: '20250101-120000-ab12',
  status: 'failed',
  tasks: [
    {
      id: 'call1',
      status: 'succeeded',
      attempts: 1,
      durationMs: 2100,
      usage: { promptTokens: 1200, completionTokens: 340, costUsd: 0.00188 },
      answer: 'The parser reads **TOML**.\n\n- one\n- two\n',
      logUri: 'file:///ws/.parex/runs/r/call1.log',
    },
    {
      id: 'call2',
      status: 'failed',
      attempts: 1,
      durationMs: 300,
      exitCode: null,
      code: 'api-error',
      error: 'HTTP 400: model does not exist',
      logUri: 'file:///ws/.parex/runs/r/call2.log',
    },
    {
      id: 'call3',
      status: 'succeeded',
      attempts: 2,
      durationMs: 1800,
      usage: { promptTokens: 10, completionTokens: 5 },
      answer: 'Three risks.',
      logUri: 'file:///ws/.parex/runs/r/call3.log',
    },
  ],
  wallMs: 2200,
  workMs: 4200,
  speedup: 1.91,
  usage: { promptTokens: 1210, completionTokens: 345, costUsd: 0.00188 },
};

describe('parseRunResult with model answers', () => {
  it('keeps each task answer and usage, and the run usage', () => {
    const r = parseRunResult(wire)!;
    assert.equal(r.tasks[0].answer, 'The parser reads **TOML**.\n\n- one\n- two\n');
    assert.deepEqual(r.tasks[0].usage, { promptTokens: 1200, completionTokens: 340, costUsd: 0.00188 });
    assert.equal(r.tasks[1].answer, undefined);
    assert.equal(r.tasks[1].usage, undefined);
    assert.deepEqual(r.usage, { promptTokens: 1210, completionTokens: 345, costUsd: 0.00188 });
  });
  it('drops answers and usage of the wrong type', () => {
    const r = parseRunResult({
      runId: 'r',
      tasks: [{ id: 'a', status: 'succeeded', answer: 42, usage: { promptTokens: 'many', completionTokens: 3 } }],
      usage: 'lots',
    })!;
    assert.equal(r.tasks[0].answer, undefined);
    assert.deepEqual(r.tasks[0].usage, { completionTokens: 3 });
    assert.equal(r.usage, undefined);
  });
});

describe('hasAnswers', () => {
  it('is true when any task has an answer, even an empty one', () => {
    assert.equal(hasAnswers(parseRunResult(wire)!), true);
    const empty: RunResult = { runId: 'r', status: 'succeeded', tasks: [{ id: 'a', status: 'succeeded', attempts: 1, durationMs: 1, answer: '' }], wallMs: 1, workMs: 1, speedup: 1 };
    assert.equal(hasAnswers(empty), true);
  });
  it('is false for shell tasks and for failures without answers', () => {
    const shell: RunResult = {
      runId: 'r',
      status: 'failed',
      tasks: [
        { id: 'a', status: 'succeeded', attempts: 1, durationMs: 1 },
        { id: 'b', status: 'failed', attempts: 1, durationMs: 1, error: 'exited with code 3' },
      ],
      wallMs: 1,
      workMs: 2,
      speedup: 2,
    };
    assert.equal(hasAnswers(shell), false);
  });
});

describe('formatUsage', () => {
  it('tokens with thousands separators, and the cost when known', () => {
    assert.equal(formatUsage({ promptTokens: 1200, completionTokens: 340, costUsd: 0.00188 }), '1,200 prompt + 340 completion tokens · $0.0019');
    assert.equal(formatUsage({ promptTokens: 10, completionTokens: 5 }), '10 prompt + 5 completion tokens');
    assert.equal(formatUsage({ costUsd: 2.5 }), '$2.50');
    assert.equal(formatUsage(undefined), '');
    assert.equal(formatUsage({}), '');
    assert.equal(formatUsage({ promptTokens: 0, completionTokens: 0 }), '', 'a call that failed before the model answered');
    assert.equal(formatUsage({ promptTokens: 0, completionTokens: 7 }), '0 prompt + 7 completion tokens');
  });
  it('formatCost never prints nonsense', () => {
    assert.equal(formatCost(0), '$0.0000');
    assert.equal(formatCost(Number.NaN), '$0');
    assert.equal(formatCost(12.345), '$12.35');
  });
});

describe('quote', () => {
  it('quotes every line, blank ones too, and drops trailing space', () => {
    assert.equal(quote('explain parser.py'), '> explain parser.py');
    assert.equal(quote('first line\n\n  indented\n\n'), '> first line\n>\n>   indented');
  });
});

describe('answersMarkdown', () => {
  it('one section per task in plan order: prompt, answer, usage; failures with their error', () => {
    const prompts = new Map([
      ['call1', 'explain parser.py'],
      ['call2', 'list the bugs\nin cli.py'],
      ['call3', 'name three risks'],
    ]);
    const md = answersMarkdown(parseRunResult(wire)!, { label: 'notes.md: call1, call2, call3', prompts });
    assert.equal(
      md,
      [
        '# parex answers — 20250101-120000-ab12',
        '',
        'notes.md: call1, call2, call3 · 2 succeeded, 1 failed in 2.2s · 1,210 prompt + 345 completion tokens · $0.0019',
        '',
        '## call1',
        '',
        '> explain parser.py',
        '',
        'The parser reads **TOML**.',
        '',
        '- one',
        '- two',
        '',
        '*1,200 prompt + 340 completion tokens · $0.0019*',
        '',
        '## call2',
        '',
        '> list the bugs',
        '> in cli.py',
        '',
        '**failed** (api-error): HTTP 400: model does not exist',
        '',
        '## call3',
        '',
        '> name three risks',
        '',
        'Three risks.',
        '',
        '*10 prompt + 5 completion tokens*',
        '',
      ].join('\n'),
    );
  });

  it('without prompts or label: the sections and the counts only', () => {
    const md = answersMarkdown(parseRunResult(wire)!);
    assert.match(md, /^# parex answers — 20250101-120000-ab12\n\n2 succeeded, 1 failed in 2\.2s · /);
    assert.doesNotMatch(md, /^> /m);
    assert.deepEqual(
      md.split('\n').filter((l) => l.startsWith('## ')),
      ['## call1', '## call2', '## call3'],
    );
  });

  it('prompts given as a plain object; unknown ids have none', () => {
    const md = answersMarkdown(parseRunResult(wire)!, { prompts: { call3: 'name three risks', toString: 'x' } });
    assert.match(md, /## call3\n\n> name three risks\n\nThree risks\./);
    assert.match(md, /## call1\n\nThe parser reads/);
  });

  it('tasks without an answer say why; a multi-line error goes in a code block', () => {
    const result: RunResult = {
      runId: 'r9',
      status: 'failed',
      tasks: [
        { id: 'build', status: 'succeeded', attempts: 1, durationMs: 10 },
        { id: 'call1', status: 'succeeded', attempts: 0, durationMs: 10, reusedFrom: 'r8' },
        { id: 'call2', status: 'failed', attempts: 3, durationMs: 10, code: 'retries-exhausted', error: 'HTTP 429: slow down\nRetry-After: 30\n' },
        { id: 'call3', status: 'skipped', attempts: 0, durationMs: 0, code: 'dependency-failed', error: 'call2 failed' },
        { id: 'call4', status: 'cancelled', attempts: 1, durationMs: 5 },
        { id: 'call5', status: 'failed', attempts: 1, durationMs: 5, exitCode: 2, answer: 'partial answer' },
        { id: 'call6', status: 'succeeded', attempts: 1, durationMs: 5, answer: '   ' },
      ],
      wallMs: 40,
      workMs: 45,
      speedup: 1.1,
    };
    const md = answersMarkdown(result);
    assert.match(md, /## build\n\n_succeeded; no answer \(not a model task\)_\n/);
    assert.match(md, /## call1\n\n_succeeded in run r8; no answer kept_\n/);
    assert.match(md, /## call2\n\n\*\*failed\*\* \(retries-exhausted\):\n\n```text\nHTTP 429: slow down\nRetry-After: 30\n```\n/);
    assert.match(md, /## call3\n\n\*\*skipped\*\* \(dependency-failed\): call2 failed\n/);
    assert.match(md, /## call4\n\n\*\*cancelled\*\*\n/);
    assert.match(md, /## call5\n\n\*\*failed\*\* \(exit 2\)\n\npartial answer\n/);
    assert.match(md, /## call6\n\n_\(the model answered with no text\)_\n$/);
    assert.match(md, /^3 succeeded, 2 failed, 1 skipped, 1 cancelled in 40ms$/m);
  });
});

describe('answers from events (runs this window did not start)', () => {
  it('the terminal events carry answer and usage into the summary', () => {
    const m = new RunModel([], 0);
    const ev = (taskId: string, kind: string, data?: Record<string, unknown>) =>
      m.apply({ runId: 'r5', taskId, kind, attempt: 1, timestamp: 0, data }, 10);
    ev('call1', 'started');
    ev('call2', 'started');
    ev('call1', 'succeeded', { durationMs: 5, answer: 'first answer', usage: { promptTokens: 3, completionTokens: 4 } });
    ev('call2', 'failed', { durationMs: 5, code: 'api-error', reason: 'HTTP 500' });
    const result = m.summary(20);
    assert.equal(hasAnswers(result), true);
    assert.equal(result.tasks[0].answer, 'first answer');
    assert.deepEqual(result.tasks[0].usage, { promptTokens: 3, completionTokens: 4 });
    const md = answersMarkdown(result);
    assert.match(md, /## call1\n\nfirst answer\n\n\*3 prompt \+ 4 completion tokens\*/);
    assert.match(md, /## call2\n\n\*\*failed\*\* \(api-error\): HTTP 500/);
  });
  it('a retried task forgets the answer of an earlier attempt', () => {
    const m = new RunModel([], 0);
    m.apply({ runId: 'r', taskId: 'a', kind: 'succeeded', attempt: 1, timestamp: 0, data: { answer: 'old' } }, 1);
    m.apply({ runId: 'r', taskId: 'a', kind: 'started', attempt: 2, timestamp: 0 }, 2);
    assert.equal(m.get('a')?.answer, undefined);
  });
  it('the result overrides what the events said', () => {
    const m = new RunModel(['a'], 0);
    m.applyResult(parseRunResult({ runId: 'r', status: 'succeeded', tasks: [{ id: 'a', status: 'succeeded', answer: 'final' }] })!, 5);
    assert.equal(m.get('a')?.answer, 'final');
    assert.equal(answersTitle('r'), 'parex answers — r');
  });
});

describe('withEarlierAnswers (a resume of a fan-out)', () => {
  const earlier = parseRunResult(wire)!;
  const resumed: RunResult = {
    runId: 'r2',
    status: 'succeeded',
    tasks: [
      { id: 'call1', status: 'succeeded', attempts: 0, durationMs: 0, reusedFrom: earlier.runId },
      { id: 'call2', status: 'succeeded', attempts: 1, durationMs: 900, answer: 'now it works' },
      { id: 'call3', status: 'succeeded', attempts: 0, durationMs: 0, reusedFrom: 'unknown-run' },
    ],
    wallMs: 900,
    workMs: 900,
    speedup: 1,
  };
  const lookup = (id: string) => (id === earlier.runId ? earlier : undefined);

  it('takes the kept tasks\' answers from the earlier run it knows', () => {
    const filled = withEarlierAnswers(resumed, lookup);
    assert.equal(filled.tasks[0].answer, 'The parser reads **TOML**.\n\n- one\n- two\n');
    assert.equal(filled.tasks[0].usage, undefined, 'the usage was the earlier run\'s');
    assert.equal(filled.tasks[1].answer, 'now it works');
    assert.equal(filled.tasks[2].answer, undefined);
    assert.equal(resumed.tasks[0].answer, undefined, 'the result it was given is left as it was');
    const md = answersMarkdown(filled);
    assert.match(md, /## call1\n\n_kept from run 20250101-120000-ab12_\n\nThe parser reads/);
    assert.match(md, /## call3\n\n_succeeded in run unknown-run; no answer kept_/);
  });
  it('returns the same result when there is nothing to take', () => {
    assert.equal(withEarlierAnswers(earlier, lookup), earlier);
    assert.equal(withEarlierAnswers(resumed, () => undefined), resumed);
  });
});
