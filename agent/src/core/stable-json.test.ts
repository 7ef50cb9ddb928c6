import { describe, expect, it } from 'vitest';
import { stableJson } from './canonicalize-state.js';

/** The definition stableJson must match: JSON.stringify with every object's keys sorted. */
function reference(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) out[key] = (v as Record<string, unknown>)[key];
    return out;
  });
}

describe('stableJson', () => {
  it.each([
    ['a kernel rule', { table: 101, priority: 1000, uidrange: { start: 5, end: 9 }, from: '10.0.0.0/8' }],
    ['nested arrays and objects', { b: [1, { z: 1, a: [null, 'x'] }], a: { y: true, x: false } }],
    [
      'undefined, functions and symbols',
      { a: undefined, b: () => 1, c: Symbol('s'), d: [undefined, () => 1] },
    ],
    ['numbers JSON cannot hold', [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 0.1]],
    ['keys that need escaping', { 'é"\n': 'q"\\', '': 0, '10': 1, '9': 2 }],
    // biome-ignore lint/style/noRestrictedGlobals: a Date is the toJSON object JSON.stringify meets most
    ['toJSON, at the top and nested', { when: new Date(0), nested: { toJSON: () => ({ b: 1, a: 2 }) } }],
    ['an empty object and array', { o: {}, a: [] }],
    ['a plain string', 'text'],
    ['null', null],
  ])('%s', (_name, value) => {
    expect(stableJson(value)).toBe(reference(value));
  });

  it('gives equal strings for objects that differ only in key order', () => {
    expect(stableJson({ a: 1, b: { c: 2, d: 3 } })).toBe(stableJson({ b: { d: 3, c: 2 }, a: 1 }));
  });
});
