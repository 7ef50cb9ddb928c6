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

describe('policy rules', () => {
  it('write every selector, in the order the desired JSON has always shown them', () => {
    const site = loadFleet(files).fleet!.sites.find((s) => s.providers.length > 0)!;
    const provider = site.providers[0]!;
    const policy = {
      name: 'every-selector',
      from: ['192.0.2.0/24'],
      to: ['198.51.100.0/24'],
      iif: ['lan0'],
      uid: { start: 1000, end: 1999 },
      proto: 'tcp' as const,
      dport: [{ start: 443, end: 443 }],
      sport: [{ start: 1024, end: 65535 }],
      tos: 16,
      mark: { value: 0x10, mask: 0xff },
      via: [provider.name],
      action: 'route' as const,
      priority: 10_000,
      ruleCount: 1,
    };
    const state = compileSite({ ...site, policies: [policy] });
    const rule = state.rules.find((r) => r.id.startsWith('policy:every-selector'))!;
    expect(JSON.stringify(rule)).toBe(
      JSON.stringify({
        id: `policy:every-selector:${provider.name}#0`,
        priority: 10_000,
        action: 'lookup',
        table: provider.table,
        requires: provider.name,
        from: { kind: 'literal', cidr: '192.0.2.0/24' },
        to: { kind: 'literal', cidr: '198.51.100.0/24' },
        iif: 'lan0',
        fwmark: 0x10,
        fwmask: 0xff,
        uidrange: { start: 1000, end: 1999 },
        ipproto: 'tcp',
        sport: { start: 1024, end: 65535 },
        dport: { start: 443, end: 443 },
        tos: 16,
      }),
    );
    const blackhole = compileSite({ ...site, policies: [{ ...policy, action: 'blackhole', via: [] }] });
    expect(Object.keys(blackhole.rules.find((r) => r.id === 'policy:every-selector#0')!)).toEqual([
      'id',
      'priority',
      'action',
      'from',
      'to',
      'iif',
      'fwmark',
      'fwmask',
      'uidrange',
      'ipproto',
      'sport',
      'dport',
      'tos',
    ]);
  });
});
