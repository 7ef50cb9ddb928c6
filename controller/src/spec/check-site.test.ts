/** Normalisation: how a checked site gets its tables, marks and rule priorities. */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from './diagnostic.js';
import { loadFleet } from './load-fleet.js';
import type { ValidSite } from './valid-site.js';

const HEAD = `name: s1
management:
  address: 192.0.2.10
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB
`;

function provider(name: string, extra = ''): string {
  return `  - name: ${name}\n    interface: if-${name}\n    gateway: detect\n${extra}`;
}

function load(body: string, fleet = 'rollout:\n  waves:\n    - name: all\n'): ValidSite {
  const r = loadFleet(
    new Map([
      ['fleet.yaml', fleet],
      ['sites/s1.yaml', HEAD + body],
    ]),
  );
  expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return r.validSites[0]!;
}

describe('checkSite normalisation', () => {
  it('assigns tables from the fleet range in provider order, skipping explicit and reserved ids', () => {
    const site = load(
      `providers:\n${provider('a', '    balance: 1\n')}${provider('b', '    table: 100\n')}${provider('c')}`,
    );
    expect(site.providers.map((p) => [p.name, p.table])).toEqual([
      ['a', 101],
      ['b', 100],
      ['c', 102],
    ]);
  });

  it('skips the balance table when assigning', () => {
    const site = load(
      `providers:\n${provider('a', '    balance: 1\n')}${provider('b')}${provider('c')}`,
      'defaults:\n  tables: [199, 252]\nrollout:\n  waves:\n    - name: all\n',
    );
    // 200 is the balance table.
    expect(site.providers.map((p) => p.table)).toEqual([199, 201, 202]);
  });

  it('assigns marks under the mask in provider order, skipping explicit ones', () => {
    const site = load(
      `providers:\n${provider('a', '    balance: 1\n')}${provider('b', '    mark: 0x100\n')}${provider('c')}`,
    );
    expect(site.providers.map((p) => [p.name, p.mark])).toEqual([
      ['a', 0x200],
      ['b', 0x100],
      ['c', 0x300],
    ]);
  });

  it('shifts marks to the lowest bit of a custom mask', () => {
    const site = load(
      `settings:\n  markMask: 0x30000\nproviders:\n${provider('a', '    balance: 1\n')}${provider('b')}${provider('c')}`,
    );
    expect(site.providers.map((p) => p.mark)).toEqual([0x10000, 0x20000, 0x30000]);
  });

  it('reports when the mask has no room for another mark', () => {
    const r = loadFleet(
      new Map([
        ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
        [
          'sites/s1.yaml',
          `${HEAD}settings:\n  markMask: 0x3\nproviders:\n${provider('a', '    balance: 1\n')}${provider('b')}${provider('c')}${provider('d')}`,
        ],
      ]),
    );
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'sites/s1.yaml:18:5: error: providers d: no free mark left under mask 0x3; widen settings.markMask or set mark: explicitly',
    ]);
  });

  it('gives the same tables and marks on every run', () => {
    const body = `providers:\n${provider('z', '    balance: 1\n')}${provider('m')}${provider('a')}`;
    const one = load(body);
    const two = load(body);
    expect(two.providers).toEqual(one.providers);
  });

  it('lays out policies on a stride of 10 so editing one rarely renumbers the next', () => {
    const site = load(
      `providers:\n${provider('a', '    balance: 1\n')}${provider('b')}policies:
  - name: two
    to: 203.0.113.0/24
    via: [a, b]
  - name: explicit
    to: 203.0.113.128/25
    via: [b]
    priority: 15000
  - name: after
    proto: tcp
    dport: [25, 587]
    via: [a]
  - name: twelve
    to: [198.51.100.0/28, 198.51.100.16/28, 198.51.100.32/28]
    proto: udp
    dport: [53, 123]
    via: [a, b]
`,
    );
    expect(site.policies.map((p) => [p.name, p.priority, p.ruleCount])).toEqual([
      ['two', 10000, 2],
      ['explicit', 15000, 1],
      ['after', 15010, 2],
      ['twelve', 15020, 12],
    ]);
  });

  it('refuses a table range that includes 253–255', () => {
    const r = loadFleet(
      new Map([
        ['fleet.yaml', 'defaults:\n  tables: [199, 1000]\nrollout:\n  waves:\n    - name: all\n'],
        ['sites/s1.yaml', `${HEAD}providers:\n${provider('a', '    balance: 1\n')}`],
      ]),
    );
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'fleet.yaml:2:11: error: defaults.tables: 199–1000 must be an ascending range that avoids 253–255 (default, main, local)',
    ]);
  });

  it('numbers fallback: true in provider order, after explicit orders are kept', () => {
    const site = load(
      `providers:\n${provider('a', '    balance: 1\n')}${provider('b', '    fallback: true\n')}${provider('c', '    fallback: true\n')}`,
    );
    expect(site.providers.map((p) => p.fallback)).toEqual([null, 1, 2]);
  });

  it('traffic: forwarded becomes one rule per LAN interface; local becomes iif lo', () => {
    const site = load(
      `lan:\n  - interface: lan0\n  - interface: lan1\nproviders:\n${provider('a', '    balance: 1\n')}policies:
  - name: fwd
    traffic: forwarded
    via: [a]
  - name: own
    traffic: local
    via: [a]
`,
    );
    expect(site.policies.map((p) => [p.name, p.iif, p.ruleCount])).toEqual([
      ['fwd', ['lan0', 'lan1'], 2],
      ['own', ['lo'], 1],
    ]);
  });
});
