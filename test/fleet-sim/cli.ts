/**
 * `node dist/fleet-sim.mjs --sites N --out DIR [options]`: a simulated fleet as its own
 * process, for benchmarks that measure the controller apart from the routers it talks to.
 *
 * Writes DIR/repo (a fleet repository whose sites point at the simulator's ports, host key
 * pinned), DIR/controller_ed25519, DIR/known_hosts and DIR/manifest.json, prints one line
 * `ready DIR/manifest.json`, and runs until SIGTERM/SIGINT or until its stdin closes. On
 * exit it prints its peak RSS to stderr.
 *
 * `--shards K` splits the fleet over K child processes (this same program with `--shard I/K`,
 * each running its contiguous share of the sites, every site still its own agent behind its
 * own SSH server): a simulated site holds two descriptors (its SSH listener and its agent's
 * socket), and one process's open-file limit (20,000 on the benchmark machine) does not fit
 * 10,000 sites. The shards share one host key and one controller key; this process merges
 * their manifests, writes the repository and reports the shards' peak RSS, summed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { DriftChange } from './apply-drift.js';
import { generateFleetFiles, simSitesFromFleet, siteName, writeFleetFiles } from './generate-fleet.js';
import { type SimTarget, startSimFleet } from './sim-fleet.js';
import { generateSimKeys, simKeysFromText, simKeysToText, writeControllerFiles } from './sim-keys.js';
import type { SimSite } from './sim-site.js';

const USAGE = `usage: fleet-sim --sites N --out DIR [--variant V] [--preapply] [--latency MS]
                 [--unreachable K] [--drift K] [--watch]
  --sites N        simulated routers (generated fleet, like fleet-repo-example's dual-isp sites)
  --out DIR        where the repository, keys, known_hosts and manifest.json go
  --variant V      the repository's change (isp1 balance weight 1+V); default 0
  --preapply       start every router with its compiled state of variant 0 applied and confirmed
  --latency MS     one-way latency on every connection and answer; default 0
  --unreachable K  K sites (spread over the fleet) reset every connection
  --drift K        after start (needs --preapply), K sites get a hand edit each
  --watch          run the agents' drift watch (periodic check every 30 s, events on hand edits)
  --shards K       run the sites in K child processes (each its own open-file limit); default 1`;

const DRIFTS: readonly DriftChange[] = ['delete-rule', 'sysctl', 'flush-nft', 'foreign-rule'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sites: { type: 'string' },
      out: { type: 'string' },
      variant: { type: 'string', default: '0' },
      preapply: { type: 'boolean', default: false },
      latency: { type: 'string', default: '0' },
      unreachable: { type: 'string', default: '0' },
      drift: { type: 'string', default: '0' },
      watch: { type: 'boolean', default: false },
      shards: { type: 'string', default: '1' },
      // Internal: this process is shard I of K (`I/K`), its keys in the file --keys names.
      shard: { type: 'string' },
      keys: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.sites);
  const shards = Number(values.shards);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  if (
    values.help ||
    values.out === undefined ||
    !Number.isInteger(count) ||
    count < 1 ||
    !Number.isInteger(shards) ||
    shards < 1 ||
    shards > count ||
    shard === null ||
    (shard !== undefined && values.keys === undefined)
  ) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const out = resolve(values.out);
  if (shard === undefined && shards > 1) return runShards(out, count, shards);

  const spread = (k: number) => {
    const picks = new Set<string>();
    for (let j = 0; j < k; j++) picks.add(siteName(Math.floor(((j + 0.5) * count) / k)));
    return [...picks];
  };
  // A shard runs its contiguous share of the fleet's sites; the picks below are the fleet's.
  const range = shard === undefined ? { from: 0, to: count } : shareOf(count, shard);
  const mine = (site: string) => {
    const index = Number(site.slice('site-'.length));
    return index >= range.from && index < range.to;
  };
  const sites = simSitesFromFleet(
    generateFleetFiles({ count }),
    values.preapply ? { generation: (hash) => `sim-${hash.slice(0, 12)}` } : undefined,
  ).filter((s) => mine(s.name));
  const failures = Object.fromEntries(
    spread(Number(values.unreachable))
      .filter(mine)
      .map((s) => [s, [{ kind: 'refuse' as const }]]),
  );
  const keys = values.keys === undefined ? undefined : simKeysFromText(await readFile(values.keys, 'utf8'));
  const fleet = await startSimFleet({
    sites,
    latencyMs: Number(values.latency),
    failures,
    ...(values.watch ? { watch: {} } : {}),
    ...(keys ? { keys } : {}),
  });
  const drifted = spread(Number(values.drift))
    .map((site, j) => ({ site, change: DRIFTS[j % DRIFTS.length]! }))
    .filter((d) => mine(d.site));
  // An edit made before an agent's first check after its start-up apply would be repaired by
  // that check's follow (it re-applies the confirmed state to the current facts), so wait for it.
  for (const { site } of drifted) await firstCheckDone(fleet.site(site));
  for (const { site, change } of drifted) await fleet.drift(site, change);

  const manifest = join(out, 'manifest.json');
  if (shard !== undefined) {
    // The parent writes the repository and the controller's files for the whole fleet.
    await writeFile(
      manifest,
      JSON.stringify({
        pid: process.pid,
        unreachable: Object.keys(failures),
        drifted,
        targets: fleet.targets,
      }),
    );
  } else {
    const controllerKeyPath = join(out, 'controller_ed25519');
    const knownHostsPath = join(out, 'known_hosts');
    await copyFile(fleet.controllerKeyPath, controllerKeyPath);
    await copyFile(fleet.knownHostsPath, knownHostsPath);
    await writeManifest(out, count, Number(values.variant), fleet.hostKey, {
      pid: process.pid,
      controllerKeyPath,
      knownHostsPath,
      unreachable: Object.keys(failures),
      drifted,
      targets: fleet.targets,
    });
  }
  process.stdout.write(`ready ${manifest}\n`);

  await stopRequested();
  await fleet.close();
  process.stderr.write(`fleet-sim: peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`);
}

interface Manifest {
  readonly pid: number;
  readonly controllerKeyPath: string;
  readonly knownHostsPath: string;
  readonly unreachable: readonly string[];
  readonly drifted: readonly { readonly site: string; readonly change: DriftChange }[];
  readonly targets: readonly SimTarget[];
}

/** Writes DIR/repo (the fleet at `variant`, each site at its simulator port) and DIR/manifest.json. */
async function writeManifest(
  out: string,
  count: number,
  variant: number,
  hostKey: string,
  manifest: Manifest,
): Promise<void> {
  const ports = new Map(manifest.targets.map((t) => [t.site, t.port]));
  const repo = join(out, 'repo');
  await writeFleetFiles(
    repo,
    generateFleetFiles({
      count,
      variant,
      management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
      hostKey,
    }),
  );
  const { pid, ...rest } = manifest;
  await writeFile(join(out, 'manifest.json'), JSON.stringify({ pid, repo, ...rest }, null, 2));
}

