/**
 * Real DHCP in a lab: dnsmasq (Debian's dnsmasq-base) as the ISP's server and the ISC DHCP
 * client (isc-dhcp-client) on the router, each with its files in a directory of the test's
 * own. The client's configuration script is test/lab/dhclient-script.sh (addresses and the
 * default route only; see there why not Debian's).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../build-dist.js';
import type { Lab, LabProcess } from './lab.js';

/** From the repository root, so bench bundles in dist/ find it too. */
export const DHCLIENT_SCRIPT = join(ROOT, 'test/lab/dhclient-script.sh');

export interface DhcpServerOptions {
  /** The server's own address on `iface`, a CIDR (the lease's gateway unless `router` says otherwise). */
  readonly address: string;
  /** First and last address handed out. */
  readonly range: readonly [string, string];
  readonly netmask: string;
  /** Option 3 (router); default the server's own address. */
  readonly router?: string;
  /** Lease time, dnsmasq notation (default 2m, its minimum). */
  readonly lease?: string;
}

export interface DhcpServer {
  readonly process: LabProcess;
  stop(): Promise<void>;
}

/**
 * dnsmasq as a DHCP server only (no DNS: port 0) on `iface` in `ns`, authoritative, so a
 * client asking for an address it no longer hands out is told NAK at once and starts over.
 */
export async function startDhcpServer(
  lab: Lab,
  ns: string,
  iface: string,
  dir: string,
  options: DhcpServerOptions,
): Promise<DhcpServer> {
  await mkdir(dir, { recursive: true });
  const router = options.router ?? options.address.split('/')[0]!;
  const proc = lab.start(ns, [
    'dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    '--no-resolv',
    '--no-hosts',
    `--interface=${iface}`,
    '--bind-interfaces',
    '--dhcp-authoritative',
    `--dhcp-range=${options.range[0]},${options.range[1]},${options.netmask},${options.lease ?? '2m'}`,
    `--dhcp-option=3,${router}`,
    `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    '--log-dhcp',
    '--log-facility=-',
  ]);
  await waitForText(proc, /DHCP, IP range/, 10_000, 'dnsmasq to start');
  return { process: proc, stop: () => proc.stop() };
}

export interface DhcpClient {
  readonly process: LabProcess;
  /** The script's log lines: `<epoch.ns> <reason> <old> <new> <router>`. */
  events(): Promise<DhcpEvent[]>;
  stop(): Promise<void>;
}

export interface DhcpEvent {
  /** Milliseconds since the epoch, when the script had configured the kernel. */
  readonly at: number;
  readonly reason: string;
  readonly old: string | null;
  readonly address: string | null;
  readonly router: string | null;
}

/**
 * `dhclient -d` on `iface` in `ns`: lease file, pid file and configuration in `dir`, the
 * lab's configuration script. Starting it again with the same `dir` asks for the old lease
 * first, as a router's client does after a reboot.
 */
export async function startDhcpClient(
  lab: Lab,
  ns: string,
  iface: string,
  dir: string,
  options: { readonly metric?: number } = {},
): Promise<DhcpClient> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'dhclient.conf');
  const eventsFile = join(dir, 'events.log');
  await writeFile(config, 'timeout 30;\nretry 1;\ninitial-interval 1;\n');
  // dhclient runs its script with an environment of its own making: the settings go in a wrapper.
  const script = join(dir, 'dhclient-script');
  await writeFile(
    script,
    `#!/bin/sh\nUPLINK_DHCP_EVENTS='${eventsFile}' UPLINK_DHCP_METRIC='${options.metric ?? 100}' exec '${DHCLIENT_SCRIPT}' "$@"\n`,
    { mode: 0o755 },
  );
  const proc = lab.start(ns, [
    'dhclient',
    '-d',
    '-4',
    '-v',
    '-cf',
    config,
    '-sf',
    script,
    '-pf',
    join(dir, 'dhclient.pid'),
    '-lf',
    join(dir, 'dhclient.leases'),
    iface,
  ]);
  const events = async (): Promise<DhcpEvent[]> => {
    const text = await readFile(eventsFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [at, reason, old, address, router] = line.split(' ');
        const value = (v: string | undefined) => (v === undefined || v === '-' ? null : v);
        return {
          at: Number(at) * 1000,
          reason: reason!,
          old: value(old),
          address: value(address),
          router: value(router),
        };
      });
  };
  return { process: proc, events, stop: () => proc.stop() };
}

