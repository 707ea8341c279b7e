import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { callPlanRange, choosePlan, findCallLines, hasCallLine, isPlanFileName, splitLines } from '../src/planDetect';

/** The callN: grammar's cases, shared with the server and the Neovim plugin. */
const TABLE = path.resolve(__dirname, '../../../tests/cases/call_lines.json');
const table = JSON.parse(fs.readFileSync(TABLE, 'utf8')) as {
  cases: { name: string; lines: string[]; calls: { id: string; line: number; prompt: string }[] }[];
};

const doc = [
  '# notes', //            0
  'call1: write unit tests for parser.py', // 1
  '  more about call1', // 2
  '', // 3
  '// call2: add type hints to cli.py', // 4
  '- call3: update the README', // 5
  'trailing text', // 6
];

describe('isPlanFileName', () => {
  it('takes parex.toml and *.parex.toml in any folder', () => {
    assert.equal(isPlanFileName('/w/parex.toml'), true);
    assert.equal(isPlanFileName('/w/sub/nightly.parex.toml'), true);
    assert.equal(isPlanFileName('C:\\w\\parex.toml'), true);
    assert.equal(isPlanFileName('.parex.toml'), true);
  });
  it('refuses other toml files and near misses', () => {
    assert.equal(isPlanFileName('/w/pyproject.toml'), false);
    assert.equal(isPlanFileName('/w/parex.toml.bak'), false);
    assert.equal(isPlanFileName('/w/myparex.toml'), false);
    assert.equal(isPlanFileName('/w/parex.toml/notes.md'), false);
  });
});

describe('findCallLines', () => {
  it('finds callN: lines, also behind comment markers and bullets', () => {
    assert.deepEqual(findCallLines(doc), [
      { line: 1, id: 'call1' },
      { line: 4, id: 'call2' },
      { line: 5, id: 'call3' },
    ]);
  });
  it('ignores callN without a colon, other words and mid-line calls', () => {
    assert.deepEqual(findCallLines(['call1 no colon', 'recall2: x', 'see call3: x', 'callx: y', 'Call4: z']), []);
  });
  it('limits itself to the given lines', () => {
    assert.deepEqual(findCallLines(doc, 2, 4), [{ line: 4, id: 'call2' }]);
  });
});

describe('the shared table tests/cases/call_lines.json', () => {
  it('has cases', () => assert.ok(table.cases.length >= 5, `${TABLE}: ${table.cases.length} cases`));
  for (const c of table.cases) {
    it(`finds the ids and lines of: ${c.name}`, () => {
      const expected = c.calls.map(({ id, line }) => ({ id, line }));
      assert.deepEqual(findCallLines(c.lines), expected);
      for (const eol of ['\n', '\r\n', '\r']) {
        assert.equal(hasCallLine(c.lines.join(eol)), expected.length > 0, JSON.stringify(eol));
        assert.deepEqual(findCallLines(splitLines(c.lines.join(eol))), expected);
      }
    });
  }
});

describe('hasCallLine', () => {
  it('never lets whitespace run across a line end', () => {
    assert.equal(hasCallLine('call1\n: not a call'), false);
    assert.equal(hasCallLine('#\n\ncall 1: no'), false);
    assert.equal(hasCallLine('intro\n  - call7 : yes'), true);
    assert.equal(hasCallLine(''), false);
  });
});

describe('callPlanRange', () => {
  it('without a selection covers the whole document, ending at the end of the last line', () => {
    assert.deepEqual(callPlanRange(doc), { start: { line: 0, character: 0 }, end: { line: 6, character: 13 } });
  });
  it('treats an empty selection as none', () => {
    const caret = { start: { line: 2, character: 3 }, end: { line: 2, character: 3 } };
    assert.deepEqual(callPlanRange(doc, caret), callPlanRange(doc));
  });
  it('widens a selection to whole lines', () => {
    const sel = { start: { line: 4, character: 5 }, end: { line: 5, character: 3 } };
    assert.deepEqual(callPlanRange(doc, sel), { start: { line: 4, character: 0 }, end: { line: 5, character: 26 } });
  });
  it('does not take the line where a selection ends at column 0', () => {
    const sel = { start: { line: 1, character: 0 }, end: { line: 4, character: 0 } };
    assert.deepEqual(callPlanRange(doc, sel), { start: { line: 1, character: 0 }, end: { line: 3, character: 0 } });
  });
  it('accepts a backwards selection', () => {
    const sel = { start: { line: 5, character: 2 }, end: { line: 4, character: 1 } };
    assert.deepEqual(callPlanRange(doc, sel), { start: { line: 4, character: 0 }, end: { line: 5, character: 26 } });
  });
  it('is undefined when the selection holds no callN: line', () => {
    assert.equal(callPlanRange(doc, { start: { line: 2, character: 0 }, end: { line: 3, character: 0 } }), undefined);
    assert.equal(callPlanRange(['just text']), undefined);
    assert.equal(callPlanRange([]), undefined);
  });
  it('clamps a selection past the end of the document', () => {
    const sel = { start: { line: 5, character: 0 }, end: { line: 99, character: 4 } };
    assert.deepEqual(callPlanRange(doc, sel), { start: { line: 5, character: 0 }, end: { line: 6, character: 13 } });
  });
});

describe('choosePlan', () => {
  it('runs the active plan file itself', () => {
    assert.deepEqual(choosePlan({ uri: 'file:///w/parex.toml', fileName: '/w/parex.toml', text: 'call1: x' }), {
      kind: 'file',
      uri: 'file:///w/parex.toml',
    });
  });
  it('runs the callN: lines of the selection of another document', () => {
    const text = doc.join('\r\n');
    const choice = choosePlan({
      uri: 'file:///w/notes.md',
      fileName: '/w/notes.md',
      text,
      selection: { start: { line: 4, character: 0 }, end: { line: 5, character: 1 } },
    });
    assert.deepEqual(choice, {
      kind: 'calls',
      uri: 'file:///w/notes.md',
      range: { start: { line: 4, character: 0 }, end: { line: 5, character: 26 } },
      taskIds: ['call2', 'call3'],
    });
  });
  it('asks for a plan file when there is no editor or no callN: line', () => {
    assert.deepEqual(choosePlan(undefined), { kind: 'pick' });
    assert.deepEqual(choosePlan({ uri: 'file:///w/a.py', fileName: '/w/a.py', text: 'print(1)\n' }), { kind: 'pick' });
  });
});

describe('splitLines', () => {
  it('splits on every kind of line end', () => {
    assert.deepEqual(splitLines('a\r\nb\nc\rd'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(splitLines('a\n'), ['a', '']);
  });
});
