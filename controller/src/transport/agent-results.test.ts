import { describe, expect, it } from 'vitest';
import {
  needsConfirm,
  parseApplyResult,
  parseConfirmResult,
  parseHelloResult,
  parseStatusResult,
  readApplyResult,
} from './agent-results.js';
import { ProtocolError } from './transport-errors.js';

const info = { generation: 'g1', hash: 'h', site: 's', at: 1 };
const pending = { ...info, deadline: 2 };
const change = { action: 'create', kind: 'rule', key: '1000' } as const;
const apply = (over: Record<string, unknown>) => ({
  generation: 'g1',
  changes: [],
  steps: 0,
  unavailable: [],
  pending: null,
  applied: null,
  managementPath: null,
  ...over,
});

describe('readApplyResult / needsConfirm', () => {
  it.each([
    ['changes, pending', apply({ changes: [change, change], steps: 2, pending }), 2, true, true],
    ['nothing changed, applied at once', apply({ applied: info }), 0, false, false],
    ['no changes but pending', apply({ pending }), 0, true, true],
  ])('%s', (_name, result, changes, isPending, confirm) => {
    expect(readApplyResult(result)).toEqual({ changes, pending: isPending });
    expect(needsConfirm(readApplyResult(result))).toBe(confirm);
  });

  it.each([
    ['a string', 'ok'],
    ['null', null],
    ['changes as a count (not the protocol)', apply({ changes: 0 })],
    ['pending missing', (({ pending: _, ...rest }) => rest)(apply({}))],
    ['pending false', apply({ pending: false })],
    ['a change of unknown kind', apply({ changes: [{ action: 'create', kind: 'link', key: 'x' }] })],
  ])('refuses %s as a protocol error instead of guessing', (_name, result) => {
    expect(() => readApplyResult(result, 'branch-1')).toThrow(ProtocolError);
    expect(() => readApplyResult(result, 'branch-1')).toThrow(
      /^branch-1: apply: the agent's result is not valid protocol \(/,
    );
  });
});

describe('results from a newer agent (D91)', () => {
  it('ignore fields this controller does not know, at any level', () => {
    const pending = { ...info, deadline: 5 };
    const newer = apply({
      confirmed: true,
      pending: { ...pending, extra: [1] },
      changes: [{ action: 'create', kind: 'rule', key: 'k', why: 'x' }],
    });
    expect(parseApplyResult(newer)).toEqual(
      parseApplyResult(apply({ pending, changes: [{ action: 'create', kind: 'rule', key: 'k' }] })),
    );
    expect(readApplyResult(newer, 'branch-1')).toEqual({ changes: 1, pending: true });
  });
});

describe('parse*Result', () => {
  it('accepts schema-valid hello, confirm and status results', () => {
    expect(parseHelloResult({ protocol: 1, supported: [1], agent: 'a', site: null })).toMatchObject({
      protocol: 1,
    });
    expect(parseConfirmResult({ generation: 'g1', applied: info, alreadyConfirmed: false })).toMatchObject({
      alreadyConfirmed: false,
    });
    const status = {
      agent: 'a',
      protocol: 1,
      site: 's',
      applied: info,
      pending: null,
      lastRevert: null,
      owned: { rules: 1, routes: 1, nftRules: null, sysctls: 0 },
      facts: { interfaces: 2, providers: [] },
      health: [],
      drift: null,
      now: 3,
    };
    expect(parseStatusResult(status)).toEqual(status);
  });

  it('names the method and the first mismatches', () => {
    expect(() => parseHelloResult({ agent: 'fake', protocol: 1, site: 'fake' }, 's1')).toThrow(
      "s1: hello: the agent's result is not valid protocol (supported: Invalid input: expected array, received undefined)",
    );
    expect(() => parseConfirmResult({ generation: 'g1', confirmed: true })).toThrow(ProtocolError);
    expect(() => parseStatusResult({})).toThrow(/; and \d+ more\)$/);
  });
});