async function waitForText(
  proc: LabProcess,
  pattern: RegExp,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(proc.stderr + proc.stdout)) {
    if (proc.child.exitCode !== null)
      throw new Error(`${what}: exited ${proc.child.exitCode}: ${proc.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The lab's DHCPv6 configuration script: logs, then sources Uplink's dhclient hook (D155). */
export const DHCLIENT6_SCRIPT = join(ROOT, 'test/lab/dhclient6-script.sh');
export const DHCLIENT_EXIT_HOOK = join(ROOT, 'deploy/agent/dhclient-exit-hook.sh');

/**
 * ISC dhcpd in DHCPv6 mode (Debian's isc-dhcp-server) on `iface` in `ns`, delegating the
 * one prefix `delegate` (`2001:db8:1:100::/56`) from the `subnet6` of the interface's address.
 * Configuration, leases and pid in `dir`; run in the foreground, so the lab stops it by pid.
 */
export async function startDhcp6PdServer(
  lab: Lab,
  ns: string,
  iface: string,
  dir: string,
  options: { readonly subnet: string; readonly delegate: string },
): Promise<DhcpServer> {
  await mkdir(dir, { recursive: true });
  const [start, length] = options.delegate.split('/') as [string, string];
  const config = join(dir, 'dhcpd6.conf');
  await writeFile(
    config,
    `default-lease-time 600;\nmax-lease-time 7200;\nsubnet6 ${options.subnet} {\n  prefix6 ${start} ${start} /${length};\n}\n`,
  );
  const leases = join(dir, 'dhcpd6.leases');
  await writeFile(leases, '');
  const proc = lab.start(ns, [
    'dhcpd',
    '-6',
    '-f',
    '-d',
    '-cf',
    config,
    '-lf',
    leases,
    '-pf',
    join(dir, 'dhcpd6.pid'),
    iface,
  ]);
  await waitForText(proc, /Server starting service|Sending on\s+Socket/, 10_000, 'dhcpd -6 to start');
  return { process: proc, stop: () => proc.stop() };
}

export interface Dhcp6PdEvent {
  readonly at: number;
  readonly reason: string;
  readonly old: string | null;
  readonly prefix: string | null;
}

/**
 * `dhclient -6 -P -d` (prefix delegation only) on `iface` in `ns`, with Uplink's hook
 * telling the agent `agent` (argv of `uplink-agent`) with state dir `stateDir`.
 */
export async function startDhcp6PdClient(
  lab: Lab,
  ns: string,
  iface: string,
  dir: string,
  options: { readonly agent: readonly string[]; readonly stateDir: string },
): Promise<{ process: LabProcess; events(): Promise<Dhcp6PdEvent[]>; stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const eventsFile = join(dir, 'events.log');
  const agent = join(dir, 'uplink-agent');
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  await writeFile(agent, `#!/bin/sh\nexec ${options.agent.map(quote).join(' ')} "$@"\n`, { mode: 0o755 });
  // dhclient runs its script with an environment of its own making: the settings go in a wrapper.
  const script = join(dir, 'dhclient6-script');
  await writeFile(
    script,
    `#!/bin/sh\nUPLINK_DHCP_EVENTS=${quote(eventsFile)} UPLINK_DHCLIENT_HOOK=${quote(DHCLIENT_EXIT_HOOK)} UPLINK_AGENT=${quote(agent)} UPLINK_AGENT_STATE_DIR=${quote(options.stateDir)} exec ${quote(DHCLIENT6_SCRIPT)} "$@"\n`,
    { mode: 0o755 },
  );
  const config = join(dir, 'dhclient6.conf');
  await writeFile(config, 'timeout 30;\nretry 1;\ninitial-interval 1;\n');
  const proc = lab.start(ns, [
    'dhclient',
    '-6',
    '-P',
    '-d',
    '-v',
    '-cf',
    config,
    '-sf',
    script,
    '-pf',
    join(dir, 'dhclient6.pid'),
    '-lf',
    join(dir, 'dhclient6.leases'),
    iface,
  ]);
  const events = async (): Promise<Dhcp6PdEvent[]> => {
    const text = await readFile(eventsFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [at, reason, old, prefix] = line.split(' ');
        const value = (v: string | undefined) => (v === undefined || v === '-' ? null : v);
        return { at: Number(at) * 1000, reason: reason!, old: value(old), prefix: value(prefix) };
      });
  };
  return { process: proc, events, stop: () => proc.stop() };
}
