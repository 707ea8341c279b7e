import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { describe, it } from 'node:test';
import { cliFailure, cliInvocation, execRunner, lastLines } from '../src/serverCli';

describe('cliInvocation', () => {
  it('puts the subcommand in place of --stdio, keeping the bundled server its PYTHONPATH', () => {
    const inv = cliInvocation(
      { command: '/usr/bin/python3', args: ['-m', 'parex_lsp', '--stdio'], source: 'bundled', env: { PYTHONPATH: '/ext/bundled/libs' }, notes: [] },
      ['report', 'r1', '-o', '/tmp/r1.html'],
    );
    assert.deepEqual(inv, { command: '/usr/bin/python3', args: ['-m', 'parex_lsp', 'report', 'r1', '-o', '/tmp/r1.html'], env: { PYTHONPATH: '/ext/bundled/libs' } });
  });

  it("keeps a setting's own options and drops any transport it chose", () => {
    const cmd = { command: '/w/.venv/bin/parex-lsp', args: ['--log-file', '/tmp/p.log', '--tcp'], source: 'setting' as const, notes: [] };
    assert.deepEqual(cliInvocation(cmd, ['doctor', '--json']), { command: '/w/.venv/bin/parex-lsp', args: ['--log-file', '/tmp/p.log', 'doctor', '--json'] });
    const pipe = { command: 'parex-lsp', args: ['--pipe=/tmp/x', '--socket=3'], source: 'setting' as const, notes: [] };
    assert.deepEqual(cliInvocation(pipe, ['status', '--json']).args, ['status', '--json']);
  });
});

describe('execRunner', () => {
  const node = process.execPath;
  it('gives the exit code, stdout and stderr of a real process, in the folder asked, with the extra environment', async () => {
    const out = await execRunner()(
      { command: node, args: ['-e', 'console.log(process.cwd() + " " + process.env.PAREX_X); console.error("parex: no runs"); process.exit(2)'], env: { PAREX_X: 'set' } },
      os.tmpdir(),
    );
    assert.equal(out.code, 2);
    assert.equal(out.stdout.trim(), `${fs.realpathSync(os.tmpdir())} set`);
    assert.equal(out.stderr.trim(), 'parex: no runs');
    assert.equal(cliFailure('report', out), 'parex-lsp report exited with code 2: parex: no runs');
  });

  it('says why a process did not run or was stopped', async () => {
    const missing = await execRunner()({ command: '/nonexistent/parex-lsp', args: ['report'] }, os.tmpdir());
    assert.equal(missing.code, null);
    assert.match(cliFailure('report', missing), /^parex-lsp report did not run: .*ENOENT/);
    const slow = await execRunner(300)({ command: node, args: ['-e', 'setTimeout(() => {}, 10000)'] }, os.tmpdir());
    assert.equal(slow.code, null);
    assert.match(slow.error ?? '', /stopped after 0.3s \(SIGTERM\)/);
  });
});

describe('lastLines', () => {
  it("keeps a traceback's last non-blank lines", () => {
    assert.equal(lastLines('Traceback:\n  a\n  b\n\nValueError: bad\n', 2), '  b\nValueError: bad');
    assert.equal(cliFailure('doctor --json', { code: 1, stdout: 'only stdout\n', stderr: '' }), 'parex-lsp doctor --json exited with code 1: only stdout');
  });
});
