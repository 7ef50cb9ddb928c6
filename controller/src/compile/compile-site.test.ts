import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { desiredState } from '#agent/model';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { loadFleet } from '../spec/load-fleet.js';
import { canonicalJson, compileSite, contentHash } from './compile-site.js';

const EXAMPLE = join(import.meta.dirname, '../../../fleet-repo-example');

let files: Map<string, string>;
beforeAll(async () => {
  files = await readFleetFiles(EXAMPLE);
});

function compileAll(input: ReadonlyMap<string, string>): Map<string, string> {
  const result = loadFleet(input);
  expect(result.fleet).toBeDefined();
  return new Map(result.fleet!.sites.map((s) => [s.name, JSON.stringify(compileSite(s))]));
}

describe('compileSite determinism', () => {
  it('compiles the same fleet twice to byte-identical JSON', () => {
    const one = compileAll(files);
    const two = compileAll(files);
    expect(one.size).toBe(5);
    expect([...two]).toEqual([...one]);
  });

  it('does not depend on the order the files are given in', () => {
    const reversed = new Map([...files].reverse());
    expect([...reversed.keys()]).not.toEqual([...files.keys()]);
    expect([...compileAll(reversed)].sort()).toEqual([...compileAll(files)].sort());
  });

  it('hashes the canonical JSON of everything but the hash', () => {
    for (const site of loadFleet(files).fleet!.sites) {
      const { hash, ...body } = compileSite(site);
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
      expect(contentHash(body)).toBe(hash);
    }
  });

  it('changes the hash when one policy changes, and only for that site', () => {
    const before = loadFleet(files).fleet!.sites.map((s) => compileSite(s));
    const edited = new Map(files);
    const text = edited.get('sites/branch-adsl-vpn.yaml')!;
    expect(text).toContain('dport: 25');
    edited.set('sites/branch-adsl-vpn.yaml', text.replace('dport: 25', 'dport: 587'));
    const after = loadFleet(edited).fleet!.sites.map((s) => compileSite(s));
    const changed = after.filter((s, i) => s.hash !== before[i]!.hash).map((s) => s.site);
    expect(changed).toEqual(['branch-adsl-vpn']);
  });

  it('produces states the agent accepts', () => {
    for (const site of loadFleet(files).fleet!.sites) {
      const state = compileSite(site);
      const parsed = desiredState.safeParse(state);
      expect(parsed.error?.issues ?? [], site.name).toEqual([]);
    }
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });
});

describe('canonicalJson matches JSON.stringify with sorted keys', () => {
  const reference = (value: unknown): string =>
    JSON.stringify(value, (_k, v: unknown) =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
    );
  it.each([
    ['scalars', [null, 0, -1.5, 'a"\\\n\u2028', true, false]],
    ['undefined is dropped from objects and null in arrays', { a: undefined, b: [undefined, 1], c: 2 }],
    ['unicode and case', { é: 1, B: 4, a: 5, '': 6, 'a.b': 7, a_b: 8 }],
    ['nested', { z: { y: [{ b: 1, a: [] }, {}] }, a: 'x' }],
  ])('%s', (_name, value) => {
    expect(canonicalJson(value)).toBe(reference(value));
  });

  it('sorts integer-like keys as strings too (JS objects would put them first, numerically)', () => {
    expect(canonicalJson({ b: 1, '10': 2, '9': 3 })).toBe('{"10":2,"9":3,"b":1}');
  });
});
