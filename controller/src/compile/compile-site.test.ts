import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { contentHash, receivedDesiredState } from '#agent/model';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { loadFleet } from '../spec/load-fleet.js';
import { compileSite } from './compile-site.js';

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
    expect(one.size).toBe([...files.keys()].filter((f) => f.startsWith('sites/')).length);
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
      const parsed = receivedDesiredState.safeParse(state);
      expect(parsed.error?.issues ?? [], site.name).toEqual([]);
    }
  });
});