function parseShard(text: string): { index: number; of: number } | null {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  if (match === null) return null;
  const index = Number(match[1]);
  const of = Number(match[2]);
  return index < of ? { index, of } : null;
}

/** Shard I of K runs sites [from, to): contiguous shares, sizes differing by at most one. */
export function shareOf(count: number, shard: { index: number; of: number }): { from: number; to: number } {
  return {
    from: Math.floor((shard.index * count) / shard.of),
    to: Math.floor(((shard.index + 1) * count) / shard.of),
  };
}

/** The parent of a sharded simulator: starts the K shards, merges their manifests, stops them. */
async function runShards(out: string, count: number, shards: number): Promise<void> {
  const keys = generateSimKeys();
  await mkdir(out, { recursive: true });
  const keysPath = join(out, 'sim-keys.json');
  await writeFile(keysPath, simKeysToText(keys), { mode: 0o600 });
  // The same options, minus --shards and --out, for every shard.
  const passOn: string[] = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--shards' || arg === '--out') i++;
    else if (!arg.startsWith('--shards=') && !arg.startsWith('--out=')) passOn.push(arg);
  }
  const children: ChildProcess[] = [];
  const exits: Promise<{ code: number | null; stderr: string }>[] = [];
  const stopAll = async () => {
    for (const child of children) child.stdin?.end();
    return Promise.all(exits);
  };
  let manifests: Manifest[];
  try {
    manifests = await Promise.all(
      Array.from({ length: shards }, async (_, index) => {
        const dir = join(out, `shard-${index}`);
        await mkdir(dir, { recursive: true });
        const child = spawn(
          process.execPath,
          [
            ...process.execArgv,
            process.argv[1]!,
            ...passOn,
            '--out',
            dir,
            '--shard',
            `${index}/${shards}`,
            '--keys',
            keysPath,
          ],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const exited = new Promise<{ code: number | null; stderr: string }>((done) =>
          child.once('exit', (code) => done({ code, stderr })),
        );
        exits.push(exited);
        const line = await new Promise<string | undefined>((done) => {
          createInterface({ input: child.stdout! }).once('line', done);
          void exited.then(() => done(undefined));
        });
        const path = line === undefined ? undefined : /^ready (.+)$/.exec(line)?.[1];
        if (path === undefined) {
          const { code } = await exited;
          throw new Error(`shard ${index}/${shards} exited (${code}) before ready:\n${stderr}`);
        }
        return JSON.parse(await readFile(path, 'utf8')) as Manifest;
      }),
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
  const targets = manifests.flatMap((m) => m.targets);
  const files = await writeControllerFiles(out, keys, targets);
  const { values } = parseArgs({ args: passOn, options: { variant: { type: 'string' } }, strict: false });
  await writeManifest(out, count, Number(values.variant ?? 0), keys.hostKeyLine, {
    pid: process.pid,
    ...files,
    unreachable: manifests.flatMap((m) => m.unreachable),
    drifted: manifests.flatMap((m) => m.drifted),
    targets,
  });
  process.stdout.write(`ready ${join(out, 'manifest.json')}\n`);
  await stopRequested();
  const ended = await stopAll();
  const peaks = ended.map((e) => Number(/peak RSS (\d+) MB/.exec(e.stderr)?.[1] ?? Number.NaN));
  for (const [index, e] of ended.entries()) {
    if (e.code !== 0) process.stderr.write(`fleet-sim: shard ${index} exited ${e.code}:\n${e.stderr}`);
  }
  process.stderr.write(
    `fleet-sim: peak RSS ${peaks.reduce((a, b) => a + b, 0)} MB (${shards} shards: ${peaks.join(' + ')} MB)\n`,
  );
}

/** Resolves on SIGTERM, SIGINT or the end of stdin. */
function stopRequested(): Promise<void> {
  return new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
    process.stdin.once('end', done);
    process.stdin.resume();
  });
}

/** Waits for the agent's first drift check (none without --watch: nothing to wait for). */
async function firstCheckDone(site: SimSite): Promise<void> {
  const watch = site.daemon.watch;
  if (watch === undefined) return;
  const deadline = Date.now() + 30_000;
  while (watch.report() === null) {
    if (Date.now() > deadline) throw new Error(`${site.spec.name}: no drift check within 30 s of start`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `fleet-sim: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
