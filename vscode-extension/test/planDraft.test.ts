import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { draftPlanPath, parsePlanDraft, planDraftMessage, requestFiles, shiftProblems } from '../src/planDraft';

describe('draftPlanPath', () => {
  it('is plan.parex.toml at the root, or the next free plan-N.parex.toml', () => {
    assert.equal(draftPlanPath('/w', () => false), '/w/plan.parex.toml');
    const taken = new Set(['/w/plan.parex.toml', '/w/plan-2.parex.toml']);
    assert.equal(draftPlanPath('/w/', (f) => taken.has(f)), '/w/plan-3.parex.toml');
    assert.equal(draftPlanPath('C:\\w', () => false, '\\'), 'C:\\w\\plan.parex.toml');
  });
});

describe('requestFiles', () => {
  it("sends the active editor's file when it is in the workspace, with forward slashes", () => {
    assert.deepEqual(requestFiles('/w', '/w/api/app.py'), ['api/app.py']);
    assert.deepEqual(requestFiles('C:\\w', 'C:\\w\\api\\app.py', '\\'), ['api/app.py']);
    assert.deepEqual(requestFiles('/w', '/elsewhere/app.py'), []);
    assert.deepEqual(requestFiles('/w', '/web/app.py'), []);
    assert.deepEqual(requestFiles('/w', undefined), []);
  });
});

describe('parsePlanDraft', () => {
  it('reads the answer, problems with their ranges', () => {
    const draft = parsePlanDraft({
      text: '[[task]]\nid = "a"\n',
      valid: false,
      rounds: 3,
      problems: [
        { range: { start: { line: 4, character: 0 }, end: { line: 4, character: 17 } }, severity: 1, code: 'unknown-agent', source: 'parex', message: 'unknown agent `wizard`' },
        { message: 'no range', severity: 9 },
        { range: 'bad' },
      ],
    });
    assert.deepEqual(draft, {
      text: '[[task]]\nid = "a"\n',
      valid: false,
      rounds: 3,
      problems: [
        { range: { start: { line: 4, character: 0 }, end: { line: 4, character: 17 } }, severity: 1, code: 'unknown-agent', message: 'unknown agent `wizard`' },
        { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, severity: 1, message: 'no range' },
      ],
    });
    assert.equal(planDraftMessage(draft, 'plan.parex.toml'), 'parex: drafted plan.parex.toml in 3 rounds; 2 problems left (in the Problems panel) to fix before it runs.');
  });

  it('says a valid draft validates', () => {
    const draft = parsePlanDraft({ text: 'x', valid: true, rounds: 1, problems: [] });
    assert.equal(planDraftMessage(draft, 'plan.parex.toml'), 'parex: drafted plan.parex.toml in 1 round; it validates. Edit it, save it, then Run Parallel Tasks.');
  });

  it('refuses an answer without text', () => {
    assert.throws(() => parsePlanDraft({ valid: true }), /unexpected answer to parex\/plan: \{"valid":true\}/);
    assert.throws(() => parsePlanDraft(null), /unexpected answer to parex\/plan: null/);
  });
});

describe('shiftProblems', () => {
  const at = (line: number, from: number, to: number) => ({ range: { start: { line, character: from }, end: { line, character: to } }, message: `L${line}` });
  const edit = (sl: number, sc: number, el: number, ec: number, text: string) => ({ range: { start: { line: sl, character: sc }, end: { line: el, character: ec } }, text });
  const problems = [at(2, 0, 10), at(5, 4, 12), at(8, 0, 3)];
  const ranges = (ps: { range: unknown }[]) => ps.map((p) => p.range);

  it('moves the problems below a new line, keeps those above', () => {
    assert.deepEqual(ranges(shiftProblems(problems, [edit(4, 0, 4, 0, '# a comment\n')])), ranges([at(2, 0, 10), at(6, 4, 12), at(9, 0, 3)]));
    // A new line typed right at the start of a problem's line pushes it down.
    assert.deepEqual(shiftProblems(problems, [edit(5, 0, 5, 0, '\n')]).map((p) => p.message), ['L2', 'L5', 'L8']);
    assert.deepEqual(shiftProblems(problems, [edit(5, 0, 5, 0, '\n')])[1], { ...at(6, 4, 12), message: 'L5' });
  });

  it('moves a problem along its line when text is typed before it, and up when lines are removed', () => {
    assert.deepEqual(ranges(shiftProblems([at(5, 4, 12)], [edit(5, 0, 5, 0, 'xx')])), ranges([at(5, 6, 14)]));
    assert.deepEqual(ranges(shiftProblems(problems, [edit(3, 0, 5, 0, '')])), ranges([at(2, 0, 10), at(3, 4, 12), at(6, 0, 3)]));
  });

  it('drops the problem an edit touches, and keeps one the edit only follows', () => {
    assert.deepEqual(shiftProblems(problems, [edit(5, 6, 5, 8, 'shell')]).map((p) => p.message), ['L2', 'L8']);
    assert.deepEqual(shiftProblems(problems, [edit(2, 10, 2, 10, ' # ok')]), problems);
  });

  it('applies the changes of one event in order', () => {
    assert.deepEqual(ranges(shiftProblems(problems, [edit(9, 0, 9, 0, 'x\n'), edit(0, 0, 0, 0, 'y\n')])), ranges([at(3, 0, 10), at(6, 4, 12), at(9, 0, 3)]));
  });
});
