/**
 * `node dist/fleet-sim.mjs --sites N --out DIR [options]`: a simulated fleet as its own
 * process, for benchmarks that measure the controller apart from the routers it talks to.
 *
 * Writes DIR/repo (a fleet repository whose sites point at the simulator's ports, host key
 * pinned), DIR/controller_ed25519, DIR/known_hosts and DIR/manifest.json, prints one line
 * `ready DIR/manifest.json`, and runs until SIGTERM/SIGINT or until its stdin closes. On
 * exit it prints its peak RSS to stderr.
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DriftChange } from './apply-drift.js';
import { generateFleetFiles, simSitesFromFleet, siteName, writeFleetFiles } from './generate-fleet.js';
import { startSimFleet } from './sim-fleet.js';
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
  --watch          run the agents' drift watch (periodic check every 30 s, events on hand edits)`;

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
      help: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.sites);
  if (values.help || values.out === undefined || !Number.isInteger(count) || count < 1) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const out = resolve(values.out);
  const spread = (k: number) => {
    const picks = new Set<string>();
    for (let j = 0; j < k; j++) picks.add(siteName(Math.floor(((j + 0.5) * count) / k)));
    return [...picks];
  };
  const sites = simSitesFromFleet(
    generateFleetFiles({ count }),
    values.preapply ? { generation: (hash) => `sim-${hash.slice(0, 12)}` } : undefined,
  );
  const failures = Object.fromEntries(
    spread(Number(values.unreachable)).map((s) => [s, [{ kind: 'refuse' as const }]]),
  );
  const fleet = await startSimFleet({
    sites,
    latencyMs: Number(values.latency),
    failures,
    ...(values.watch ? { watch: {} } : {}),
  });
  const drifted = spread(Number(values.drift)).map((site, j) => ({
    site,
    change: DRIFTS[j % DRIFTS.length]!,
  }));
  // An edit made before an agent's first check after its start-up apply would be repaired by
  // that check's follow (it re-applies the confirmed state to the current facts), so wait for it.
  for (const { site } of drifted) await firstCheckDone(fleet.site(site));
  for (const { site, change } of drifted) await fleet.drift(site, change);

  const ports = new Map(fleet.targets.map((t) => [t.site, t.port]));
  const repo = join(out, 'repo');
  await writeFleetFiles(
    repo,
    generateFleetFiles({
      count,
      variant: Number(values.variant),
      management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
      hostKey: fleet.hostKey,
    }),
  );
  const controllerKeyPath = join(out, 'controller_ed25519');
  const knownHostsPath = join(out, 'known_hosts');
  await copyFile(fleet.controllerKeyPath, controllerKeyPath);
  await copyFile(fleet.knownHostsPath, knownHostsPath);
  const manifest = join(out, 'manifest.json');
  await writeFile(
    manifest,
    JSON.stringify(
      {
        pid: process.pid,
        repo,
        controllerKeyPath,
        knownHostsPath,
        unreachable: Object.keys(failures),
        drifted,
        targets: fleet.targets,
      },
      null,
      2,
    ),
  );
  process.stdout.write(`ready ${manifest}\n`);

  await new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
    process.stdin.once('end', done);
    process.stdin.resume();
  });
  await fleet.close();
  process.stderr.write(`fleet-sim: peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`);
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
