// Usage (as root, from the repository root): node scripts/build.mjs && npx esbuild bench/apply-confirm.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-ac.mjs && node dist/bench-ac.mjs [runs=20] [sites=20] [--bridge node|socat]
/**
 * Commit-confirmed apply over real SSH, as the controller does it (controller/src/transport,
 * ssh2): connection 1 hello + apply, connection 2 hello + confirm. Against routers set up the
 * way a user would (deploy/agent/install.sh into a temporary root, OpenSSH sshd and the agent
 * daemon in each router namespace). Each apply flips one sysctl, so every apply changes
 * something and needs its confirm.
 *
 * (a) one site: median of RUNS apply+confirm, against the floor measured in the same run —
 *     a bare `ssh host true` (OpenSSH client, an unrestricted test-only key) — and, for
 *     reference, ssh2's own floor (connect + exec `true` on the unrestricted key).
 * (b) SITES sites at once: median of rounds of apply+confirm to every site in parallel,
 *     against a bare `ssh host true` to all of them in parallel.
 *
 * Target (issue 3/8): apply + confirm ≤ 2.2× the single-connection floor.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { applyAndConfirm } from '../controller/src/transport/apply-and-confirm.js';
import { AgentSession } from '../controller/src/transport/rpc-client.js';
import { connectSsh, type SshTarget } from '../controller/src/transport/ssh-transport.js';
import { buildDist } from '../test/build-dist.js';
import { Lab, type LabProcess } from '../test/lab/lab.js';
import { type NamespaceSshd, sshArgv, startSshdInNamespace } from '../test/lab/sshd-in-namespace.js';
import { managedRouterDesired } from '../test/managed-router-desired.js';
import { median } from './median.js';

const args = process.argv.slice(2);
const INNER = args[0] === '--inner';
const positional = args.filter((a) => /^\d+$/.test(a)).map(Number);
const RUNS = Math.max(20, positional[0] ?? 20);
const SITES = positional[1] ?? 20;
const ROUNDS = 7;
const BRIDGE = args.includes('--bridge') ? args[args.indexOf('--bridge') + 1]! : 'node';

interface SiteConfig {
  readonly site: string;
  readonly host: string;
  readonly hostKey: string;
  readonly knownHosts: string;
}

interface InnerConfig {
  readonly sites: readonly SiteConfig[];
  readonly controllerKey: string;
  readonly plainKey: string;
}

/** One uplink (`isp1`) with track and SNAT; management stays on main (rule 900). */
function desiredFor(site: string, rpFilter: '0' | '2'): DesiredState {
  return managedRouterDesired(site, { localTraffic: true, rpFilter });
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Runs argv to completion; rejects on a non-zero exit. */
function run(argv: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
}

/** `ssh host true` with the unrestricted test key. */
function sshTrue(config: InnerConfig, site: SiteConfig): Promise<void> {
  const sshd = { address: site.host, port: 22, knownHosts: site.knownHosts } as NamespaceSshd;
  return run(sshArgv(sshd, config.plainKey, 'root', ['true']));
}

/** ssh2's floor: connect, authenticate, exec `true`, wait for the channel to close. */
async function ssh2True(target: SshTarget): Promise<void> {
  const connection = await connectSsh(target, {});
  try {
    const channel = await connection.exec('true');
    await new Promise<void>((resolve) => {
      channel.on('close', () => resolve());
      channel.resume();
      channel.end();
    });
  } finally {
    connection.close();
  }
}

/** One connection through the forced command: hello + status, then close (what a confirm costs). */
async function rpcStatus(target: SshTarget): Promise<void> {
  const connection = await connectSsh(target, {});
  try {
    const session = await AgentSession.open(connection);
    await session.hello();
    await session.status();
    await session.close();
  } finally {
    connection.close();
  }
}

/** Runs inside the controller namespace; prints the figures. */
async function inner(configPath: string): Promise<void> {
  const config = JSON.parse(await readFile(configPath, 'utf8')) as InnerConfig;
  const controllerKey = await readFile(config.controllerKey);
  const plainKey = await readFile(config.plainKey);
  const target = (site: SiteConfig, privateKey: Buffer): SshTarget => ({
    site: site.site,
    host: site.host,
    user: 'root',
    hostKey: site.hostKey,
    privateKey,
  });
  const flips = new Map<string, number>();
  const applyOnce = async (site: SiteConfig) => {
    const n = (flips.get(site.site) ?? 0) + 1;
    flips.set(site.site, n);
    const desired = desiredFor(site.site, n % 2 === 0 ? '0' : '2');
    const outcome = await applyAndConfirm(target(site, controllerKey), desired, `g${n}`, 30_000);
    if (outcome.outcome !== 'applied' || outcome.attempts.apply !== 1 || outcome.attempts.confirm !== 1) {
      throw new Error(`${site.site}: ${JSON.stringify(outcome)}`);
    }
  };

  const one = config.sites[0]!;
  // Warm-up: first connections (sshd, page cache), first applies.
  for (let i = 0; i < 3; i++) {
    await sshTrue(config, one);
    await ssh2True(target(one, plainKey));
    await applyOnce(one);
  }
  const floor: number[] = [];
  const floorSsh2: number[] = [];
  const statuses: number[] = [];
  const applies: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    floor.push(await time(() => sshTrue(config, one)));
    floorSsh2.push(await time(() => ssh2True(target(one, plainKey))));
    statuses.push(await time(() => rpcStatus(target(one, controllerKey))));
    applies.push(await time(() => applyOnce(one)));
  }
  const f = median(floor);
  const a = median(applies);
  console.log(`(a) one site, ${RUNS} runs each, bridge ${BRIDGE}; node ${process.version}`);
  console.log(`  floor: ssh host true (OpenSSH client)     median ${f.toFixed(0)} ms`);
  console.log(`  ssh2 connect + exec true                   median ${median(floorSsh2).toFixed(0)} ms`);
  console.log(`  ssh2 rpc hello + status (forced command)   median ${median(statuses).toFixed(0)} ms`);
  console.log(
    `  apply + confirm (ssh2, two connections)    median ${a.toFixed(0)} ms = ${(a / f).toFixed(2)}× the floor (target ≤ 2.2×)`,
  );

  const all = config.sites;
  const parallelFloor: number[] = [];
  const parallelApplies: number[] = [];
  await Promise.all(all.map((site) => applyOnce(site)));
  for (let i = 0; i < ROUNDS; i++) {
    parallelFloor.push(await time(() => Promise.all(all.map((site) => sshTrue(config, site)))));
    parallelApplies.push(await time(() => Promise.all(all.map((site) => applyOnce(site)))));
  }
  const pf = median(parallelFloor);
  const pa = median(parallelApplies);
  console.log(`(b) ${all.length} sites at once, ${ROUNDS} rounds`);
  console.log(`  floor: ssh host true to all, in parallel   median ${pf.toFixed(0)} ms`);
  console.log(
    `  apply + confirm to all, in parallel        median ${pa.toFixed(0)} ms = ${(pa / pf).toFixed(2)}× the parallel floor, ${(pa / f).toFixed(1)}× the single floor`,
  );
}

