/**
 * Delegated (DHCPv6-PD) prefixes as facts (D155), without a kernel: the prefix check of
 * `uplink-agent delegated`, the records it writes, their merge into the facts, and what
 * resolve makes of them — one source rule per prefix, NPTv6 onto and away from it, refused
 * prefixes with their reason — and that a changed prefix is a follow (facts), not drift.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../agent/src/cli.js';
import { checkDelegatedPrefix, mergeDelegated } from '../agent/src/core/delegated-facts.js';
import { findDrift } from '../agent/src/core/find-drift.js';
import { ownershipScope } from '../agent/src/core/owned.js';
import { resolve } from '../agent/src/core/resolve.js';
import type { CommitConfirmed } from '../agent/src/daemon/commit-confirmed.js';
import { watchDelegated } from '../agent/src/daemon/delegated-watch.js';
import { DriftWatch } from '../agent/src/daemon/drift-watch.js';
import { MemoryDataplane } from '../agent/src/dataplane/memory.js';
import { readDelegated, withDelegatedFacts, writeDelegated } from '../agent/src/engine/delegated-store.js';
import { reconcile } from '../agent/src/engine/reconcile.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { Facts } from '../agent/src/model/kernel-state.js';
import { routerFactsHash } from '../agent/src/model/router-facts.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { explainPacket } from '../controller/src/explain/explain-packet.js';
import { formatDiagnostic } from '../controller/src/spec/diagnostic.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import type { ValidSite } from '../controller/src/spec/valid-site.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';

function compile(isp1Prefixes: string, isp2Prefixes = '2001:db8:2::/56'): DesiredState {
  return compileSite(validSite(isp1Prefixes, isp2Prefixes));
}

function validSite(isp1Prefixes: string, isp2Prefixes = '2001:db8:2::/56'): ValidSite {
  const site = `name: s1
management:
  address: 192.0.2.10
  hostKey: ${KEY}
lan:
  - interface: lan0
    subnets: [172.20.1.0/24]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    fallback: true
    ipv6:
      gateway: fe80::1
      prefixes: [${isp1Prefixes}]
  - name: isp2
    interface: wan2
    address: 198.51.100.6/30
    gateway: 198.51.100.5
    balance: 1
    ipv6:
      gateway: fe80::2
      prefixes: [${isp2Prefixes}]
`;
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/s1.yaml', site],
    ]),
  );
  expect(load.diagnostics.map(formatDiagnostic)).toEqual([]);
  return load.validSites[0]!;
}

function facts(delegated1: string[] = [], delegated2: string[] = []): Facts {
  const iface = (n: number, delegated: string[]) => ({
    exists: true,
    up: true,
    addresses: [{ address: `198.51.100.${n === 1 ? 2 : 6}`, prefixLength: 30 }],
    addresses6: [{ address: `2001:db8:ff0${n}::2`, prefixLength: 64 }],
    ...(delegated.length === 0 ? {} : { delegated6: delegated.map((prefix) => ({ prefix })) }),
  });
  return { interfaces: { wan1: iface(1, delegated1), wan2: iface(2, delegated2) } };
}

const sourceRules6 = (state: ReturnType<typeof resolve>, table: number) =>
  state.effective.rules.filter((r) => r.family === 'inet6' && r.table === table && r.from !== undefined);

describe('the prefix a DHCPv6 client reports', () => {
  it.each([
    ['2001:DB8:1:100::/56', { ok: true, prefix: '2001:db8:1:100::/56' }],
    [
      '2001:db8:1:101::/56',
      { ok: false, message: '2001:db8:1:101::/56 has host bits set; the prefix is 2001:db8:1:100::/56' },
    ],
    [
      'fe80::/64',
      { ok: false, message: 'fe80::/64 is link-local; routed prefixes are global (e.g. 2001:db8:1::/48)' },
    ],
    [
      '2001:db8:1:1::/80',
      {
        ok: false,
        message:
          '2001:db8:1:1::/80 is a /80; a LAN needs at least a /64, write the prefix the ISP routes (e.g. /48 or /56)',
      },
    ],
    [
      '2001:db8::',
      { ok: false, message: '2001:db8:: is not an IPv6 prefix; write it as 2001:db8:1:100::/56' },
    ],
  ])('%s', (text, expected) => {
    expect(checkDelegatedPrefix(text)).toEqual(expected);
  });

  it('records still valid are merged into the facts; expired ones are gone', () => {
    const merged = mergeDelegated(
      facts(),
      [
        {
          interface: 'wan1',
          prefixes: [
            { prefix: '2001:db8:1:100::/56', validUntil: 2_000 },
            { prefix: '2001:db8:1:200::/56', validUntil: 1_000 },
          ],
          reportedAt: 0,
        },
        { interface: 'wwan0', prefixes: [{ prefix: '2001:db8:7::/56' }], reportedAt: 0 },
      ],
      1_500,
    );
    expect(merged.interfaces.wan1!.delegated6).toEqual([
      { prefix: '2001:db8:1:100::/56', validUntil: 2_000 },
    ]);
    expect(merged.interfaces.wan2).toEqual(facts().interfaces.wan2);
    expect(merged.interfaces.wwan0).toEqual({
      exists: false,
      up: false,
      addresses: [],
      delegated6: [{ prefix: '2001:db8:7::/56' }],
    });
    expect(mergeDelegated(facts(), [], 0)).toEqual(facts());
  });
});

describe('resolve with delegated prefixes', () => {
  it('no prefix known yet: no source rule, no NPTv6 involving it; the rest resolves', () => {
    const desired = compile('delegated/56');
    const result = resolve(desired, facts(), {});
    expect(result.problems).toEqual([]);
    expect(sourceRules6(result, desired.providers[0]!.table).map((r) => r.from)).toEqual([
      '2001:db8:ff01::2/128',
    ]);
    expect(result.effective.nft?.filter((r) => r.kind === 'npt')).toEqual([]);
    expect(result.refusedDelegated).toEqual([]);
  });

  it('a delegated prefix gets its source rule (2000 + index) and NPTv6 onto and away from it', () => {
    const desired = compile('delegated/56');
    const result = resolve(desired, facts(['2001:db8:1:100::/56']), {});
    expect(sourceRules6(result, desired.providers[0]!.table)).toContainEqual({
      family: 'inet6',
      priority: 2000,
      action: 'lookup',
      table: desired.providers[0]!.table,
      from: '2001:db8:1:100::/56',
      protocol: 252,
    });
    expect(result.effective.nft?.filter((r) => r.kind === 'npt')).toEqual([
      { kind: 'npt', oif: 'wan2', from: '2001:db8:1:100::/56', to: '2001:db8:2::/56' },
      { kind: 'npt', oif: 'wan1', from: '2001:db8:2::/56', to: '2001:db8:1:100::/56' },
    ]);
  });

  it('a new prefix replaces the old one: a change of facts, followed; against the old kernel it would be drift', () => {
    const desired = compile('delegated/56');
    const before = resolve(desired, facts(['2001:db8:1:100::/56']), {}).effective;
    const after = facts(['2001:db8:1:200::/56']);
    const findings = findDrift({
      desired,
      facts: after,
      health: {},
      current: before,
      scope: ownershipScope(desired),
    });
    // Which is why the daemon re-applies on the new facts (a follow) before it compares.
    expect(findings.items.map((i) => `${i.kind} ${i.object}`).join('\n')).toContain('2001:db8:1:200::/56');
    const followed = resolve(desired, after, {}).effective;
    expect(
      findDrift({ desired, facts: after, health: {}, current: followed, scope: ownershipScope(desired) })
        .items,
    ).toEqual([]);
    expect(JSON.stringify(followed)).not.toContain('2001:db8:1:100::');
  });

  it.each([
    {
      name: 'another length than the spec expects',
      prefix: '2001:db8:1:100::/60',
      reason:
        'is a /60; the spec expects a /56 (ipv6.prefixes: [delegated/56]): write delegated/60, or ask the ISP for a /56',
    },
    {
      name: "another ISP's prefix",
      prefix: '2001:db8:2::/56',
      reason: "overlaps 2001:db8:2::/56, provider isp2's; a prefix comes from one ISP",
    },
    {
      name: 'a link-local prefix',
      prefix: 'fe80::/56',
      reason: 'is link-local; routed prefixes are global (e.g. 2001:db8:1::/48)',
    },
  ])('refuses $name, with the reason, and routes nothing from it', ({ prefix, reason }) => {
    const desired = compile('delegated/56');
    const result = resolve(desired, facts([prefix]), {});
    expect(result.refusedDelegated).toEqual([{ provider: 'isp1', prefix, reason }]);
    expect(result.problems).toEqual([]);
    expect(JSON.stringify(sourceRules6(result, desired.providers[0]!.table))).not.toContain(prefix);
  });

  it('two ISPs delegating overlapping prefixes: the later provider’s is refused', () => {
    const desired = compile('delegated/56', 'delegated/56');
    const result = resolve(desired, facts(['2001:db8:1:100::/56'], ['2001:db8:1:100::/56']), {});
    expect(result.refusedDelegated).toEqual([
      {
        provider: 'isp2',
        prefix: '2001:db8:1:100::/56',
        reason: "overlaps 2001:db8:1:100::/56, provider isp1's; a prefix comes from one ISP",
      },
    ]);
    expect(sourceRules6(result, desired.providers[1]!.table).map((r) => r.from)).toEqual([
      '2001:db8:ff02::2/128',
    ]);
  });

  it('the delegated prefix of an unavailable uplink still maps onto the one left (NPTv6)', () => {
    const desired = compile('delegated/56');
    const down = facts(['2001:db8:1:100::/56']);
    down.interfaces.wan1 = { ...down.interfaces.wan1!, up: false };
    const result = resolve(desired, down, {});
    expect(result.effective.nft?.filter((r) => r.kind === 'npt')).toEqual([
      { kind: 'npt', oif: 'wan2', from: '2001:db8:1:100::/56', to: '2001:db8:2::/56' },
    ]);
    expect(JSON.stringify(result.effective.rules)).not.toContain('2001:db8:1:100::');
  });
});

describe('uplink-agent delegated', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const run = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...argv, '--state-dir', dir!], {
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      dataplane: () => new MemoryDataplane({ facts: facts() }),
    });
    return { code, stdout: out.join(''), stderr: err.join('') };
  };

  it('records, replaces, prints and clears an interface’s prefix; the facts carry it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-delegated-'));
    expect(
      await run(
        'delegated',
        '--interface',
        'wan1',
        '--prefix',
        '2001:DB8:1:100::/56',
        '--valid-lifetime',
        '3600',
      ),
    ).toMatchObject({
      code: 0,
      stdout: 'wan1: delegated 2001:db8:1:100::/56\n',
    });
    const record = JSON.parse(await readFile(join(dir, 'delegated', 'wan1.json'), 'utf8'));
    expect(record.prefixes[0].validUntil - record.reportedAt).toBe(3_600_000);
    expect((await run('delegated', '--interface', 'wan1')).stdout).toBe('2001:db8:1:100::/56\n');
    expect((await run('show')).stdout).toContain('wan1 up 198.51.100.2/30 delegated 2001:db8:1:100::/56\n');
    const dataplane = withDelegatedFacts(new MemoryDataplane({ facts: facts() }), dir, Date.now);
    expect((await dataplane.readFacts()).interfaces.wan1!.delegated6?.map((p) => p.prefix)).toEqual([
      '2001:db8:1:100::/56',
    ]);

    await run('delegated', '--interface', 'wan1', '--prefix', '2001:db8:1:200::/56');
    expect((await run('delegated')).stdout).toBe('wan1 2001:db8:1:200::/56\n');
    expect(await run('delegated', '--interface', 'wan1', '--clear')).toMatchObject({ code: 0 });
    expect((await readDelegated(dir)).records).toEqual([]);
    expect((await dataplane.readFacts()).interfaces.wan1!.delegated6).toBeUndefined();
  });

  it('refuses a prefix that cannot be delegated, and records nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-delegated-'));
    expect(await run('delegated', '--interface', 'wan1', '--prefix', 'fe80::/64')).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'uplink-agent delegated: --prefix fe80::/64 is link-local; routed prefixes are global (e.g. 2001:db8:1::/48); nothing was recorded\n',
    });
    expect(await run('delegated', '--interface', 'bad/name', '--clear')).toMatchObject({ code: 2 });
    expect((await readDelegated(dir)).records).toEqual([]);
  });
});

describe('uplink explain and a delegated prefix', () => {
  const packet = { src: '2001:db8:1:100::10', dst: '2001:db8:99::10', iif: 'lan0' };

  it('without the router’s facts the answer is unknown offline, and a note says why', () => {
    const e = explainPacket(validSite('delegated/56'), { packet, down: [] });
    expect(e.unknown).toBe(
      "2001:db8:1:100::10 may be in the prefix delegated to isp1 (DHCPv6-PD), which only the router knows; ask with the router's facts (--facts FILE or --state-dir DIR)",
    );
    expect(e.notes).toContain(
      "isp1's IPv6 prefix is delegated (DHCPv6-PD): only the router knows it, so its source rule and NPTv6 mappings are not in this answer; ask with the router's facts (--facts FILE or --state-dir DIR)",
    );
  });

  it('with facts that carry the prefix, the packet leaves by the uplink it was delegated by', () => {
    const f = facts(['2001:db8:1:100::/56']);
    const interfaces = {
      lan0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
      ...f.interfaces,
    };
    const routerFacts = { interfaces, rules: [], routes: [], sysctls: {} };
    const record = { site: 's1', hash: routerFactsHash(routerFacts), readAt: 0, facts: routerFacts };
    const e = explainPacket(
      validSite('delegated/56'),
      { packet, down: [] },
      { facts: { record, from: 'test' }, now: 0 },
    );
    expect(e.unknown).toBeNull();
    expect(e.uplink).toMatchObject({ kind: 'provider', provider: 'isp1' });
    expect(e.verdict).toMatchObject({ kind: 'forward', dev: 'wan1' });
  });
});

describe('the daemon’s watch and a delegated prefix', () => {
  let dir: string | undefined;
  let watch: DriftWatch | undefined;
  afterEach(async () => {
    await watch?.close();
    watch = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('a record written by uplink-agent delegated is followed at once (inotify), and is not drift; a refused one is logged once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-delegated-watch-'));
    const stateDir = dir;
    const memory = new MemoryDataplane({ facts: facts() });
    const dataplane = withDelegatedFacts(memory, stateDir, Date.now);
    const desired = compile('delegated/56');
    await reconcile(dataplane, desired, {}, { stateDir });
    let queue: Promise<unknown> = Promise.resolve();
    const commit = {
      health: {
        current: () => ({}),
        onChange: () => () => {},
        settled: async () => {},
      },
      record: { pending: null, applied: null },
      faults: { noteError: () => {} },
      engineOptions: { stateDir },
      exclusive<T>(task: () => Promise<T>): Promise<T> {
        const run = queue.then(task);
        queue = run.catch(() => {});
        return run;
      },
      onStateChange: () => () => {},
      reportDriftFrom: () => {},
    } as unknown as CommitConfirmed;
    const logs: string[] = [];
    // No periodic check within the test: only the directory's events can make it follow.
    watch = new DriftWatch(
      commit,
      { stateDir, dataplane: () => dataplane, now: Date.now, log: (line) => logs.push(line) },
      {
        events: await watchDelegated(stateDir, (line) => logs.push(line)),
        debounceMs: 1,
        fullCheckMs: 600_000,
      },
    );
    watch.start();
    const until = async (check: () => Promise<boolean> | boolean, what: string) => {
      const end = Date.now() + 5_000;
      while (!(await check())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${logs.join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(() => watch!.report() !== null, 'the first check');
    const rules = async () => (await memory.readKernel({ sysctls: [] })).rules.map((r) => r.from);

    await writeDelegated(stateDir, {
      interface: 'wan1',
      prefixes: [{ prefix: '2001:db8:1:100::/56' }],
      reportedAt: Date.now(),
    });
    await until(async () => (await rules()).includes('2001:db8:1:100::/56'), 'the follow');
    await until(() => logs.some((l) => l.startsWith('follow: re-applied')), 'the follow log');
    expect(watch.report()?.items).toEqual([]);

    await writeDelegated(stateDir, {
      interface: 'wan1',
      prefixes: [{ prefix: '2001:db8:1:300::/60' }],
      reportedAt: Date.now(),
    });
    await until(async () => !(await rules()).includes('2001:db8:1:100::/56'), 'the old rule to go');
    await until(() => logs.some((l) => l.startsWith('delegated: s1:')), 'the refusal log');
    expect(logs.filter((l) => l.startsWith('delegated: s1:'))).toEqual([
      'delegated: s1: provider isp1: the delegated prefix 2001:db8:1:300::/60 is a /60; the spec expects a /56 (ipv6.prefixes: [delegated/56]): write delegated/60, or ask the ISP for a /56; not routed',
    ]);
    expect(watch.report()?.items).toEqual([]);
  });
});
