/**
 * A branch router the way the operators have them, in namespaces, with the real agent
 * daemon (dist/uplink-agent.mjs) running in it:
 *
 *   lan ── router ┬ enp1s0.100 ── isp-fibre  (static /30, balanced 3)
 *   (lan0)        ├ ppp0       ── isp-dsl    (point-to-point, balanced 1; re-dials)
 *                 ├ enp2s0     ── isp-cable  (real DHCP: dnsmasq there, dhclient here; fallback 1)
 *                 └ wwan0      ── isp-lte    (hot-plugged by the test; fallback 2)
 *                                    all ── internet (203.0.113.10 on lo)
 *
 * Probes are off (health is not what these tests are about): every available provider is up.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { resultSchemas, type StatusResult } from '../agent/src/model/protocol.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { formatDiagnostic } from '../controller/src/spec/diagnostic.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { ROOT } from './build-dist.js';
import { type DhcpClient, type DhcpServer, startDhcpClient, startDhcpServer } from './lab/dhcp.js';
import { callOnSocket } from './lab/json-lines.js';
import type { Lab, LabProcess } from './lab/lab.js';
import { buildSiteTopology, type SiteTopology, waitOperUp } from './lab/site-topology.js';

export const INTERNET_HOST = '203.0.113.10';
export const LAN_HOST = '172.20.50.10';

/** The two leases the cable ISP hands out, before and after its renumbering. */
export const CABLE_LEASES = [
  { server: '198.51.100.129/25', range: ['198.51.100.150', '198.51.100.160'], netmask: '255.255.255.128' },
  { server: '198.51.100.1/25', range: ['198.51.100.50', '198.51.100.60'], netmask: '255.255.255.128' },
] as const;

export const BRANCH_SITE = `name: branch
management:
  address: 192.0.2.200
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
lan:
  - interface: lan0
    subnets: [172.20.50.0/24]
providers:
  - name: fibre
    interface: enp1s0.100
    address: 198.51.100.250/30
    gateway: 198.51.100.249
    balance: 3
    health: { enabled: false }
  - name: dsl
    interface: ppp0
    gateway: point-to-point
    balance: 1
    health: { enabled: false }
  - name: cable
    interface: enp2s0
    gateway: detect
    fallback: 1
    health: { enabled: false }
  - name: lte
    interface: wwan0
    gateway: detect
    fallback: 2
    health: { enabled: false }
policies:
  - name: long-lived
    to: 203.0.113.10/32
    proto: tcp
    dport: 9000
    via: [fibre]
`;

export function compileBranchSite(site = BRANCH_SITE): DesiredState {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/branch.yaml', site],
    ]),
  );
  const errors = load.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  if (errors.length > 0) throw new Error(`branch site does not validate:\n${errors.join('\n')}`);
  return compileSite(load.validSites[0]!);
}

export interface BranchLab {
  readonly topo: SiteTopology;
  readonly router: string;
  readonly cableIsp: string;
  readonly dir: string;
  dhcpServer: DhcpServer;
  dhcpClient: DhcpClient;
}

/** Everything but the LTE uplink, which a test plugs in with `plugLte`. */
export async function buildBranchLab(lab: Lab): Promise<BranchLab> {
  const dir = await mkdtemp(join(tmpdir(), 'uplink-branch-'));
  const topo = await buildSiteTopology(lab, {
    uplinks: [
      { name: 'enp1s0.100', kind: 'subnet', address: '198.51.100.250/30', gateway: '198.51.100.249' },
      { name: 'ppp0', kind: 'point-to-point', address: '10.101.2.2', gateway: '10.101.2.1' },
    ],
    internetHosts: [INTERNET_HOST],
    lan: { routerIf: 'lan0', subnets: [{ router: '172.20.50.1/24', host: `${LAN_HOST}/24` }] },
  });
  const router = topo.router;
  // The cable ISP: no address on the router's side until DHCP gives one.
  const cableIsp = await lab.netns('isp-cable');
  await lab.forwarding(cableIsp);
  await lab.veth(
    { ns: router, name: 'enp2s0' },
    { ns: cableIsp, name: 'cust', address: CABLE_LEASES[0].server },
  );
  await lab.exec(cableIsp, ['sysctl', '-q', '-w', 'net.ipv4.conf.cust.rp_filter=1']);
  await lab.veth(
    { ns: cableIsp, name: 'upstream', address: '100.64.30.1/30' },
    { ns: topo.internet, name: 'isp-cable', address: '100.64.30.2/30' },
  );
  await lab.route(cableIsp, 'default', 'via', '100.64.30.2');
  await lab.route(topo.internet, '198.51.100.0/24', 'via', '100.64.30.1');
  await waitOperUp(lab, router, ['enp2s0']);
  const dhcpServer = await startDhcpServer(lab, cableIsp, 'cust', join(dir, 'dnsmasq'), {
    address: CABLE_LEASES[0].server,
    range: CABLE_LEASES[0].range,
    netmask: CABLE_LEASES[0].netmask,
  });
  const dhcpClient = await startDhcpClient(lab, router, 'enp2s0', join(dir, 'dhclient'));
  return { topo, router, cableIsp, dir, dhcpServer, dhcpClient };
}

