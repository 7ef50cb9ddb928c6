/**
 * The simulator against the kernel (issue 9's proof). For every reference site of
 * fleet-repo-example: build the site's router in a namespace, apply the compiled site with
 * the real engine, then ask `ip route get` and the simulator the same questions over
 * thousands of seeded random packets — with every provider up, and with each provider taken
 * down the way failover does it (an apply with that provider's health down). The simulator
 * answers twice: over the kernel state read back (buildViewFromState, what the agent's
 * guard uses) and over the agent's own effective state (resolve of the desired state
 * against the live facts, plus what Uplink does not own). Every disagreement fails the
 * test with the packet, the kernel's answer and the simulator's.
 *
 * Reproduce one failure: the seed is printed with it; `generatePackets(seed, n, pools)`
 * gives the same packets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownershipScope } from '../agent/src/core/owned.js';
import { resolve } from '../agent/src/core/resolve.js';
import { show } from '../agent/src/engine/show.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { Facts, Health, KernelState } from '../agent/src/model/kernel-state.js';
import { type FactsRecord, factsRecord, routerFactsHash } from '../agent/src/model/router-facts.js';
import { buildViewFromState, type Packet, type RoutingView, simulatePacket } from '../agent/src/sim/index.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { buildSiteView } from '../controller/src/explain/build-site-view.js';
import { networkOf6 } from '../controller/src/spec/addresses.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import type { ValidSite } from '../controller/src/spec/valid-site.js';
import {
  compareAnswer,
  generatePackets,
  generatePackets6,
  type PacketPools,
  type PacketPools6,
  routeGetBatch,
} from './differential-oracle.js';
import { buildDualStackLab, dualStackYaml } from './dual-stack-lab.js';
import { planSiteLab } from './lab/fleet-lab-sites.js';
import { type Lab, requireRoot, type SiteTopology, useLab } from './lab/index.js';
import { buildSiteTopology } from './lab/site-topology.js';
import {
  buildSiteLab,
  type ExampleSite,
  loadExampleSite,
  SITE_TOPOLOGIES,
  SiteAgent,
} from './scenarios/site-lab.js';

/** Packets per kernel state; each site is checked in 1 + (number of providers) states. */
const PACKETS_PER_STATE = 2500;
const LOCAL_TABLE = 255;

interface ReadBack {
  readonly facts: Facts;
  readonly kernel: KernelState;
}

async function readBack(agent: SiteAgent): Promise<ReadBack> {
  const facts = await agent.dataplane.readFacts();
  const names = Object.keys(facts.interfaces);
  const sysctls = [
    'net.ipv4.ip_forward',
    'net.ipv6.conf.all.forwarding',
    'net.ipv4.conf.all.rp_filter',
    'net.ipv4.conf.all.src_valid_mark',
    ...names.flatMap((n) => [`net.ipv4.conf.${n}.rp_filter`, `net.ipv4.conf.${n}.src_valid_mark`]),
  ];
  const kernel = await agent.dataplane.readKernel({ sysctls });
  return { facts, kernel };
}

/** Routing only: `ip route get` runs no netfilter, so the views carry no nft rules. */
function kernelView({ facts, kernel }: ReadBack, markMask: number): RoutingView {
  return buildViewFromState(
    { ...kernel, routes: kernel.routes.filter((r) => r.table !== LOCAL_TABLE), nft: [] },
    facts,
    { markMask },
  );
}

/** The agent's effective state over the live facts, plus the objects Uplink does not own. */
function effectiveView({ facts, kernel }: ReadBack, desired: DesiredState, health: Health): RoutingView {
  const { effective } = resolve(desired, facts, health);
  const scope = ownershipScope(desired);
  const protocols = new Set(scope.protocols);
  const tables = new Set(scope.tables);
  return buildViewFromState(
    { ...effective, nft: [], sysctls: { ...kernel.sysctls, ...effective.sysctls } },
    facts,
    {
      markMask: desired.settings.markMask,
      rules: kernel.rules.filter((r) => !protocols.has(r.protocol)),
      routes: kernel.routes.filter(
        (r) => r.table !== LOCAL_TABLE && !(tables.has(r.table) && protocols.has(r.protocol)),
      ),
    },
  );
}

