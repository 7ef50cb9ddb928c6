import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from './diagnostic.js';
import { type LoadedGroup, type MergedSite, mergeSite } from './merge-groups.js';
import { parseYamlFile } from './parse-yaml-file.js';
import { validateWithSchema } from './schema-diagnostics.js';
import { type GroupSpec, groupSpec, type SiteSpec, siteSpec } from './spec-schema.js';

const SITE_HEAD = `name: s1
management:
  address: 192.0.2.10
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB
`;

function parse<T>(file: string, text: string, schema: typeof siteSpec | typeof groupSpec) {
  const { parsed, diagnostics } = parseYamlFile(file, text);
  expect(diagnostics).toEqual([]);
  const r = validateWithSchema(parsed, schema);
  expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
  return { spec: r.value as T, parsed };
}

function merge(
  siteBody: string,
  groups: Record<string, string> = {},
): { merged: MergedSite; diagnostics: string[] } {
  const loaded = new Map<string, LoadedGroup>();
  for (const [name, text] of Object.entries(groups)) {
    loaded.set(name, parse<GroupSpec>(`groups/${name}.yaml`, text, groupSpec));
  }
  const site = parse<SiteSpec>('sites/s1.yaml', SITE_HEAD + siteBody, siteSpec);
  const r = mergeSite(site, loaded);
  return { merged: r.merged, diagnostics: r.diagnostics.map(formatDiagnostic) };
}

const WAN = `name: wan
labels: { tier: branch, region: eu }
settings: { drift: report, markMask: 0xff00 }
sysctls:
  net.ipv4.conf.all.rp_filter: 2
  net.ipv4.tcp_mtu_probing: 1
providers:
  - name: isp1
    interface: wan1
    gateway: detect
    balance: 1
    health:
      targets: [203.0.113.1]
      interval: 1s
  - name: isp2
    interface: wan2
    gateway: detect
    balance: 1
policies:
  - name: mail
    proto: tcp
    dport: 25
    via: [isp1]
`;