interface Router {
  readonly ns: string;
  readonly sshd: NamespaceSshd;
  readonly daemon: LabProcess;
  readonly hostKey: string;
  readonly host: string;
}

async function startRouter(
  lab: Lab,
  ctrl: string,
  dir: string,
  index: number,
  keys: { controller: string; plain: string },
): Promise<Router> {
  const root = join(dir, `root${index}`);
  await lab.run([
    'sh',
    'deploy/agent/install.sh',
    '--controller-key',
    `${keys.controller}.pub`,
    '--prefix',
    root,
    '--user',
    'root',
    '--no-systemd',
    ...(BRIDGE === 'node' ? [] : ['--rpc-bridge', BRIDGE]),
  ]);
  // The floor's key: unrestricted, test-only (install.sh never writes one).
  const authorizedKeys = join(root, 'root/.ssh/authorized_keys');
  await writeFile(
    authorizedKeys,
    `${await readFile(authorizedKeys, 'utf8')}${await readFile(`${keys.plain}.pub`, 'utf8')}`,
  );
  const ns = await lab.netns(`r${index}`);
  const host = `10.77.${index}.2`;
  await lab.veth(
    { ns: ctrl, name: `m${index}`, address: `10.77.${index}.1/30` },
    { ns, name: 'mgmt0', address: `${host}/30` },
  );
  // The uplink: a veth pair inside the router (nothing answers on it; nothing needs to).
  await lab.exec(ns, ['ip', 'link', 'add', 'isp1', 'type', 'veth', 'peer', 'name', 'isp1peer']);
  await lab.exec(ns, ['ip', 'addr', 'add', '198.51.100.2/29', 'dev', 'isp1']);
  await lab.exec(ns, ['ip', 'link', 'set', 'isp1peer', 'up']);
  await lab.exec(ns, ['ip', 'link', 'set', 'isp1', 'up']);
  const sshd = await startSshdInNamespace(lab, ns, {
    address: host,
    dir: join(dir, `sshd${index}`),
    authorizedKeysFile: `${root}%h/.ssh/authorized_keys`,
  });
  const hostKey = (await readFile(join(dir, `sshd${index}`, 'host_ed25519.pub'), 'utf8'))
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .join(' ');
  const daemon = lab.start(ns, [
    join(root, 'usr/local/bin/uplink-agent'),
    'daemon',
    '--state-dir',
    join(root, 'var/lib/uplink-agent'),
    '--socket',
    join(root, 'run/uplink-agent/agent.sock'),
  ]);
  const deadline = Date.now() + 30_000;
  while (!daemon.stderr.includes('listening on')) {
    if (daemon.child.exitCode !== null) throw new Error(`daemon ${index} exited: ${daemon.stderr}`);
    if (Date.now() > deadline) throw new Error(`daemon ${index} did not start: ${daemon.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ns, sshd, daemon, hostKey, host };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/apply-confirm.ts needs root (network namespaces)');
  buildDist();
  const lab = new Lab('acb');
  const dir = await mkdtemp(join(tmpdir(), 'uplink-acbench-'));
  try {
    const keys = { controller: join(dir, 'controller'), plain: join(dir, 'plain') };
    for (const key of Object.values(keys)) {
      await lab.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
    }
    const ctrl = await lab.netns('ctrl');
    const routers: Router[] = [];
    for (let i = 0; i < SITES; i++) routers.push(await startRouter(lab, ctrl, dir, i, keys));
    const config: InnerConfig = {
      sites: routers.map((r, i) => ({
        site: `bench-${i}`,
        host: r.host,
        hostKey: r.hostKey,
        knownHosts: r.sshd.knownHosts,
      })),
      controllerKey: keys.controller,
      plainKey: keys.plain,
    };
    const configPath = join(dir, 'inner.json');
    await writeFile(configPath, JSON.stringify(config));
    const result = await lab.exec(
      ctrl,
      [process.execPath, process.argv[1]!, '--inner', configPath, String(RUNS), '--bridge', BRIDGE],
      { timeoutMs: 1_200_000, allowFailure: true },
    );
    process.stdout.write(result.stdout);
    if (result.exitCode !== 0) throw new Error(`inner run failed: ${result.stderr}`);
  } finally {
    await lab.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

if (INNER) await inner(args[1]!);
else await main();
