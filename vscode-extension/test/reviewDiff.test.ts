import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDiffResult, type FileDiff } from '../src/protocol';
import { changedFileDescription, diffDocument, diffTitle, diffUriParts, parseDiffUri, sideText } from '../src/reviewDiff';

const answer = {
  branch: 'parex/r1/edit',
  baseBranch: 'main',
  base: 'a'.repeat(40),
  head: 'b'.repeat(40),
  files: [
    { path: 'greeting.txt', status: 'modified', baseBlob: '1', resultBlob: '2', base: 'hello\n', result: 'hello\nreviewed\n' },
    { path: 'src/new file.py', status: 'added', baseBlob: null, resultBlob: '3', base: null, result: 'x = 1\n' },
    { path: 'old.bin', status: 'deleted', baseBlob: '4', resultBlob: null, base: null, result: null },
    { path: 'big.dat', status: 'modified', baseBlob: '5', resultBlob: '6', base: null, result: null },
    { status: 'added' },
  ],
  diff: '--- a/greeting.txt\n+++ b/greeting.txt\n',
};

describe('parex/diff answers', () => {
  it('keeps the files with a path, and their texts', () => {
    const diff = parseDiffResult(answer)!;
    assert.equal(diff.baseBranch, 'main');
    assert.deepEqual(diff.files.map((f) => f.path), ['greeting.txt', 'src/new file.py', 'old.bin', 'big.dat']);
    assert.equal(diff.files[0].result, 'hello\nreviewed\n');
    assert.equal(diff.files[1].base, null);
  });
  it('refuses what has no file list', () => {
    assert.equal(parseDiffResult({ branch: 'x' }), undefined);
    assert.equal(parseDiffResult('nope'), undefined);
  });
});

describe('parex-diff: documents', () => {
  it('a side round-trips through its uri, whatever the file name holds', () => {
    for (const path of ['greeting.txt', 'src/new file.py', 'a/b?c#d&e=f.ts', 'ünï/cødé.md']) {
      const ref = { runId: '20250101-abc', taskId: 'edit-1', side: 'result' as const, path };
      const parts = diffUriParts(ref);
      assert.equal(parts.scheme, 'parex-diff');
      assert.ok(parts.path.endsWith(path.split('/').pop()!), 'the file keeps its name, for its language');
      assert.deepEqual(parseDiffUri(parts.path, parts.query), ref);
    }
  });
  it('a uri without its run, task or side is none of ours', () => {
    assert.equal(parseDiffUri('/x.txt', 'run=r&task=t'), undefined);
    assert.equal(parseDiffUri('/x.txt', 'run=r&task=t&side=left'), undefined);
    assert.equal(parseDiffUri('/', 'run=r&task=t&side=base'), undefined);
  });
  it('each side shows the file, nothing where it does not exist, a note where no text came', () => {
    const files = parseDiffResult(answer)!.files;
    const [modified, added, deleted, big] = files as [FileDiff, FileDiff, FileDiff, FileDiff];
    assert.equal(sideText(modified, 'base'), 'hello\n');
    assert.equal(sideText(modified, 'result'), 'hello\nreviewed\n');
    assert.equal(sideText(added, 'base'), '');
    assert.equal(sideText(deleted, 'result'), '');
    assert.match(sideText(deleted, 'base'), /binary or too large.*blob 4/);
    assert.match(sideText(big, 'result'), /binary or too large.*blob 6/);
  });
  it('finds the document of a uri in the answer', () => {
    const diff = parseDiffResult(answer)!;
    assert.equal(diffDocument(diff, { runId: 'r', taskId: 't', side: 'base', path: 'greeting.txt' }), 'hello\n');
    assert.equal(diffDocument(diff, { runId: 'r', taskId: 't', side: 'base', path: 'other.txt' }), undefined);
  });
  it('titles and descriptions', () => {
    const [modified, added] = parseDiffResult(answer)!.files as [FileDiff, FileDiff];
    assert.equal(diffTitle('edit', modified, 'main'), 'greeting.txt (main ↔ edit)');
    assert.equal(diffTitle('edit', added, ''), 'new file.py (base ↔ edit)');
    assert.equal(changedFileDescription(modified), 'modified');
    assert.equal(changedFileDescription(added), 'src · added');
  });
});