/**
 * The facts the agent reports in `status` (show(), which status calls, D170), through JSON
 * as the controller stores them.
 */
async function reportedFacts(agent: SiteAgent): Promise<FactsRecord> {
  const interfaces = Object.keys((await agent.dataplane.readFacts()).interfaces);
  const { routerFacts, applied } = await show(agent.dataplane, { stateDir: agent.stateDir }, interfaces);
  const record = {
    site: applied?.site ?? null,
    hash: routerFactsHash(routerFacts),
    readAt: 0,
    facts: routerFacts,
  };
  return factsRecord.parse(JSON.parse(JSON.stringify(record)));
}

/** `uplink explain`'s view over the reported facts and the site's spec, nothing else. Routing only. */
function explainView(site: ValidSite, record: FactsRecord, health: Health): RoutingView {
  const down = Object.entries(health)
    .filter(([, state]) => state === 'down')
    .map(([name]) => name);
  const { view, basis } = buildSiteView(site, down, { facts: { record, from: 'the agent' } });
  expect(basis.kind).toBe('router');
  return { ...view, nft: [] };
}

/**
 * Routes in main that Uplink does not own and the spec cannot know: a VPN-pushed /16 on the
 * first uplink and a `via` route over the last one (the facts carry them, D170).
 */
const MAIN_EXTRAS = ['10.9.0.0/16', '10.8.0.0/16'] as const;

async function addMainExtras(lab: Lab, topo: SiteTopology): Promise<void> {
  const first = topo.uplinks[0]!;
  const last = topo.uplinks.at(-1)!;
  // The router's interface of an uplink has the uplink's name.
  await lab.run([
    'ip',
    '-n',
    topo.router,
    'route',
    'add',
    MAIN_EXTRAS[0],
    'dev',
    first.name,
    'proto',
    'static',
  ]);
  await lab.run([
    'ip',
    '-n',
    topo.router,
    'route',
    'add',
    MAIN_EXTRAS[1],
    'via',
    last.gateway,
    'dev',
    last.name,
    'proto',
    'static',
  ]);
}

function poolsFor(desired: DesiredState, topo: SiteTopology, facts: Facts): PacketPools {
  const localAddresses = Object.values(facts.interfaces).flatMap((f) => f.addresses.map((a) => a.address));
  const networks = new Set<string>();
  const hosts = new Set<string>(topo.internetHosts);
  for (const u of topo.uplinks) hosts.add(u.gateway);
  for (const f of Object.values(facts.interfaces)) {
    for (const a of f.addresses) {
      if (a.peer) hosts.add(a.peer);
      if (a.prefixLength < 32 && !a.address.startsWith('127.'))
        networks.add(cidrOf(a.address, a.prefixLength));
    }
  }
  for (const extra of MAIN_EXTRAS) networks.add(extra);
  const marks = new Set<number>([0]);
  const uids = new Set<number>([0, 1, 65534]);
  const ports = new Set<number>([22, 53, 80, 443]);
  const tos = new Set<number>();
  for (const p of desired.providers) marks.add(p.mark);
  for (const r of desired.rules) {
    if (r.fwmark !== undefined) marks.add(r.fwmark);
    if (r.tos !== undefined) tos.add(r.tos);
    if (r.uidrange)
      for (const u of [r.uidrange.start, r.uidrange.end])
        for (const d of [-1, 0, 1]) uids.add(Math.max(0, u + d));
    for (const range of [r.sport, r.dport]) {
      if (range)
        for (const x of [range.start, range.end])
          for (const d of [-1, 0, 1]) ports.add(Math.min(65535, Math.max(1, x + d)));
    }
    for (const ref of [r.from, r.to]) {
      if (ref?.kind === 'literal') {
        if (ref.cidr.endsWith('/32')) hosts.add(ref.cidr.slice(0, -3));
        else networks.add(ref.cidr);
      }
    }
  }
  return {
    interfaces: [...Object.keys(facts.interfaces)],
    localAddresses,
    networks: [...networks],
    hosts: [...hosts],
    marks: [...marks],
    uids: [...uids],
    ports: [...ports],
    tos: [...tos],
  };
}

