import { describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, desiredStateHash } from './content-hash.js';

/** The definition canonicalJson must match: JSON.stringify with every object's keys sorted by code unit. */
function sortedStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return sortedStringify((value as { toJSON: () => unknown }).toJSON());
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined || typeof v === 'function' || typeof v === 'symbol' ? 'null' : sortedStringify(v))).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .map((k) => [k, (value as Record<string, unknown>)[k]] as const)
    .filter(([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol');
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedStringify(v)}`).join(',')}}`;
}

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it.each([
    ['scalars', [null, 0, -1.5, 'a"\\\n\u2028', true, false]],
    ['undefined is dropped from objects and null in arrays', { a: undefined, b: [undefined, 1], c: 2 }],
    ['unicode and case', { é: 1, B: 4, a: 5, '': 6, 'a.b': 7, a_b: 8 }],
    ['nested', { z: { y: [{ b: 1, a: [] }, {}] }, a: 'x' }],
    ['a kernel rule', { table: 101, priority: 1000, uidrange: { start: 5, end: 9 }, from: '10.0.0.0/8' }],
    ['functions and symbols', { a: () => 1, c: Symbol('s'), d: [() => 1] }],
    ['numbers JSON cannot hold', [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 0.1]],
    ['keys that need escaping', { 'é"\n': 'q"\\', '': 0, x: 1 }],
    // biome-ignore lint/style/noRestrictedGlobals: a Date is the toJSON object JSON.stringify meets most
    ['toJSON, at the top and nested', { when: new Date(0), nested: { toJSON: () => ({ b: 1, a: 2 }) } }],
    ['an empty object and array', { o: {}, a: [] }],
    ['a plain string', 'text'],
  ])('%s is JSON.stringify with sorted keys', (_name, value) => {
    expect(canonicalJson(value)).toBe(sortedStringify(value));
  });

  it('sorts integer-like keys as strings too (JS objects would put them first, numerically)', () => {
    expect(canonicalJson({ b: 1, '10': 2, '9': 3 })).toBe('{"10":2,"9":3,"b":1}');
  });

  it('reuses a key order only for the same keys (a key holding the separator, many shapes)', () => {
    // Both key lists join to the same "a\0b\0c"; each must still be written as its own keys.
    const one = { 'a\u0000b': 1, c: 2 };
    const two = { a: 1, 'b\u0000c': 2 };
    const three = { a: 1, b: 2, c: 3 };
    for (const value of [one, two, three, two, one, three])
      expect(canonicalJson(value)).toBe(sortedStringify(value));
    // More shapes than are remembered, then the first again.
    const shapes = Array.from({ length: 5000 }, (_, i) => ({ [`k${i}`]: i, a: i, [`j${i % 7}`]: 'x' }));
    for (const value of [...shapes, ...shapes.slice(0, 10)])
      expect(canonicalJson(value)).toBe(sortedStringify(value));
  });

  it('gives equal strings for objects that differ only in key order', () => {
    expect(canonicalJson({ a: 1, b: { c: 2, d: 3 } })).toBe(canonicalJson({ b: { d: 3, c: 2 }, a: 1 }));
  });
});

describe('desiredStateHash', () => {
  it('is the sha256 of the canonical JSON of every field but hash, whatever hash holds', () => {
    const body = { version: 1, site: 's', rules: [{ b: 2, a: 1 }] };
    expect(desiredStateHash({ ...body, hash: 'x' })).toBe(contentHash(body));
    expect(desiredStateHash({ ...body, hash: 'y' })).toBe(desiredStateHash(body));
    expect(contentHash(body)).toMatch(/^[0-9a-f]{64}$/);
  });
});
