import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DocumentSync, serverNeeds } from '../src/documentSync';

const doc = (fileName: string, text: string) => ({ fileName, getText: () => text });

describe('serverNeeds', () => {
  it('takes plan files by name, whatever they hold', () => {
    assert.equal(serverNeeds(doc('/w/parex.toml', '')), true);
    assert.equal(serverNeeds(doc('/w/ci.parex.toml', '[run]\n')), true);
  });
  it('takes other documents only when they have a callN: line', () => {
    assert.equal(serverNeeds(doc('/w/notes.md', '# notes\n- call1: echo one\n')), true);
    assert.equal(serverNeeds(doc('Untitled-1', 'call2: x')), true);
    assert.equal(serverNeeds(doc('/w/app.py', 'def recall1(): pass\nprint("call1: no")\n')), false);
    assert.equal(serverNeeds(doc('/w/pyproject.toml', '[project]\n')), false);
  });
});

describe('DocumentSync', () => {
  it('drops documents the server does not need, from open to close', () => {
    const s = new DocumentSync();
    assert.equal(s.opened('file:///w/a.py', false), 'drop');
    assert.equal(s.changed('file:///w/a.py', false), 'drop');
    assert.equal(s.saved('file:///w/a.py'), 'drop');
    assert.equal(s.closed('file:///w/a.py'), 'drop');
    assert.equal(s.has('file:///w/a.py'), false);
  });
  it('forwards everything of a document it opened', () => {
    const s = new DocumentSync();
    assert.equal(s.opened('file:///w/parex.toml', true), 'forward');
    assert.equal(s.changed('file:///w/parex.toml', true), 'forward');
    assert.equal(s.saved('file:///w/parex.toml'), 'forward');
    assert.equal(s.closed('file:///w/parex.toml'), 'forward');
    assert.equal(s.closed('file:///w/parex.toml'), 'drop');
  });
  it('opens a document once an edit gives it a callN: line, and closes it once the last one goes', () => {
    const s = new DocumentSync();
    const u = 'untitled:Untitled-1';
    assert.equal(s.opened(u, false), 'drop');
    assert.equal(s.changed(u, false), 'drop');
    assert.equal(s.changed(u, true), 'open');
    assert.equal(s.changed(u, true), 'forward');
    assert.equal(s.saved(u), 'forward');
    assert.equal(s.changed(u, false), 'close');
    assert.equal(s.changed(u, false), 'drop');
    assert.equal(s.closed(u), 'drop');
  });
  it('after a server restart, sends nothing for documents the old server had', () => {
    const s = new DocumentSync();
    s.opened('file:///w/parex.toml', true);
    s.reset();
    assert.equal(s.has('file:///w/parex.toml'), false);
    assert.equal(s.closed('file:///w/parex.toml'), 'drop');
  });
});
