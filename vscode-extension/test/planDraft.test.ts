import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { draftPlanPath, parsePlanDraft, planDraftMessage, requestFiles } from '../src/planDraft';

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
