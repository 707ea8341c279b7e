import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { doctorLines, doctorMessage, doctorProblems, parseDoctor } from '../src/doctor';

const out = (code: number | null, report: unknown, stderr = '') => ({ code, stdout: `${JSON.stringify(report)}\n`, stderr });

describe('parseDoctor', () => {
  it('reads a healthy setup', () => {
    const report = parseDoctor(
      out(0, {
        ok: true,
        workspace: '/w',
        checks: [
          { name: 'agent shell', ok: true, detail: 'runs prompts with /bin/sh', required: true },
          { name: 'git', ok: false, detail: 'not a git repository', required: false },
        ],
        problems: [],
      }),
    );
    assert.deepEqual(doctorProblems(report), []);
    assert.deepEqual(doctorLines(report, 'parex.toml'), [
      'parex setup of /w for parex.toml:',
      '✓ agent shell: runs prompts with /bin/sh',
      '⚠ git: not a git repository',
      'everything needed is in place',
    ]);
    assert.deepEqual(doctorMessage(report), { severity: 'info', text: 'Parex setup: everything needed is in place' });
  });

  it('counts the failed required checks, the first one in the notification', () => {
    const report = parseDoctor(
      out(1, {
        ok: false,
        workspace: '/w',
        checks: [
          { name: 'agent ghost', ok: false, detail: '`no-such-agent` not found on PATH', required: true },
          { name: 'locks', ok: false, detail: 'stale owner file', required: true },
          { name: 'git', ok: false, detail: 'no commit', required: false },
        ],
        problems: [],
      }),
    );
    assert.equal(doctorLines(report, undefined)[1], '✗ agent ghost: `no-such-agent` not found on PATH');
    assert.equal(doctorLines(report, undefined).at(-1), '2 problem(s) to fix');
    assert.deepEqual(doctorMessage(report), { severity: 'warning', text: 'Parex setup: 2 problem(s): agent ghost: `no-such-agent` not found on PATH' });
  });

  it("reads an invalid plan's problems (exit 2)", () => {
    const report = parseDoctor(out(2, { ok: false, workspace: '/w', checks: [], problems: ['/w/parex.toml:3:1: unknown agent `wizard`'] }));
    assert.deepEqual(doctorLines(report, 'parex.toml').slice(1), [
      '✗ the plan is invalid (1 problem(s)):',
      '    /w/parex.toml:3:1: unknown agent `wizard`',
      '1 problem(s) to fix',
    ]);
    assert.equal(doctorMessage(report).text, 'Parex setup: 1 problem(s): /w/parex.toml:3:1: unknown agent `wizard`');
  });

  it('throws with what the server said when it did not answer', () => {
    assert.throws(() => parseDoctor({ code: 2, stdout: '', stderr: 'usage: parex-lsp ...\nparex-lsp: error: invalid choice: doctor\n' }), /exited with code 2: usage: parex-lsp \.\.\.\nparex-lsp: error: invalid choice: doctor/);
    assert.throws(() => parseDoctor({ code: null, stdout: '', stderr: '', error: 'spawn python3 ENOENT' }), /did not run: spawn python3 ENOENT/);
    assert.throws(() => parseDoctor({ code: 1, stdout: '{"checks": 3}', stderr: '' }), /expected \{ok, workspace, checks, problems\}/);
    assert.throws(() => parseDoctor({ code: 139, stdout: '', stderr: 'Segmentation fault' }), /exited with code 139: Segmentation fault/);
  });
});
