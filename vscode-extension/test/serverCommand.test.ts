import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  bundledPythonPath,
  configuredCommand,
  defaultIsExecutable,
  defaultPythonVersion,
  describeCommand,
  expandVariables,
  findOnPath,
  parsePythonVersion,
  resolveServerCommand,
  startFailureAdvice,
  venvExecutable,
  withStdio,
} from '../src/serverCommand';

const only = (...files: string[]) => (f: string) => files.includes(f);

describe('resolveServerCommand', () => {
  it('takes the setting first, expanding variables and adding --stdio', async () => {
    const cmd = await resolveServerCommand({
      configured: ['${workspaceFolder}/.venv/bin/parex-lsp', '--log-file', '~/parex.log'],
      pathEnv: '/usr/bin',
      workspaceFolders: ['/w'],
      homeDir: '/home/me',
      platform: 'linux',
      isExecutable: () => true,
    });
    assert.deepEqual(cmd, {
      command: '/w/.venv/bin/parex-lsp',
      args: ['--log-file', '/home/me/parex.log', '--stdio'],
      source: 'setting',
      notes: [],
    });
  });
  it('keeps a transport the setting chose', async () => {
    const cmd = await resolveServerCommand({ configured: ['python', '-m', 'parex_lsp', '--stdio'], pathEnv: '', workspaceFolders: [] });
    assert.deepEqual(cmd.args, ['-m', 'parex_lsp', '--stdio']);
  });
  it('ignores a setting that is empty or not a list of strings', async () => {
    for (const configured of [[], [''], '  ', [1, 2], null, undefined, { command: 'x' }]) {
      const cmd = await resolveServerCommand({
        configured,
        pathEnv: '/opt/bin',
        workspaceFolders: [],
        platform: 'linux',
        isExecutable: only('/opt/bin/parex-lsp'),
      });
      assert.equal(cmd.source, 'path', JSON.stringify(configured));
    }
  });
  it('then parex-lsp on PATH, in PATH order', async () => {
    const cmd = await resolveServerCommand({
      configured: [],
      pathEnv: '/a::/b:/c',
      workspaceFolders: ['/w'],
      platform: 'linux',
      isExecutable: only('/b/parex-lsp', '/c/parex-lsp', '/w/.venv/bin/parex-lsp'),
    });
    assert.deepEqual(cmd, { command: '/b/parex-lsp', args: ['--stdio'], source: 'path', notes: [] });
  });
  it("then the first workspace folder's .venv that has it", async () => {
    const cmd = await resolveServerCommand({
      configured: undefined,
      pathEnv: '/usr/bin',
      workspaceFolders: ['/w1', '/w2'],
      platform: 'linux',
      isExecutable: only('/w2/.venv/bin/parex-lsp'),
    });
    assert.deepEqual(cmd, { command: '/w2/.venv/bin/parex-lsp', args: ['--stdio'], source: 'venv', notes: [] });
  });
  it('else a bare parex-lsp', async () => {
    const cmd = await resolveServerCommand({ configured: undefined, pathEnv: undefined, workspaceFolders: ['/w'], isExecutable: () => false });
    assert.deepEqual(cmd, { command: 'parex-lsp', args: ['--stdio'], source: 'default', notes: [] });
  });
  it('uses PATHEXT and Scripts\\ on Windows', async () => {
    const cmd = await resolveServerCommand({
      configured: [],
      pathEnv: 'C:\\tools;C:\\py',
      pathExt: '.EXE;.CMD',
      workspaceFolders: [],
      platform: 'win32',
      isExecutable: only('C:\\py\\parex-lsp.exe'),
    });
    assert.equal(cmd.command, 'C:\\py\\parex-lsp.exe');
    assert.equal(venvExecutable('C:\\w', 'win32'), 'C:\\w\\.venv\\Scripts\\parex-lsp.exe');
  });
});