describe('mergeSite', () => {
  it('merges maps key by key, the site winning', () => {
    const { merged, diagnostics } = merge(
      'extends: [wan]\nlabels: { region: us }\nsettings: { drift: heal }\nsysctls:\n  net.ipv4.tcp_mtu_probing: 0\n',
      { wan: WAN },
    );
    expect(diagnostics).toEqual([]);
    expect(merged.labels).toEqual({ tier: 'branch', region: 'us' });
    expect(merged.settings.value).toEqual({ drift: 'heal', markMask: 0xff00 });
    expect(merged.sysctls.value).toEqual({
      'net.ipv4.conf.all.rp_filter': 2,
      'net.ipv4.tcp_mtu_probing': 0,
    });
    expect(merged.sysctls.fields['net.ipv4.conf.all.rp_filter']!.parsed.file).toBe('groups/wan.yaml');
    expect(merged.sysctls.fields['net.ipv4.tcp_mtu_probing']!.parsed.file).toBe('sites/s1.yaml');
    expect(merged.settings.fields.drift!.parsed.file).toBe('sites/s1.yaml');
  });

  it('merges list items by name field by field, remembering where each field was set', () => {
    const { merged } = merge(
      'extends: [wan]\nproviders:\n  - name: isp1\n    address: 198.51.100.2/30\n    gateway: 198.51.100.1\n',
      { wan: WAN },
    );
    const isp1 = merged.providers.find((p) => p.value.name === 'isp1')!;
    expect(isp1.value).toEqual({
      name: 'isp1',
      interface: 'wan1',
      address: '198.51.100.2/30',
      gateway: '198.51.100.1',
      balance: 1,
      health: { targets: ['203.0.113.1'], interval: '1s' },
    });
    expect(isp1.fields.interface!.parsed.file).toBe('groups/wan.yaml');
    expect(isp1.fields.gateway!.parsed.file).toBe('sites/s1.yaml');
    expect(isp1.fields.gateway!.path).toEqual(['providers', 0, 'gateway']);
    expect(isp1.origin.parsed.file).toBe('sites/s1.yaml');
  });

  it('merges health key by key', () => {
    const { merged } = merge('extends: [wan]\nproviders:\n  - name: isp1\n    health: { timeout: 300ms }\n', {
      wan: WAN,
    });
    expect(merged.providers[0]!.value.health).toEqual({
      targets: ['203.0.113.1'],
      interval: '1s',
      timeout: '300ms',
    });
  });

  it('replaces plain lists (health targets, via) rather than concatenating them', () => {
    const { merged } = merge(
      'extends: [wan]\nproviders:\n  - name: isp1\n    health: { targets: [203.0.113.9] }\npolicies:\n  - name: mail\n    via: [isp2, isp1]\n',
      { wan: WAN },
    );
    expect(merged.providers[0]!.value.health?.targets).toEqual(['203.0.113.9']);
    expect(merged.policies[0]!.value.via).toEqual(['isp2', 'isp1']);
  });

  it('keeps inherited order; overriding does not move an item; new items append', () => {
    const { merged } = merge(
      'extends: [wan]\nproviders:\n  - name: vpn\n    interface: tun0\n    gateway: point-to-point\n  - name: isp1\n    balance: 3\n',
      { wan: WAN },
    );
    expect(merged.providers.map((p) => p.value.name)).toEqual(['isp1', 'isp2', 'vpn']);
    expect(merged.providers[0]!.value.balance).toBe(3);
  });

  it('remove: true deletes an inherited item', () => {
    const { merged, diagnostics } = merge(
      'extends: [wan]\nproviders:\n  - name: isp2\n    remove: true\npolicies:\n  - name: mail\n    remove: true\n',
      { wan: WAN },
    );
    expect(diagnostics).toEqual([]);
    expect(merged.providers.map((p) => p.value.name)).toEqual(['isp1']);
    expect(merged.policies).toEqual([]);
  });

  it('remove: true with nothing inherited is a warning at the remove key', () => {
    const { diagnostics } = merge('providers:\n  - name: isp9\n    remove: true\n');
    expect(diagnostics).toEqual([
      'sites/s1.yaml:7:13: warning: providers isp9: remove: true has nothing to remove; no inherited item has that name',
    ]);
  });

  it('field: null removes an inherited value and records the site as its origin', () => {
    const { merged } = merge(
      'extends: [wan]\nproviders:\n  - name: isp2\n    balance: null\n    fallback: true\n',
      {
        wan: WAN,
      },
    );
    const isp2 = merged.providers[1]!;
    expect(isp2.value).not.toHaveProperty('balance');
    expect(isp2.value.fallback).toBe(true);
    expect(isp2.fields.balance!.parsed.file).toBe('sites/s1.yaml');
  });

  it('applies extends in order: a later group overrides an earlier one, the site overrides both', () => {
    const { merged } = merge('extends: [a, b]\nlabels: { c: site }\n', {
      a: 'name: a\nlabels: { a: a, b: a, c: a }\n',
      b: 'name: b\nlabels: { b: b, c: b }\n',
    });
    expect(merged.labels).toEqual({ a: 'a', b: 'b', c: 'site' });
  });

  it('applies nested groups depth first', () => {
    const { merged } = merge('extends: [child]\n', {
      base: 'name: base\nlabels: { from: base, base: yes }\n',
      child: 'name: child\nextends: [base]\nlabels: { from: child }\n',
    });
    expect(merged.labels).toEqual({ from: 'child', base: 'yes' });
  });

  it('lan entries merge by interface', () => {
    const { merged } = merge('extends: [g]\nlan:\n  - interface: lan0\n    subnets: [172.20.2.0/24]\n', {
      g: 'name: g\nlan:\n  - interface: lan0\n  - interface: lan1\n',
    });
    expect(merged.lan.map((l) => l.value)).toEqual([
      { interface: 'lan0', subnets: ['172.20.2.0/24'] },
      { interface: 'lan1' },
    ]);
  });

  it('a name listed twice in one file is an error, not a merge', () => {
    const { merged, diagnostics } = merge(
      'providers:\n  - name: isp1\n    interface: wan1\n  - name: isp1\n    interface: wan2\nlan:\n  - interface: lan0\n  - interface: lan0\n',
    );
    expect(diagnostics).toEqual([
      'sites/s1.yaml:12:16: error: lan lan0: already listed as lan[0] in this file; list each interface once',
      'sites/s1.yaml:8:11: error: providers isp1: already listed as providers[0] in this file; list each name once',
    ]);
    expect(merged.providers.map((p) => p.value.interface)).toEqual(['wan1']);
  });
});
