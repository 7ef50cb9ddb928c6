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
