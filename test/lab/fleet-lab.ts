/**
 * A whole fleet in network namespaces, for `make demo` and for end-to-end tests: one router
 * per site of a fleet repository (fleet-repo-example by default), each shaped like its spec
 * (see fleet-lab-sites.ts and site-topology.ts):
 *
 *                                    ┌── isp-<uplink 1> ──┐
 *   ctrl ── br0 ── mgmt0 router ┼── isp-<uplink 2> ──┼── internet (203.0.113.x on lo)
 *   192.0.2.1/24   (spec's      └── …              ──┘
 *                  management         │
 *                  address)          lan (one host per LAN subnet, .10)
 *
 * Each router runs the real OpenSSH sshd on its management address and the real agent
 * daemon, installed the way a user installs it (deploy/agent/install.sh into a per-router
 * prefix, the controller's key restricted to `uplink-agent rpc`; user root, so the lab creates
 * no system user). The lab's fleet repository is a copy of the source with each site's
 * `management` (address, pinned host key, user) pointing at its lab router, seeded into a
 * bare repository `<dir>/fleet.git` with a working clone `<dir>/fleet`.
 *
 * Processes run detached (their output in log files under `dir`), and everything created is
 * recorded in `<dir>/lab.json` as it is created, so the lab can outlive the process that
 * built it (`release()`, used by `uplink-lab up`) and another process can remove exactly
 * that (`stopFleetLab(dir)`, `uplink-lab down`). Until released, a process exit or
 * SIGINT/SIGTERM tears the lab down.
 *
 * Usage in a test (root required, dist/uplink-agent.mjs built — see test/build-dist.ts):
 *
 *   const lab = await startFleetLab({ dir: await mkdtemp(...), sites: ['lartc-split', 'home-pppoe'] });
 *   // lab.controllerNs: run the controller there (lab.run(lab.controllerNs, argv) or lab.spawn)
 *   // lab.controllerKey, lab.knownHosts, lab.repo.bare / lab.repo.work, lab.site('home-pppoe').ns
 *   await lab.stop();
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { ValidSite } from '../../controller/src/spec/valid-site.js';
import {
  type FleetLabRecord,
  killRecordedProcesses,
  type LabProcessRecord,
  processStartTime,
  readRecord,
  teardownRecord,
  writeRecord,
} from './fleet-lab-record.js';
import { readSites, seedFleetRepo, writeLabFleet } from './fleet-lab-repo.js';
import { planSiteLab } from './fleet-lab-sites.js';
import { type ExecOptions, type ExecResult, Lab } from './lab.js';
import { buildSiteTopology, waitOperUp } from './site-topology.js';
import { waitTcpListening, writeSshdFiles } from './sshd-in-namespace.js';

export const LAB_CONTROLLER_ADDRESS = '192.0.2.1';

export interface FleetLabOptions {
  /** Lab directory: created; must not hold another lab (stop that one first). */
  readonly dir: string;
  /** Source fleet repository (default `fleet-repo-example`, relative to the working directory). */
  readonly repo?: string;
  /** Sites to build (default: every site of the repository); the copy holds only these. */
  readonly sites?: readonly string[];
  /**
   * Fixed names instead of unique per-process ones (the demo's, so the commands it prints
   * stay true): namespaces `<prefix>-ctrl`, `<prefix>-<site>-router`, `-lan`, `-internet`,
   * `-isp-<interface>`.
   */
  readonly namePrefix?: string;
  /** The agent bundle to install (default dist/uplink-agent.mjs). */
  readonly agentBundle?: string;
  /** Replaces the copy's fleet.yaml (e.g. shorter bakes for a test). */
  readonly fleetYaml?: string;
  /** Progress lines (default: silent). */
  readonly log?: (line: string) => void;
  /**
   * A second authorized_keys file every router's sshd reads beside the agent's (an sshd
   * AuthorizedKeysFile pattern, e.g. a benchmark's own unrestricted key for root).
   */
  readonly extraAuthorizedKeysFile?: string;
  /** install.sh's `--rpc-bridge` (default node: the installer's default). */
  readonly rpcBridge?: 'node' | 'socat';
}

