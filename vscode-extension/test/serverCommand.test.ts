import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  configuredCommand,
  defaultIsExecutable,
  describeCommand,
  expandVariables,
  findOnPath,
  resolveServerCommand,
  venvExecutable,
  withStdio,
} from '../src/serverCommand';

const only = (...files: string[]) => (f: string) => files.includes(f);

describe('resolveServerCommand', () => {
  it('takes the setting first, expanding variables and adding --stdio', () => {
    const cmd = resolveServerCommand({
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
    });
  });
  it('keeps a transport the setting chose', () => {
    const cmd = resolveServerCommand({ configured: ['python', '-m', 'parex_lsp', '--stdio'], pathEnv: '', workspaceFolders: [] });
    assert.deepEqual(cmd.args, ['-m', 'parex_lsp', '--stdio']);
  });
  it('ignores a setting that is empty or not a list of strings', () => {
    for (const configured of [[], [''], '  ', [1, 2], null, undefined, { command: 'x' }]) {
      const cmd = resolveServerCommand({
        configured,
        pathEnv: '/opt/bin',
        workspaceFolders: [],
        platform: 'linux',
        isExecutable: only('/opt/bin/parex-lsp'),
      });
      assert.equal(cmd.source, 'path', JSON.stringify(configured));
    }
  });
  it('then parex-lsp on PATH, in PATH order', () => {
    const cmd = resolveServerCommand({
      configured: [],
      pathEnv: '/a::/b:/c',
      workspaceFolders: ['/w'],
      platform: 'linux',
      isExecutable: only('/b/parex-lsp', '/c/parex-lsp', '/w/.venv/bin/parex-lsp'),
    });
    assert.deepEqual(cmd, { command: '/b/parex-lsp', args: ['--stdio'], source: 'path' });
  });
  it("then the first workspace folder's .venv that has it", () => {
    const cmd = resolveServerCommand({
      configured: undefined,
      pathEnv: '/usr/bin',
      workspaceFolders: ['/w1', '/w2'],
      platform: 'linux',
      isExecutable: only('/w2/.venv/bin/parex-lsp'),
    });
    assert.deepEqual(cmd, { command: '/w2/.venv/bin/parex-lsp', args: ['--stdio'], source: 'venv' });
  });
  it('else a bare parex-lsp', () => {
    const cmd = resolveServerCommand({ configured: undefined, pathEnv: undefined, workspaceFolders: ['/w'], isExecutable: () => false });
    assert.deepEqual(cmd, { command: 'parex-lsp', args: ['--stdio'], source: 'default' });
  });
  it('uses PATHEXT and Scripts\\ on Windows', () => {
    const cmd = resolveServerCommand({
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

describe('helpers', () => {
  it('configuredCommand takes a single path as the executable, spaces and all', () => {
    assert.deepEqual(configuredCommand('/opt/my tools/parex-lsp'), ['/opt/my tools/parex-lsp']);
    const cmd = resolveServerCommand({ configured: '~/bin/parex-lsp', pathEnv: '', workspaceFolders: [], homeDir: '/h' });
    assert.deepEqual(cmd, { command: '/h/bin/parex-lsp', args: ['--stdio'], source: 'setting' });
  });
  it('configuredCommand trims and rejects a blank executable', () => {
    assert.deepEqual(configuredCommand([' parex-lsp ', '--stdio']), ['parex-lsp', '--stdio']);
    assert.equal(configuredCommand(['  ']), undefined);
  });
  it('expandVariables leaves a ~ that is not leading alone', () => {
    assert.equal(expandVariables('a~b', '/w', '/h'), 'a~b');
    assert.equal(expandVariables('~', '/w', '/h'), '/h');
    assert.equal(expandVariables('${userHome}/x', '/w', '/h'), '/h/x');
    assert.equal(expandVariables('${workspaceFolder}', undefined, '/h'), '${workspaceFolder}');
  });
  it('withStdio does not add a second transport', () => {
    assert.deepEqual(withStdio(['--tcp']), ['--tcp']);
    assert.deepEqual(withStdio([]), ['--stdio']);
  });
  it('describeCommand quotes what a shell would split', () => {
    assert.equal(describeCommand({ command: '/opt/my tools/parex-lsp', args: ['--stdio'], source: 'setting' }), "'/opt/my tools/parex-lsp' --stdio");
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

  it('skips a PATH entry that is not executable and finds the venv one', () => {
    assert.equal(defaultIsExecutable(path.join(dir, 'bin', 'parex-lsp')), false);
    assert.equal(defaultIsExecutable(path.join(dir, 'bin')), false);
    assert.equal(findOnPath('parex-lsp', path.join(dir, 'bin'), 'linux', defaultIsExecutable), undefined);
    const cmd = resolveServerCommand({ configured: [], pathEnv: path.join(dir, 'bin'), workspaceFolders: [path.join(dir, 'ws')] });
    assert.deepEqual(cmd, { command: path.join(dir, 'ws', '.venv', 'bin', 'parex-lsp'), args: ['--stdio'], source: 'venv' });
  });
});