function cidrOf(address: string, length: number): string {
  const o = address.split('.').map(Number);
  const v = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
  const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
  const n = (v & mask) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${length}`;
}

function seedOf(site: string, state: string): number {
  let h = 2166136261;
  for (const c of `${site}/${state}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

interface Comparison {
  readonly compared: number;
  readonly disagreements: string[];
  /** Packets explain over the spec's stand-ins alone (no facts) answers otherwise than the kernel. */
  readonly standInMisses: number;
}

async function compareState(
  lab: Lab,
  topo: SiteTopology,
  agent: SiteAgent,
  site: ValidSite,
  desired: DesiredState,
  health: Health,
  label: string,
  name: string,
): Promise<Comparison> {
  const back = await readBack(agent);
  const views = {
    kernel: kernelView(back, desired.settings.markMask),
    effective: effectiveView(back, desired, health),
    explain: explainView(site, await reportedFacts(agent), health),
  };
  const seed = seedOf(name, label);
  const packets = generatePackets(seed, PACKETS_PER_STATE, poolsFor(desired, topo, back.facts));
  const answers = await routeGetBatch(lab, topo.router, packets);
  const disagreements: string[] = [];
  let standInMisses = 0;
  const down = Object.keys(health).filter((p) => health[p] === 'down');
  const standIns = { ...buildSiteView(site, down).view, nft: [] };
  packets.forEach((packet, i) => {
    const offline = simulatePacket(standIns, { ...packet, connected: false } as Packet, { trace: false });
    if (compareAnswer(packet, answers[i]!, offline.verdict) !== null) standInMisses++;
    for (const [name, view] of Object.entries(views)) {
      // `ip route get` asks one lookup, never connect()'s two.
      const { verdict } = simulatePacket(view, { ...packet, connected: false } as Packet, { trace: false });
      const problem = compareAnswer(packet, answers[i]!, verdict);
      if (problem !== null) {
        disagreements.push(
          `[${label} seed ${seed} #${i}, ${name} view] ${JSON.stringify(packet)}: ${problem}`,
        );
      }
    }
  });
  return { compared: packets.length, disagreements, standInMisses };
}

/**
 * A reference site plus one policy per selector the spec offers, so every selector Uplink
 * emits meets the kernel: tos, sport ranges, iif, uid ranges, an existing mark outside
 * Uplink's mask, `traffic: local/forwarded`, and a reject action.
 */
const EVERY_SELECTOR: { site: ExampleSite; policies: string } = {
  site: 'branch-adsl-vpn',
  policies: `  - name: sel-tos
    tos: 0x10
    via: [isp2]
  - name: sel-sport
    proto: udp
    sport: "5000-5100"
    via: [isp2, isp1]
  - name: sel-iif
    iif: tun0
    to: 10.0.0.0/8
    via: [isp2]
  - name: sel-uid
    uid: "1000-1999"
    proto: tcp
    dport: [80, 443]
    via: [vpn, isp2]
  - name: sel-mark
    mark: 0x30000/0xf0000
    via: [isp2]
  - name: sel-local
    traffic: local
    to: 192.0.2.0/24
    via: [isp2]
  - name: sel-forwarded
    traffic: forwarded
    from: 172.20.2.128/25
    proto: icmp
    via: [vpn, isp1]
  - name: sel-reject
    to: 198.51.100.128/25
    action: prohibit
`,
};

const SITES: Array<{ name: string; site: ExampleSite; edit?: (text: string) => string }> = [
  ...(Object.keys(SITE_TOPOLOGIES) as ExampleSite[]).map((site) => ({ name: site, site })),
  {
    name: `${EVERY_SELECTOR.site} + every selector`,
    site: EVERY_SELECTOR.site,
    edit: (text) => `${text.trimEnd()}
${EVERY_SELECTOR.policies}`,
  },
];

describe.skipIf(!requireRoot())('simulator vs kernel (ip route get) on every reference site', () => {
  const totals: Array<{ site: string; state: string; packets: number; standInMisses: number }> = [];
  afterAll(() => {
    const lines = totals.map(
      (t) => `  ${t.site} ${t.state}: ${t.packets} packets (stand-ins alone: ${t.standInMisses} wrong)`,
    );
    const sum = totals.reduce((s, t) => s + t.packets, 0);
    const misses = totals.reduce((s, t) => s + t.standInMisses, 0);
    process.stdout.write(
      `differential test: ${sum} packets compared in 3 views (kernel state, agent's effective state, explain over the reported facts), 0 disagreements; explain over the spec's stand-ins alone would have been wrong on ${misses}\n${lines.join('\n')}\n`,
    );
  });

  for (const { name, site, edit } of SITES) {
    describe(name, () => {
      const lab = useLab(`df${site.replace(/-/g, '').slice(0, 6)}`);
      let topo: SiteTopology;
      let agent: SiteAgent;
      let valid: ValidSite;
      let desired: DesiredState;

      beforeAll(async () => {
        valid = await loadExampleSite(site, edit);
        desired = compileSite(valid);
        topo = await buildSiteLab(lab.current, site);
        await addMainExtras(lab.current, topo);
        agent = await SiteAgent.create(topo.router, desired.settings.markMask);
      });
      afterAll(async () => {
        await agent?.dispose();
      });

      const states = (): Array<{ label: string; health: Health }> => [
        { label: 'all up', health: {} },
        ...desired.providers.map((p) => ({ label: `${p.name} down`, health: { [p.name]: 'down' as const } })),
      ];

      it('agrees with the kernel on every generated packet, all providers up and each one down', async () => {
        let checked = 0;
        let standInMisses = 0;
        for (const { label, health } of states()) {
          const report = await agent.apply(desired, health);
          expect(report.verified).toBe(true);
          expect(report.unavailable).toEqual([]);
          const comparison = await compareState(
            lab.current,
            topo,
            agent,
            valid,
            desired,
            health,
            label,
            name,
          );
          const { compared, disagreements } = comparison;
          totals.push({
            site: name,
            state: label,
            packets: compared,
            standInMisses: comparison.standInMisses,
          });
          checked += compared;
          standInMisses += comparison.standInMisses;
          expect(disagreements.slice(0, 20), `${disagreements.length} disagreements`).toEqual([]);
        }
        expect(checked).toBe(PACKETS_PER_STATE * (1 + desired.providers.length));
        // The facts matter: main's extra routes (at least) are what the spec alone cannot know.
        expect(standInMisses).toBeGreaterThan(0);
      }, 180_000);
    });
  }
});

/** The dual-stack lab's site (test/dual-stack-lab.ts), validated as the controller does. */
function dualStackSite(): ValidSite {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/dualstack.yaml', dualStackYaml()],
    ]),
  );
  expect(load.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return load.validSites[0]!;
}