export interface FleetLabUplink {
  /** The router's interface, as the spec names it. */
  readonly interface: string;
  readonly kind: 'subnet' | 'point-to-point' | 'dhcp';
  /** The ISP's namespace (its side of the link is `cust`). */
  readonly ispNs: string;
  readonly address: string;
  readonly gateway: string;
}

export interface FleetLabSite {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The router's namespace. */
  readonly ns: string;
  readonly lanNs: string | null;
  /** LAN hosts' addresses, one per LAN subnet. */
  readonly lanHosts: readonly string[];
  readonly internetNs: string;
  readonly internetHosts: readonly string[];
  readonly uplinks: readonly FleetLabUplink[];
  readonly mgmtAddress: string;
  readonly mgmtUser: 'root';
  /** The router sshd's host key, `ssh-ed25519 AAAA…` (pinned in the lab's fleet repo). */
  readonly hostKey: string;
  /** install.sh's files for this router. */
  readonly agent: {
    readonly root: string;
    readonly bin: string;
    readonly stateDir: string;
    readonly socket: string;
    readonly log: string;
  };
  readonly sshdLog: string;
}

/** Everything about a running lab that fits in JSON (kept in lab.json). */
export interface FleetLabInfo {
  readonly dir: string;
  /** The controller's namespace (run the controller there: it reaches every router). */
  readonly controllerNs: string;
  readonly controllerAddress: string;
  /** Private key the controller uses (`.pub` beside it is installed restricted on every router). */
  readonly controllerKey: string;
  /** known_hosts pinning every router's host key at its management address. */
  readonly knownHosts: string;
  readonly repo: {
    /** Bare repository the controller watches. */
    readonly bare: string;
    /** A clone of it to edit, commit and push from. */
    readonly work: string;
    /** The first commit. */
    readonly commit: string;
  };
  readonly sites: readonly FleetLabSite[];
}