describe('the bundled server', () => {
  const versions: Record<string, [number, number] | undefined> = {
    '/venv/bin/python': [3, 12],
    '/old/bin/python': [3, 9],
    '/usr/bin/python3': [3, 11],
    '/usr/bin/python': [3, 13],
    '/broken/python3': undefined,
  };
  const pythonVersion = async (python: string) => versions[python];
  const base = {
    configured: [],
    workspaceFolders: ['/w'],
    platform: 'linux' as const,
    bundledLibs: '/ext/bundled/libs',
    pythonVersion,
  };

  it("runs with the Python extension's interpreter, PYTHONPATH pointing at the bundled libs", async () => {
    const cmd = await resolveServerCommand({
      ...base,
      pathEnv: '/usr/bin:/opt/bin',
      selectedPython: '/venv/bin/python',
      pythonPathEnv: '/mine',
      isExecutable: only('/usr/bin/python3', '/opt/bin/parex-lsp'),
    });
    assert.deepEqual(cmd, {
      command: '/venv/bin/python',
      args: ['-m', 'parex_lsp', '--stdio'],
      source: 'bundled',
      env: { PYTHONPATH: '/ext/bundled/libs:/mine' },
      notes: [],
    });
  });
  it('passes over a Python older than 3.11 and one that does not run, saying why', async () => {
    const cmd = await resolveServerCommand({
      ...base,
      pathEnv: '/broken:/usr/bin',
      selectedPython: '/old/bin/python',
      isExecutable: only('/broken/python3', '/usr/bin/python3', '/usr/bin/python'),
    });
    // The first python3 on PATH is the one a shell would run: a later, working one is not looked for.
    assert.equal(cmd.command, '/usr/bin/python');
    assert.deepEqual(cmd.notes, [
      "the Python extension's interpreter (/old/bin/python): Python 3.9, the server needs 3.11 or later",
      'python3 on PATH (/broken/python3): does not run',
    ]);
    assert.deepEqual(cmd.env, { PYTHONPATH: '/ext/bundled/libs' });
  });
  it('takes python3 on PATH when the Python extension is absent', async () => {
    const cmd = await resolveServerCommand({ ...base, pathEnv: '/usr/bin', isExecutable: only('/usr/bin/python3') });
    assert.equal(cmd.command, '/usr/bin/python3');
    assert.equal(cmd.source, 'bundled');
  });
  it('comes after the setting, which stays an override', async () => {
    const cmd = await resolveServerCommand({ ...base, configured: ['/dev/parex-lsp'], pathEnv: '/usr/bin', isExecutable: () => true });
    assert.equal(cmd.source, 'setting');
  });
  it('without a usable Python, falls back to parex-lsp on PATH; else fails with advice naming what was tried', async () => {
    const onPath = await resolveServerCommand({ ...base, pathEnv: '/old/bin:/opt/bin', isExecutable: only('/old/bin/python', '/opt/bin/parex-lsp') });
    assert.equal(onPath.source, 'path');
    const none = await resolveServerCommand({ ...base, pathEnv: '/nowhere', isExecutable: () => false });
    assert.equal(none.source, 'default');
    assert.match(startFailureAdvice(none), /Python 3\.11 or later: install one \(python3 on PATH: not found; python on PATH: not found\)/);
    assert.match(startFailureAdvice({ ...none, source: 'setting' }), /parex\.serverCommand/);
  });
  it('is not tried when the extension has no bundled server (a development build)', async () => {
    let asked = 0;
    const cmd = await resolveServerCommand({
      ...base,
      bundledLibs: undefined,
      pathEnv: '/usr/bin',
      pythonVersion: async () => (asked++, [3, 12]),
      isExecutable: only('/usr/bin/python3'),
    });
    assert.equal(cmd.source, 'default');
    assert.equal(asked, 0);
  });
  it('uses ; between PYTHONPATH entries on Windows', () => {
    assert.equal(bundledPythonPath('C:\\ext\\libs', 'D:\\x', 'win32'), 'C:\\ext\\libs;D:\\x');
    assert.equal(bundledPythonPath('/ext/libs', '', 'linux'), '/ext/libs');
  });
  it('reads versions as Python prints them', () => {
    assert.deepEqual(parsePythonVersion('3.11.7\n'), [3, 11]);
    assert.deepEqual(parsePythonVersion('3.13.0rc1'), [3, 13]);
    assert.equal(parsePythonVersion('Python'), undefined);
  });
});

describe('helpers', () => {
  it('configuredCommand takes a single path as the executable, spaces and all', async () => {
    assert.deepEqual(configuredCommand('/opt/my tools/parex-lsp'), ['/opt/my tools/parex-lsp']);
    const cmd = await resolveServerCommand({ configured: '~/bin/parex-lsp', pathEnv: '', workspaceFolders: [], homeDir: '/h' });
    assert.deepEqual(cmd, { command: '/h/bin/parex-lsp', args: ['--stdio'], source: 'setting', notes: [] });
  });
  it('configuredCommand trims and rejects a blank executable', async () => {
    assert.deepEqual(configuredCommand([' parex-lsp ', '--stdio']), ['parex-lsp', '--stdio']);
    assert.equal(configuredCommand(['  ']), undefined);
  });
  it('expandVariables leaves a ~ that is not leading alone', async () => {
    assert.equal(expandVariables('a~b', '/w', '/h'), 'a~b');
    assert.equal(expandVariables('~', '/w', '/h'), '/h');
    assert.equal(expandVariables('${userHome}/x', '/w', '/h'), '/h/x');
    assert.equal(expandVariables('${workspaceFolder}', undefined, '/h'), '${workspaceFolder}');
  });
  it('withStdio does not add a second transport', async () => {
    assert.deepEqual(withStdio(['--tcp']), ['--tcp']);
    assert.deepEqual(withStdio([]), ['--stdio']);
  });
  it('describeCommand quotes what a shell would split', async () => {
    assert.equal(describeCommand({ command: '/opt/my tools/parex-lsp', args: ['--stdio'], source: 'setting', notes: [] }), "'/opt/my tools/parex-lsp' --stdio");
  });
});

describe('a real Python', () => {
  it('defaultPythonVersion runs it and reads its version; a missing one is undefined', async () => {
    const python = findOnPath('python3', process.env.PATH, process.platform, defaultIsExecutable);
    assert.ok(python, 'python3 on PATH');
    const version = await defaultPythonVersion(python);
    assert.ok(version && version[0] === 3, JSON.stringify(version));
    assert.equal(await defaultPythonVersion('/nonexistent/python3'), undefined);
  });
});

describe('on the real file system', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parex-cmd-'));
    fs.mkdirSync(path.join(dir, 'ws', '.venv', 'bin'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'ws', '.venv', 'bin', 'parex-lsp'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'bin', 'parex-lsp'), 'not executable\n', { mode: 0o644 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('skips a PATH entry that is not executable and finds the venv one', async () => {
    assert.equal(defaultIsExecutable(path.join(dir, 'bin', 'parex-lsp')), false);
    assert.equal(defaultIsExecutable(path.join(dir, 'bin')), false);
    assert.equal(findOnPath('parex-lsp', path.join(dir, 'bin'), 'linux', defaultIsExecutable), undefined);
    const cmd = await resolveServerCommand({ configured: [], pathEnv: path.join(dir, 'bin'), workspaceFolders: [path.join(dir, 'ws')] });
    assert.deepEqual(cmd, { command: path.join(dir, 'ws', '.venv', 'bin', 'parex-lsp'), args: ['--stdio'], source: 'venv', notes: [] });
  });
});
