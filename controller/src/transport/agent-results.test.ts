import { describe, expect, it } from 'vitest';
import { needsConfirm, readApplyResult } from './agent-results.js';

describe('readApplyResult / needsConfirm', () => {
  const pending = { generation: 'g1', hash: 'h', site: 's', at: 1, deadline: 2 };
  it.each([
    ['changes as a list, pending', { changes: [{}, {}], pending }, { changes: 2, pending: true }, true],
    [
      'changes as a count, nothing pending',
      { changes: 0, pending: null },
      { changes: 0, pending: false },
      false,
    ],
    ['no changes but pending', { changes: [], pending }, { changes: 0, pending: true }, true],
    ['no changes, pending not said', { changes: [] }, { changes: 0, pending: undefined }, true],
    ['unknown shape', 'ok', { changes: undefined, pending: undefined }, true],
    ['null', null, { changes: undefined, pending: undefined }, true],
    [
      'extra fields are fine',
      { changes: 0, pending: false, generation: 'g1' },
      { changes: 0, pending: false },
      false,
    ],
  ])('%s', (_name, result, summary, confirm) => {
    expect(readApplyResult(result)).toEqual(summary);
    expect(needsConfirm(readApplyResult(result))).toBe(confirm);
  });
});