export interface FleetLab extends FleetLabInfo {
  site(name: string): FleetLabSite;
  /** Runs argv in `ns` (null: the host) and waits; throws on a non-zero exit unless allowFailure. */
  run(ns: string | null, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a detached, recorded process (killed by `stop()`/`down`); output goes to `log`. */
  spawn(name: string, ns: string | null, argv: readonly string[], log: string): LabProcessRecord;
  /** Stops a recorded process by name and forgets it. */
  kill(name: string): Promise<void>;
  /** Stops and starts a site's agent daemon (its state dir is kept). */
  restartAgent(site: string): Promise<void>;
  /** Keeps everything running after this process exits (for `uplink-lab up`). */
  release(): void;
  /** Deletes every namespace, host link, process and file of the lab. */
  stop(): Promise<void>;
}

const live = new Set<FleetLabRecord>();
let exitHookInstalled = false;

export async function startFleetLab(options: FleetLabOptions): Promise<FleetLab> {
  const dir = resolve(options.dir);
  const log = options.log ?? (() => {});
  if (readRecord(dir) !== undefined) throw new Error(`${dir}: holds a lab already; stop it first`);
  mkdirSync(dir, { recursive: true });
  const record: FleetLabRecord = { version: 1, dir, namespaces: [], hostLinks: [], processes: [] };
  writeRecord(record);
  live.add(record);
  installExitHook();
  const runner = new Lab('run');
  runner.release();
  const lab = makeHandle(record, runner);
  try {
    const info = await build(options, dir, record, runner, lab, log);
    record.lab = info;
    writeRecord(record);
    return Object.assign(lab, info);
  } catch (error) {
    await lab.stop().catch(() => {});
    throw error;
  }
}

/** Tears down the lab recorded in `dir` (any process may call it); returns what could not be removed. */
export async function stopFleetLab(dir: string): Promise<string[]> {
  const record = readRecord(resolve(dir));
  if (record === undefined) return [];
  return teardownRecord(record, true);
}

/** The description of the lab recorded in `dir`, or undefined when there is none (or it is not up yet). */
export function readFleetLab(dir: string): { record: FleetLabRecord; info?: FleetLabInfo } | undefined {
  const record = readRecord(resolve(dir));
  if (record === undefined) return undefined;
  return record.lab === undefined ? { record } : { record, info: record.lab as FleetLabInfo };
}

/** Starts a detached process and records it in the lab recorded in `dir` (for `uplink-lab spawn`). */
export function spawnInFleetLab(
  dir: string,
  name: string,
  ns: string | null,
  argv: readonly string[],
  log: string,
): LabProcessRecord {
  const record = readRecord(resolve(dir));
  if (record === undefined) throw new Error(`${dir}: no lab here`);
  if (record.processes.some((p) => p.name === name && processStartTime(p.pid) === p.startTime))
    throw new Error(`${dir}: ${name} is running already`);
  const proc = spawnDetached(name, ns, argv, log);
  record.processes = [...record.processes.filter((p) => p.name !== name), proc];
  writeRecord(record);
  return proc;
}

function makeHandle(record: FleetLabRecord, runner: Lab): FleetLab {
  const handle = {
    site(name: string): FleetLabSite {
      const found = (record.lab as FleetLabInfo | undefined)?.sites.find((s) => s.name === name);
      if (found === undefined) throw new Error(`fleet lab: no site ${name}`);
      return found;
    },
    run(ns: string | null, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
      return ns === null ? runner.run(argv, options) : runner.exec(ns, argv, options);
    },
    spawn(name: string, ns: string | null, argv: readonly string[], logFile: string): LabProcessRecord {
      const proc = spawnDetached(name, ns, argv, logFile);
      record.processes.push(proc);
      writeRecord(record);
      return proc;
    },
    async kill(name: string): Promise<void> {
      const procs = record.processes.filter((p) => p.name === name);
      await killRecordedProcesses(procs);
      record.processes = record.processes.filter((p) => p.name !== name);
      writeRecord(record);
    },
    async restartAgent(siteName: string): Promise<void> {
      const site = handle.site(siteName);
      await handle.kill(`agent ${siteName}`);
      await startAgent(handle, site);
    },
    release(): void {
      live.delete(record);
    },
    async stop(): Promise<void> {
      live.delete(record);
      const problems = await teardownRecord(record, true);
      if (problems.length > 0) throw new Error(`fleet lab ${record.dir}: left behind ${problems.join('; ')}`);
    },
  };
  return handle as FleetLab;
}

async function build(
  options: FleetLabOptions,
  dir: string,
  record: FleetLabRecord,
  runner: Lab,
  lab: FleetLab,
  log: (line: string) => void,
): Promise<FleetLabInfo> {
  const source = resolve(options.repo ?? 'fleet-repo-example');
  const bundle = resolve(options.agentBundle ?? 'dist/uplink-agent.mjs');
  if (!existsSync(bundle))
    throw new Error(`${bundle}: no agent bundle; run \`node scripts/build.mjs\` first`);
  const allSites = await readSites(source);
  const names = options.sites ?? allSites.map((s) => s.name);
  const sites = names.map((name) => {
    const site = allSites.find((s) => s.name === name);
    if (site === undefined) throw new Error(`${source}: no valid site ${name}`);
    return site;
  });
  const addresses = new Set<string>();
  for (const site of sites) {
    if (site.management.address === LAB_CONTROLLER_ADDRESS || addresses.has(site.management.address))
      throw new Error(`site ${site.name}: management address ${site.management.address} is taken in the lab`);
    addresses.add(site.management.address);
  }
  const prefix = options.namePrefix;
  if (prefix !== undefined && !/^[a-z][a-z0-9-]{0,15}$/.test(prefix))
    throw new Error(`namePrefix ${JSON.stringify(prefix)}: at most 16 of a-z 0-9 -`);

  // The controller's key, installed restricted on every router.
  const controllerDir = join(dir, 'controller');
  mkdirSync(controllerDir, { recursive: true });
  const controllerKey = join(controllerDir, 'id_ed25519');
  await runner.run([
    'ssh-keygen',
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'uplink-controller',
    '-f',
    controllerKey,
  ]);

  // The management network: a bridge holding 192.0.2.1/24 in the controller's namespace. Never
  // on the host: the host may itself sit on 192.0.2.0/24 (this project's test machine does).
  const ctrlLab = new Lab('ctrl', prefix === undefined ? {} : { prefix });
  const controllerNs = await ctrlLab.netns('ctrl');
  keep(record, ctrlLab);
  const bridge = 'br0';
  await runner.run(['ip', '-n', controllerNs, 'link', 'add', 'name', bridge, 'type', 'bridge']);
  await runner.run(['ip', '-n', controllerNs, 'addr', 'add', `${LAB_CONTROLLER_ADDRESS}/24`, 'dev', bridge]);
  await runner.run(['ip', '-n', controllerNs, 'link', 'set', 'dev', bridge, 'up']);

  const built = await Promise.all(
    sites.map((site, i) =>
      buildSite(site, i + 1, {
        dir,
        record,
        lab,
        runner,
        controllerNs,
        bridge,
        prefix,
        bundle,
        log,
        extraAuthorizedKeysFile: options.extraAuthorizedKeysFile,
        rpcBridge: options.rpcBridge,
      }),
    ),
  );
  await waitOperUp(runner, controllerNs, ['br0']);

  const knownHosts = join(controllerDir, 'known_hosts');
  writeFileSync(knownHosts, built.map((s) => `${s.mgmtAddress} ${s.hostKey}\n`).join(''));

  const work = join(dir, 'fleet');
  const bare = join(dir, 'fleet.git');
  await writeLabFleet(
    source,
    work,
    built.map((s) => ({ site: s.name, address: s.mgmtAddress, hostKey: s.hostKey })),
    options.fleetYaml,
  );
  const commit = seedFleetRepo(work, bare);
  log(`fleet repository ${bare} (clone in ${work}) at ${commit.slice(0, 12)}`);
  return {
    dir,
    controllerNs,
    controllerAddress: LAB_CONTROLLER_ADDRESS,
    controllerKey,
    knownHosts,
    repo: { bare, work, commit },
    sites: built,
  };
}

interface BuildContext {
  readonly dir: string;
  readonly record: FleetLabRecord;
  readonly lab: FleetLab;
  readonly runner: Lab;
  readonly controllerNs: string;
  readonly bridge: string;
  readonly prefix: string | undefined;
  readonly bundle: string;
  readonly log: (line: string) => void;
  readonly extraAuthorizedKeysFile: string | undefined;
  readonly rpcBridge: 'node' | 'socat' | undefined;
}

async function buildSite(site: ValidSite, index: number, ctx: BuildContext): Promise<FleetLabSite> {
  const siteDir = join(ctx.dir, 'sites', site.name);
  mkdirSync(siteDir, { recursive: true });
  const plan = planSiteLab(site);
  const siteLab = new Lab(
    site.name,
    ctx.prefix === undefined ? {} : { prefix: `${ctx.prefix}-${site.name}` },
  );
  let topology: Awaited<ReturnType<typeof buildSiteTopology>>;
  try {
    topology = await buildSiteTopology(siteLab, {
      uplinks: plan.uplinks,
      internetHosts: plan.internetHosts,
      ...(plan.internetHosts6 === undefined ? {} : { internetHosts6: plan.internetHosts6 }),
      ...(plan.lan === undefined ? {} : { lan: plan.lan }),
      ...(plan.moreLans === undefined ? {} : { moreLans: plan.moreLans }),
    });
    await siteLab.veth(
      { ns: topology.router, name: 'mgmt0', address: `${site.management.address}/24` },
      { ns: ctx.controllerNs, name: `m${index}` },
    );
    await siteLab.run([
      'ip',
      '-n',
      ctx.controllerNs,
      'link',
      'set',
      'dev',
      `m${index}`,
      'master',
      ctx.bridge,
    ]);
    await waitOperUp(siteLab, topology.router, ['mgmt0']);
  } finally {
    keep(ctx.record, siteLab);
  }

  // The agent, installed the way a user installs it, and the router's sshd.
  const root = join(siteDir, 'root');
  await ctx.runner.run([
    'sh',
    'deploy/agent/install.sh',
    '--controller-key',
    join(ctx.dir, 'controller', 'id_ed25519.pub'),
    '--agent',
    ctx.bundle,
    '--prefix',
    root,
    '--user',
    'root',
    '--no-systemd',
    ...(ctx.rpcBridge === undefined ? [] : ['--rpc-bridge', ctx.rpcBridge]),
  ]);
  const sshd = await writeSshdFiles(ctx.runner, {
    address: site.management.address,
    dir: join(siteDir, 'sshd'),
    // sshd reads every file of a space-separated AuthorizedKeysFile list.
    authorizedKeysFile: [`${root}%h/.ssh/authorized_keys`, ctx.extraAuthorizedKeysFile]
      .filter((f) => f !== undefined)
      .join(' '),
  });
  const sshdLog = join(siteDir, 'sshd.log');
  const sshdProc = ctx.lab.spawn(
    `sshd ${site.name}`,
    topology.router,
    ['/usr/sbin/sshd', '-D', '-e', '-f', sshd.config],
    sshdLog,
  );
  await waitTcpListening(ctx.runner, topology.router, site.management.address, 22, () =>
    processStartTime(sshdProc.pid) === undefined
      ? `sshd ${site.name} exited: ${readLog(sshdLog)}`
      : undefined,
  );
  for (const t of plan.tcpTargets) {
    ctx.lab.spawn(
      `tcp ${site.name} ${t.address}:${t.port}`,
      topology.internet,
      ['socat', '-u', `TCP-LISTEN:${t.port},bind=${t.address},reuseaddr,fork`, 'OPEN:/dev/null'],
      join(siteDir, 'tcp-target.log'),
    );
  }
  const result: FleetLabSite = {
    name: site.name,
    labels: site.labels,
    ns: topology.router,
    lanNs: topology.lan?.ns ?? null,
    lanHosts: topology.lan?.hosts ?? [],
    internetNs: topology.internet,
    internetHosts: topology.internetHosts,
    uplinks: topology.uplinks.map((u) => ({
      interface: u.name,
      kind: u.kind,
      ispNs: u.ispNs,
      address: u.address,
      gateway: u.gateway,
    })),
    mgmtAddress: site.management.address,
    mgmtUser: 'root',
    hostKey: sshd.hostKey,
    agent: {
      root,
      bin: join(root, 'usr/local/bin/uplink-agent'),
      stateDir: join(root, 'var/lib/uplink-agent'),
      socket: join(root, 'run/uplink-agent/agent.sock'),
      log: join(siteDir, 'agent.log'),
    },
    sshdLog,
  };
  await startAgent(ctx.lab, result);
  ctx.log(`site ${site.name}: router ${result.ns}, management ${result.mgmtAddress}, agent and sshd up`);
  return result;
}

/** Starts the site's agent daemon and waits until it listens on its socket. */
async function startAgent(lab: Pick<FleetLab, 'spawn'>, site: FleetLabSite): Promise<void> {
  const before = readLog(site.agent.log).length;
  const proc = lab.spawn(
    `agent ${site.name}`,
    site.ns,
    [site.agent.bin, 'daemon', '--state-dir', site.agent.stateDir, '--socket', site.agent.socket],
    site.agent.log,
  );
  const deadline = Date.now() + 20_000;
  while (!readLog(site.agent.log).slice(before).includes('listening on')) {
    if (processStartTime(proc.pid) === undefined)
      throw new Error(`agent ${site.name} exited: ${readLog(site.agent.log).slice(before)}`);
    if (Date.now() > deadline)
      throw new Error(`agent ${site.name} did not start: ${readLog(site.agent.log)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Moves what a Lab created into the record (which now owns it) and detaches the Lab. */
function keep(record: FleetLabRecord, lab: Lab): void {
  const released = lab.release();
  record.namespaces.push(...released.namespaces);
  record.hostLinks.push(...released.hostLinks);
  writeRecord(record);
}

function spawnDetached(
  name: string,
  ns: string | null,
  argv: readonly string[],
  log: string,
): LabProcessRecord {
  const full = ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
  const fd = openSync(log, 'a');
  try {
    // Detached and on files, not pipes: the process must outlive us when the lab is released.
    const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', () => {});
    child.unref();
    if (child.pid === undefined) throw new Error(`${name}: could not start ${full.join(' ')}`);
    return { name, pid: child.pid, startTime: processStartTime(child.pid) ?? '', argv: full, log };
  } finally {
    closeSync(fd);
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort for a lab not released: kill its processes and delete its names synchronously.
  const cleanupAll = () => {
    for (const record of [...live]) {
      for (const p of record.processes)
        if (processStartTime(p.pid) === p.startTime)
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            // gone
          }
      for (const link of record.hostLinks) spawnSync('ip', ['link', 'del', link]);
      for (const ns of [...record.namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns]);
      live.delete(record);
    }
  };
  process.on('exit', cleanupAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Names of every namespace on this machine (for tests checking that nothing is left). */
export function listNamespaces(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}