function poolsFor6(desired: DesiredState, facts: Facts): PacketPools6 {
  const localAddresses = Object.values(facts.interfaces).flatMap((f) =>
    (f.addresses6 ?? []).map((a) => a.address),
  );
  const networks = new Set<string>();
  const hosts = new Set<string>(['2001:db8:99::10', '2001:db8:99::80', '2001:db8:99::1']);
  for (const f of Object.values(facts.interfaces)) {
    if (f.detectedGateway6) hosts.add(f.detectedGateway6);
    for (const a of f.addresses6 ?? []) networks.add(networkOf6(a.address, a.prefixLength));
  }
  const marks = new Set<number>([0]);
  const tos = new Set<number>();
  for (const p of desired.providers) {
    marks.add(p.mark);
    for (const prefix of p.ipv6?.prefixes ?? []) networks.add(prefix);
  }
  for (const r of desired.rules) {
    if (r.family !== 'inet6') continue;
    if (r.tos !== undefined) tos.add(r.tos);
    for (const ref of [r.from, r.to]) {
      if (ref?.kind === 'literal') {
        if (ref.cidr.endsWith('/128')) hosts.add(ref.cidr.slice(0, -4));
        else networks.add(ref.cidr);
      }
    }
  }
  return {
    interfaces: Object.keys(facts.interfaces).filter((n) => n !== 'lo'),
    localAddresses,
    networks: [...networks],
    hosts: [...hosts],
    marks: [...marks],
    ports: [22, 25, 53, 80, 443],
    tos: [...tos],
  };
}

