/**
 * A fleet of simulated routers in this process (see sim-site.ts): each with its own state
 * directory, memory kernel, agent daemon and SSH port on 127.0.0.1. One host key is shared
 * by all of them; the fleet writes a known_hosts file that pins it per `[127.0.0.1]:port`,
 * and the controller key the routers accept.
 *
 * State directories go under /dev/shm when it exists: the agent fsyncs every journal
 * write, and a fleet of a thousand would otherwise measure the disk, not Uplink.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { DriftChange } from './apply-drift.js';
import { generateSimKeys, type SimKeys, writeControllerFiles } from './sim-keys.js';
import {
  type SimFault,
  type SimFaultKind,
  SimSite,
  type SimSiteContext,
  type SimSiteSpec,
} from './sim-site.js';

export type { DriftChange } from './apply-drift.js';
export type { SimFault, SimFaultKind, SimSiteSpec } from './sim-site.js';

export interface SimFleetOptions {
  readonly sites: readonly SimSiteSpec[];
  /** One-way latency added to every connection and every answer (ms). Default 0. */
  readonly latencyMs?: number;
  /** Faults in force from the start, by site name. */
  readonly failures?: Readonly<Record<string, readonly SimFault[]>>;
  /** Where the fleet's directory is made; default /dev/shm (else the OS temp dir). */
  readonly tmpRoot?: string;
  /** The controller's address in SSH_CONNECTION (the management-path guard). Default 192.0.2.250. */
  readonly controllerAddress?: string;
  /** The agents' drift watch (see SimSiteContext.watch); default off. */
  readonly watch?: SimSiteContext['watch'];
  /** Agent log lines; default: dropped. */
  readonly log?: (site: string, line: string) => void;
  /** The host and controller keys; default: new ones. The shards of one simulator share them. */
  readonly keys?: SimKeys;
}

/** How the controller reaches one simulated site. */
export interface SimTarget {
  readonly site: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** `ssh-ed25519 AAAA…`, the form of the spec's `management.hostKey`. */
  readonly hostKey: string;
}

export interface SimFleet {
  /** The fleet's directory: keys, known_hosts, one state directory per site. */
  readonly dir: string;
  readonly targets: readonly SimTarget[];
  readonly hostKey: string;
  readonly controllerKeyPath: string;
  readonly knownHostsPath: string;
  site(name: string): SimSite;
  inject(site: string, fault: SimFault): void;
  heal(site: string, kind?: SimFaultKind): void;
  drift(site: string, change: DriftChange): Promise<void>;
  /** Changes the fleet-wide latency at run time. */
  setLatency(ms: number): void;
  /** Stops every site and removes the fleet's directory. */
  close(): Promise<void>;
}

export async function startSimFleet(options: SimFleetOptions): Promise<SimFleet> {
  const names = new Set<string>();
  for (const s of options.sites) {
    if (names.has(s.name)) throw new Error(`site ${s.name}: listed twice`);
    names.add(s.name);
  }
  for (const name of Object.keys(options.failures ?? {})) {
    if (!names.has(name)) throw new Error(`failures: site ${name} is not in the fleet`);
  }
  const tmpRoot = options.tmpRoot ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dir = await mkdtemp(join(tmpRoot, 'uplink-fleet-sim-'));
  const keys = options.keys ?? generateSimKeys();
  let latency = options.latencyMs ?? 0;
  const context = {
    stateRoot: join(dir, 'sites'),
    hostPrivateKey: keys.hostPrivateKey,
    controllerPublicKey: keys.controllerPublicKey,
    controllerAddress: options.controllerAddress ?? '192.0.2.250',
    latencyMs: () => latency,
    log: options.log ?? (() => {}),
    watch: options.watch,
  };
  const sites = new Map<string, SimSite>();
  const closeAll = async () => {
    await Promise.all([...sites.values()].map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Bounded: each start reads and writes a few state files.
    const limit = pLimit(32);
    const started = await Promise.all(options.sites.map((spec) => limit(() => SimSite.start(spec, context))));
    for (const site of started) sites.set(site.spec.name, site);
  } catch (error) {
    await closeAll();
    throw error;
  }
  for (const [name, faults] of Object.entries(options.failures ?? {})) {
    for (const fault of faults) sites.get(name)!.inject(fault);
  }
  const targets: SimTarget[] = [...sites.values()].map((s) => ({
    site: s.spec.name,
    host: '127.0.0.1',
    port: s.port,
    user: s.spec.user ?? 'uplink',
    hostKey: keys.hostKeyLine,
  }));
  const files = await writeControllerFiles(dir, keys, targets);
  const site = (name: string): SimSite => {
    const found = sites.get(name);
    if (found === undefined) throw new Error(`site ${name} is not in the simulated fleet`);
    return found;
  };
  let closing: Promise<void> | undefined;
  return {
    dir,
    targets,
    hostKey: keys.hostKeyLine,
    ...files,
    site,
    inject: (name, fault) => site(name).inject(fault),
    heal: (name, kind) => site(name).heal(kind),
    drift: (name, change) => site(name).drift(change),
    setLatency: (ms) => {
      latency = ms;
    },
    close: () => {
      closing ??= closeAll();
      return closing;
    },
  };
}
