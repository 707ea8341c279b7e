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

describe('DocumentSync, over random editor sessions', () => {
  // A small seeded generator: the same sequences on every run, many of them.
  function* random(seed: number): Generator<number> {
    let s = seed >>> 0;
    for (;;) {
      s = (s * 1664525 + 1013904223) >>> 0;
      yield s / 2 ** 32;
    }
  }

  it('the server has a document open exactly while the editor has it open and it needs the server', () => {
    const rnd = random(20261128);
    const next = () => rnd.next().value as number;
    for (let session = 0; session < 500; session++) {
      const sync = new DocumentSync();
      const editor = new Map<string, boolean>(); // uri → needed
      const server = new Set<string>();
      for (let step = 0; step < 40; step++) {
        const uri = `file:///w/${Math.floor(next() * 3)}`;
        const needed = next() < 0.5;
        const what = editor.has(uri) ? ['change', 'save', 'close'][Math.floor(next() * 3)] : 'open';
        const ctx = `session ${session} step ${step}: ${what} ${uri} needed=${needed}`;
        let sent: string;
        if (what === 'open') {
          editor.set(uri, needed);
          sent = sync.opened(uri, needed);
          if (sent === 'forward') sent = 'open';
        } else if (what === 'change') {
          editor.set(uri, needed);
          sent = sync.changed(uri, needed);
          if (sent === 'forward') sent = 'change';
        } else if (what === 'save') {
          sent = sync.saved(uri);
          if (sent === 'forward') sent = 'save';
        } else {
          editor.delete(uri);
          sent = sync.closed(uri);
          if (sent === 'forward') sent = 'close';
        }
        // What the server receives must make sense to it.
        if (sent === 'open') assert.ok(!server.has(uri), `${ctx}: opened twice`), server.add(uri);
        else if (sent === 'change' || sent === 'save') assert.ok(server.has(uri), `${ctx}: ${sent} of a document it does not have`);
        else if (sent === 'close') assert.ok(server.delete(uri), `${ctx}: closed a document it does not have`);
        for (const u of ['file:///w/0', 'file:///w/1', 'file:///w/2']) {
          assert.equal(server.has(u), editor.get(u) === true, `${ctx}: server and editor disagree on ${u}`);
          assert.equal(sync.has(u), server.has(u), ctx);
        }
      }
    }
  });
});