/** Main's IPv6 routes Uplink does not own (a VPN-style /48 on the first uplink, one via its gateway). */
const MAIN_EXTRAS6 = ['2001:db8:77::/48', '2001:db8:88::/48'] as const;

async function addMainExtras6(lab: Lab, router: string, site: ValidSite): Promise<void> {
  const first = site.providers.find((p) => p.ipv6 !== undefined && p.ipv6.gateway.kind === 'static')!;
  const gateway = (first.ipv6!.gateway as { address: string }).address;
  await lab.run([
    'ip',
    '-n',
    router,
    '-6',
    'route',
    'add',
    MAIN_EXTRAS6[0],
    'dev',
    first.interface,
    'proto',
    'static',
  ]);
  await lab.run([
    'ip',
    '-n',
    router,
    '-6',
    'route',
    'add',
    MAIN_EXTRAS6[1],
    'via',
    gateway,
    'dev',
    first.interface,
    'proto',
    'static',
  ]);
}

/**
 * IPv6 (D185): each dual-stack lab — the one of test/dual-stack-lab.ts (a link-local and an
 * RA gateway, routed /48s, a LAN numbered from ISP1's prefix) and the reference site
 * branch-dualstack (plus a tos policy) as the fleet lab builds it (planSiteLab) — applied by the real engine, plus
 * IPv6 routes in main Uplink does not own; then `ip -6 route get` against the simulator's IPv6
 * pipeline in the same three views, with every provider up, each provider's IPv6 half down
 * (its probes), and each provider down whole (both halves).
 */
const DUAL_STACK_LABS: Array<{
  name: string;
  site: () => Promise<ValidSite>;
  build: (lab: Lab, site: ValidSite) => Promise<{ router: string }>;
}> = [
  { name: 'dual-stack lab', site: async () => dualStackSite(), build: (lab) => buildDualStackLab(lab) },
  {
    // Plus a policy by traffic class, which has IPv6 rules too (no addresses: both families),
    // and one for ICMPv6 (IPv6 rules only, `ipproto ipv6-icmp`).
    name: 'branch-dualstack',
    site: () =>
      loadExampleSite(
        'branch-dualstack',
        (text) =>
          `${text.trimEnd()}\n  - name: sel-tos\n    tos: 0x10\n    via: [isp2]\n  - name: sel-icmp6\n    proto: icmpv6\n    via: [isp2]\n`,
      ),
    build: (lab, site) => {
      const plan = planSiteLab(site);
      return buildSiteTopology(lab, {
        uplinks: plan.uplinks,
        internetHosts: plan.internetHosts,
        ...(plan.internetHosts6 === undefined ? {} : { internetHosts6: plan.internetHosts6 }),
        ...(plan.lan === undefined ? {} : { lan: plan.lan }),
        ...(plan.moreLans === undefined ? {} : { moreLans: plan.moreLans }),
      });
    },
  },
];