/**
 * The ISP renumbers its customers: its server now sits in the other half of the /24 and hands
 * out addresses there. The router's client, restarted, asks for its old lease, is told NAK,
 * and takes a new address with a new gateway.
 */
export async function renumberCable(lab: Lab, branch: BranchLab, to: 0 | 1): Promise<void> {
  const next = CABLE_LEASES[to];
  const previous = CABLE_LEASES[to === 0 ? 1 : 0];
  await branch.dhcpClient.stop();
  await branch.dhcpServer.stop();
  await lab.run(['ip', '-n', branch.cableIsp, 'addr', 'del', previous.server, 'dev', 'cust']);
  await lab.addr(branch.cableIsp, 'cust', next.server);
  branch.dhcpServer = await startDhcpServer(lab, branch.cableIsp, 'cust', join(branch.dir, 'dnsmasq'), {
    address: next.server,
    range: next.range,
    netmask: next.netmask,
  });
  branch.dhcpClient = await startDhcpClient(lab, branch.router, 'enp2s0', join(branch.dir, 'dhclient'));
}

/** Plugs the LTE modem in: wwan0 appears with an address and the modem's DHCP-style default route. */
export async function plugLte(lab: Lab, branch: BranchLab): Promise<void> {
  const lte = await lab.netns('isp-lte');
  await lab.forwarding(lte);
  await lab.veth(
    { ns: branch.router, name: 'wwan0', address: '10.100.9.2/30' },
    { ns: lte, name: 'cust', address: '10.100.9.1/30' },
  );
  await waitOperUp(lab, branch.router, ['wwan0']);
  await lab.run([
    'ip',
    '-n',
    branch.router,
    'route',
    'add',
    'default',
    'via',
    '10.100.9.1',
    'dev',
    'wwan0',
    'proto',
    'dhcp',
    'metric',
    '300',
  ]);
}

export async function unplugLte(lab: Lab, branch: BranchLab): Promise<void> {
  await lab.run(['ip', '-n', branch.router, 'link', 'del', 'wwan0']);
}

export interface AgentDaemon {
  readonly process: LabProcess;
  /** The daemon's own state directory (a temporary one per daemon). */
  readonly stateDir: string;
  call(method: string, params: unknown): Promise<Record<string, unknown>>;
  status(): Promise<StatusResult>;
  /** apply + confirm; throws on an error answer. */
  applyConfirmed(desired: DesiredState, generation: string): Promise<void>;
  /** Polls `condition` (no timing asserted: the deadline is a safety net); the daemon's log on failure. */
  waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  exec(...argv: string[]): Promise<string>;
  close(): Promise<void>;
}

/** The built agent daemon in `router`, probes off, its state and socket in a directory of its own. */
export async function startAgentDaemon(lab: Lab, router: string): Promise<AgentDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'uplink-agentd-'));
  const socket = join(dir, 'agent.sock');
  const proc = lab.start(router, [
    process.execPath,
    join(ROOT, 'dist/uplink-agent.mjs'),
    'daemon',
    '--state-dir',
    join(dir, 'state'),
    '--socket',
    socket,
    '--no-probes',
  ]);
  const call = async (method: string, params: unknown) =>
    (await callOnSocket(socket, method, params)) as Record<string, unknown>;
  const waitFor: AgentDaemon['waitFor'] = async (what, condition, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (proc.child.exitCode !== null) throw new Error(`the daemon exited:\n${proc.stderr}`);
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; daemon log:\n${proc.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  await waitFor('the daemon to listen', () => proc.stderr.includes('listening on'));
  return {
    process: proc,
    stateDir: join(dir, 'state'),
    call,
    status: async () => resultSchemas.status.parse(await call('status', {})),
    applyConfirmed: async (desired, generation) => {
      const applied = resultSchemas.apply.parse(
        await call('apply', { desired, generation, confirmWithinMs: 60_000 }),
      );
      if (applied.pending !== null) await call('confirm', { generation });
    },
    waitFor,
    exec: async (...argv) => (await lab.exec(router, argv)).stdout,
    close: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
