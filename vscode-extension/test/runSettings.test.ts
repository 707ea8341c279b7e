import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withRunSettings } from '../src/runSettings';

const plan = { uri: 'file:///w/parex.toml' };

describe('withRunSettings', () => {
  it('adds the settings that are set', () => {
    assert.deepEqual(withRunSettings({ plan }, { maxConcurrency: 3, executor: 'ray', rayAddress: ' ray://head:10001 ' }), {
      plan,
      maxConcurrency: 3,
      executor: 'ray',
      rayAddress: 'ray://head:10001',
    });
    assert.deepEqual(withRunSettings({ plan }, { executor: 'local' }), { plan, executor: 'local' });
  });

  it('leaves out unset and invalid values: the plan decides', () => {
    assert.deepEqual(withRunSettings({ plan }, { maxConcurrency: null, executor: null, rayAddress: null }), { plan });
    assert.deepEqual(withRunSettings({ plan }, { maxConcurrency: 0, executor: 'kubernetes', rayAddress: '  ' }), { plan });
    assert.deepEqual(withRunSettings({ plan }, { maxConcurrency: 2.5, executor: 3, rayAddress: 7 }), { plan });
  });

  it('keeps what the request already says', () => {
    const params = { plan, maxConcurrency: 1, executor: 'local' as const, resume: 'r1' };
    assert.deepEqual(withRunSettings(params, { maxConcurrency: 4, executor: 'ray', rayAddress: 'auto' }), { ...params, rayAddress: 'auto' });
  });
});