for (const dual of DUAL_STACK_LABS) {
  describe.skipIf(!requireRoot())(`simulator vs kernel (ip -6 route get) on ${dual.name}`, () => {
    const lab = useLab(dual.name === 'branch-dualstack' ? 'df6b' : 'df6');
    let router: string;
    let agent: SiteAgent;
    let valid: ValidSite;
    let desired: DesiredState;

    beforeAll(async () => {
      valid = await dual.site();
      desired = compileSite(valid);
      router = (await dual.build(lab.current, valid)).router;
      await addMainExtras6(lab.current, router, valid);
      agent = await SiteAgent.create(router, desired.settings.markMask);
    }, 120_000);
    afterAll(async () => {
      await agent?.dispose();
    });

    it('agrees with the kernel on every generated IPv6 packet, all up, each IPv6 half down, each provider down', async () => {
      const states: Array<{ label: string; health: Health }> = [
        { label: 'all up', health: {} },
        ...desired.providers.map((p) => ({
          label: `${p.name}:ipv6 down`,
          health: { [`${p.name}:ipv6`]: 'down' as const },
        })),
        ...desired.providers.map((p) => ({
          label: `${p.name} down`,
          health: { [p.name]: 'down' as const, [`${p.name}:ipv6`]: 'down' as const },
        })),
      ];
      let checked = 0;
      const devsSeen = new Set<string>();
      for (const { label, health } of states) {
        const report = await agent.apply(desired, health);
        expect(report.verified).toBe(true);
        expect(report.unavailable).toEqual([]);
        const back = await readBack(agent);
        const views = {
          kernel: kernelView(back, desired.settings.markMask),
          effective: effectiveView(back, desired, health),
          explain: explainView(valid, await reportedFacts(agent), health),
        };
        const seed = seedOf(`${dual.name}/ipv6`, label);
        const pools = poolsFor6(desired, back.facts);
        const packets = generatePackets6(seed, PACKETS_PER_STATE, {
          ...pools,
          networks: [...pools.networks, ...MAIN_EXTRAS6],
        });
        const answers = await routeGetBatch(lab.current, router, packets, '-6');
        const disagreements: string[] = [];
        packets.forEach((packet, i) => {
          const answer = answers[i]!;
          if (answer.ok) devsSeen.add(`${answer.type} ${answer.dev}`);
          for (const [name, view] of Object.entries(views)) {
            const { verdict } = simulatePacket(view, { ...packet, connected: false } as Packet, {
              trace: false,
            });
            const problem = compareAnswer(packet, answer, verdict);
            if (problem !== null)
              disagreements.push(
                `[${label} seed ${seed} #${i}, ${name} view] ${JSON.stringify(packet)}: ${problem}`,
              );
          }
        });
        totals6.push({ lab: dual.name, state: label, packets: packets.length });
        checked += packets.length;
        expect(disagreements.slice(0, 20), `${disagreements.length} disagreements`).toEqual([]);
      }
      expect(checked).toBe(PACKETS_PER_STATE * states.length);
      // The packets reach every uplink, the LAN and the router itself.
      const expected = [
        ...desired.providers.map((p) => `unicast ${p.interface}`),
        ...valid.lan.map((l) => `unicast ${l.interface}`),
        'local lo',
      ];
      for (const seen of expected) expect([...devsSeen]).toContain(seen);
    }, 240_000);
  });
}

const totals6: Array<{ lab: string; state: string; packets: number }> = [];
afterAll(() => {
  if (totals6.length === 0) return;
  const sum = totals6.reduce((s, t) => s + t.packets, 0);
  process.stdout.write(
    `differential test (IPv6): ${sum} packets compared in 3 views, 0 disagreements (${totals6.map((t) => `${t.lab} ${t.state}: ${t.packets}`).join(', ')})\n`,
  );
});
