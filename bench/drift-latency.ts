// Usage (as root, from the repository root): npx esbuild bench/drift-latency.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-drift.mjs && node dist/bench-drift.mjs [trials=25]
/**
 * Drift detection latency against the real kernel: the agent daemon (runDaemon with ip
 * monitor, nft monitor and the 15 s nft poll, drift policy `report`, periodic check left at
 * 30 s so only events and the poll count) runs in a router namespace; each trial changes the kernel by
 * hand and polls `status` every 10 ms until the drift item appears. Reported: the median
 * and max from the kernel change to the item in status, for `ip rule del` (an rtnetlink
 * event) and `nft flush table inet uplink` (seen by nft monitor, D152; the poll before). Baseline, measured the same
 * way: one `status` round trip over the socket, the resolution of the measurement.
 *
 * Target (issue 5/8): median ≤ 1 s after a kernel change.
 */

import { buildDriftRouter, DriftDaemon, driftDesired } from '../test/agent-drift-lab.js';
import { Lab } from '../test/lab/lab.js';
import { median } from './median.js';

const TRIALS = Math.max(20, Number(process.argv[2] ?? 25));

async function until(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const lab = new Lab('driftbench');
try {
  const router = await buildDriftRouter(lab);
  const daemon = await DriftDaemon.start(lab, router, { fullCheckMs: 30_000 });
  try {
    await daemon.applyConfirmed(driftDesired('report'), 'bench');
    await until(async () => (await daemon.status()).drift?.checkedAt != null);

    const roundTrips: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const start = performance.now();
      await daemon.status();
      roundTrips.push(performance.now() - start);
    }

    const trial = async (tamper: string[], object: string, restore: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        await until(async () => (await daemon.status()).drift?.items.length === 0);
        const start = performance.now();
        await daemon.exec(...tamper);
        await until(async () =>
          ((await daemon.status()).drift?.items ?? []).some((item) => item.object === object),
        );
        times.push(performance.now() - start);
        await restore();
      }
      return times;
    };
    const generation = { n: 0 };
    const reapply = () => daemon.applyConfirmed(driftDesired('report'), `bench-${generation.n++}`);
    const rule = await trial(
      ['ip', 'rule', 'del', 'priority', '2000'],
      'rule priority 2000 from 198.51.100.2/32 lookup 101 proto 252',
      () =>
        daemon.exec(
          'ip',
          'rule',
          'add',
          'priority',
          '2000',
          'from',
          '198.51.100.2',
          'lookup',
          '101',
          'proto',
          '252',
        ),
    );
    const nft = await trial(
      ['nft', 'flush', 'table', 'inet', 'uplink'],
      'nft postrouting: oif ppp1 masquerade',
      reapply,
    );
    const row = (name: string, values: readonly number[]) =>
      `| ${name} | ${TRIALS} | ${median(values).toFixed(0)} ms | ${Math.max(...values).toFixed(0)} ms | ${(median(values) / median(roundTrips)).toFixed(0)}× |`;
    console.log(`baseline: status round trip, median ${median(roundTrips).toFixed(1)} ms over ${TRIALS}`);
    console.log('| kernel change | trials | median to drift in status | max | × status round trip |');
    console.log('|---|---|---|---|---|');
    console.log(row('`ip rule del` (rtnetlink event)', rule));
    console.log(row('`nft flush table inet uplink` (nft monitor, D152)', nft));
  } finally {
    await daemon.close();
  }
} finally {
  await lab.cleanup();
}
