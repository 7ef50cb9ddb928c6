// Usage (as root, from the repository root): node scripts/build.mjs && npx esbuild bench/failover-ipv6.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-failover-ipv6.mjs && node dist/bench-failover-ipv6.mjs [trials=10]
/**
 * IPv6 failover timing beside IPv4's, in one run, with the built agent daemon in the
 * test/dual-stack-lab.ts namespaces (two balanced dual-stack ISPs, an IPv4 and an IPv6 probe
 * target, the default health settings: 500 ms interval, 400 ms timeout, failAfter 3,
 * recoverAfter 5).
 *
 * - IPv6 loss → moved: isp1 starts dropping the IPv6 it forwards (its IPv4 keeps working,
 *   the link stays up: only the IPv6 probes can tell) until the IPv6 balanced route (table
 *   200, `::/0`) holds isp2 only. Polled every 10 ms. Restore → back likewise.
 * - IPv4 loss → moved, the baseline: the same with isp1 dropping everything IPv4, watching
 *   the IPv4 balanced route — what bench/failover.ts measures, here on the same machine and run.
 *
 * Target (issue: dual-stack): IPv6 loss → moved ≤ 3 s, the same as IPv4.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDualStackLab, compileDualStackSite, dropUpstream6 } from '../test/dual-stack-lab.js';
import { dropUpstream } from '../test/health-lab.js';
import { callOnSocket } from '../test/lab/json-lines.js';
import { Lab } from '../test/lab/lab.js';
import type { RouterTopology } from '../test/lab/router-topology.js';
import { median } from './median.js';

const TRIALS = Math.max(10, Number(process.argv[2] ?? 10));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function balanceDevs(lab: Lab, topo: RouterTopology, family: '-4' | '-6'): Promise<string> {
  const { stdout } = await lab.exec(topo.router, ['ip', family, '-j', 'route', 'show', 'table', '200']);
  const routes = JSON.parse(stdout) as { dst: string; dev?: string; nexthops?: { dev: string }[] }[];
  const def = routes.find((r) => r.dst === 'default');
  return def === undefined ? '' : (def.nexthops?.map((n) => n.dev) ?? [def.dev!]).sort().join(',');
}

async function waitFor(lab: Lab, topo: RouterTopology, family: '-4' | '-6', want: string): Promise<number> {
  const start = performance.now();
  while ((await balanceDevs(lab, topo, family)) !== want) {
    if (performance.now() - start > 30_000) throw new Error(`balanced ${family} route never became ${want}`);
    await sleep(10);
  }
  return performance.now() - start;
}

async function main(): Promise<void> {
  const lab = new Lab('benchfo6');
  let dir: string | undefined;
  try {
    const topo = await buildDualStackLab(lab);
    dir = await mkdtemp(join(tmpdir(), 'uplink-benchfo6-'));
    const socket = join(dir, 'agent.sock');
    const daemon = lab.start(topo.router, [
      process.execPath,
      'dist/uplink-agent.mjs',
      'daemon',
      '--state-dir',
      dir,
      '--socket',
      socket,
    ]);
    const end = Date.now() + 20_000;
    while (!daemon.stderr.includes('listening on')) {
      if (Date.now() > end || daemon.child.exitCode !== null) throw new Error(`daemon: ${daemon.stderr}`);
      await sleep(50);
    }
    await callOnSocket(socket, 'apply', {
      desired: compileDualStackSite(),
      generation: 'g1',
      confirmWithinMs: 60_000,
    });
    await callOnSocket(socket, 'confirm', { generation: 'g1' });
    await waitFor(lab, topo, '-4', 'isp1,isp2');
    await waitFor(lab, topo, '-6', 'isp1,isp2');
    await sleep(3000);

    const isp1 = topo.isps[0]!.ns;
    const result = {
      v4: { down: [] as number[], up: [] as number[] },
      v6: { down: [] as number[], up: [] as number[] },
    };
    for (let i = 0; i < TRIALS; i++) {
      for (const family of ['v6', 'v4'] as const) {
        const flag = family === 'v6' ? '-6' : '-4';
        const drop = family === 'v6' ? dropUpstream6 : dropUpstream;
        // A random phase against the probe schedule, as a real outage has.
        await sleep(1000 + Math.random() * 500);
        await drop(lab, isp1, true);
        result[family].down.push(await waitFor(lab, topo, flag, 'isp2'));
        await sleep(500 + Math.random() * 500);
        await drop(lab, isp1, false);
        result[family].up.push(await waitFor(lab, topo, flag, 'isp1,isp2'));
      }
      process.stdout.write('.');
    }
    process.stdout.write('\n');
    daemon.child.kill('SIGTERM');
    await daemon.exited;

    const fmt = (xs: number[]) =>
      `median ${(median(xs) / 1000).toFixed(2)} s (min ${(Math.min(...xs) / 1000).toFixed(2)}, max ${(Math.max(...xs) / 1000).toFixed(2)}, n=${xs.length})`;
    console.log(
      'defaults: interval 500ms, timeout 400ms, failAfter 3, recoverAfter 5, one target per family',
    );
    console.log(
      `IPv6 loss → traffic moved:  ${fmt(result.v6.down)}  target ≤ 3 s ${median(result.v6.down) <= 3000 ? 'ok' : 'MISSED'}`,
    );
    console.log(`IPv6 restore → back:        ${fmt(result.v6.up)}`);
    console.log(`IPv4 loss → traffic moved:  ${fmt(result.v4.down)}  (baseline, same run)`);
    console.log(`IPv4 restore → back:        ${fmt(result.v4.up)}`);
  } finally {
    await lab.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

await main();
