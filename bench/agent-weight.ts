// Usage (root): node scripts/build.mjs && npx esbuild bench/agent-weight.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-weight.mjs && node dist/bench-weight.mjs [seconds=20] [events=100000]
/**
 * The agent daemon's weight on a router (issue: a lighter agent), in the two-uplink failover
 * lab of test/health-lab.ts (real namespaces, real probes):
 * - steady RSS of the daemon with both uplinks probed (ICMP every 500 ms — the lab's default
 *   interval is 1 s; 500 ms is the example fleet's), median of one sample a second after a
 *   warm-up, against an idle `node` (`setInterval` doing nothing) started beside it in the same
 *   namespace and sampled at the same moments — the in-run baseline;
 * - the same for each V8 flag set tried (what the systemd unit could pass);
 * - idle CPU with probes off: utime+stime of the daemon over a window, as % of one core,
 *   with the idle node's over the same window;
 * - RSS before and after N simulated kernel events (`ip -batch` adding and deleting a rule
 *   the agent does not own: each is one netlink notification the daemon's `ip monitor` reads
 *   and classifies), and the journal size and drift items after them.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resultSchemas } from '../agent/src/model/protocol.js';
import { ROOT } from '../test/build-dist.js';
import { buildFailoverLab, compileFailoverSite, until } from '../test/health-lab.js';
import { callOnSocket } from '../test/lab/json-lines.js';
import { Lab, type LabProcess } from '../test/lab/lab.js';
import { median } from './median.js';

const SECONDS = Math.max(5, Number(process.argv[2] ?? 20));
const EVENTS = Number(process.argv[3] ?? 100_000);
const TICKS = 100; // USER_HZ on Linux

const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
};
const cpuTicks = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const lab = new Lab('benchwt');
const dirs: string[] = [];
try {
  const topo = await buildFailoverLab(lab);
  const desired = compileFailoverSite({ interval: '500ms', timeout: '400ms' });

  const startDaemon = async (flags: readonly string[], probes: boolean) => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-weight-'));
    dirs.push(dir);
    const socket = join(dir, 'agent.sock');
    const proc = lab.start(topo.router, [
      process.execPath,
      ...flags,
      join(ROOT, 'dist/uplink-agent.mjs'),
      'daemon',
      '--state-dir',
      join(dir, 'state'),
      '--socket',
      socket,
      ...(probes ? [] : ['--no-probes']),
    ]);
    const call = async (method: string, params: unknown) =>
      (await callOnSocket(socket, method, params)) as Record<string, unknown>;
    await until(async () => proc.stderr.includes('listening on'), 'the daemon to listen', 20_000);
    await call('apply', { desired, generation: 'g1', confirmWithinMs: 60_000 });
    await call('confirm', { generation: 'g1' });
    const status = async () => resultSchemas.status.parse(await call('status', {}));
    if (probes) {
      await until(
        async () => (await status()).health.every((h) => h.state === 'up'),
        'both uplinks up',
        20_000,
      );
    }
    return { proc, dir, status };
  };
  const idleNode = (flags: readonly string[] = []): LabProcess =>
    lab.start(topo.router, [process.execPath, ...flags, '-e', 'setInterval(() => {}, 1000)']);

  /** RSS of the daemon and an idle node, sampled together once a second after a warm-up. */
  const weigh = async (flags: readonly string[]) => {
    const daemon = await startDaemon(flags, true);
    const idle = idleNode();
    await sleep(Math.min(10, SECONDS / 2) * 1000);
    const d: number[] = [];
    const n: number[] = [];
    for (let i = 0; i < SECONDS; i++) {
      d.push(rssKb(daemon.proc.pid!));
      n.push(rssKb(idle.pid!));
      await sleep(1000);
    }
    await daemon.proc.stop();
    await idle.stop();
    return { daemon: median(d) / 1024, idle: median(n) / 1024, max: Math.max(...d) / 1024 };
  };

  console.log(`agent weight (${new Date().toISOString()}, node ${process.version}, ${SECONDS} s windows)`);
  const variants: (readonly string[])[] = [
    [],
    ['--max-semi-space-size=1'],
    ['--lite-mode'],
    ['--lite-mode', '--max-semi-space-size=1'],
    ['--jitless', '--max-semi-space-size=1'],
  ];
  for (const flags of variants) {
    const w = await weigh(flags);
    console.log(
      `RSS, two probed uplinks, flags [${flags.join(' ') || 'none'}]: daemon median ${w.daemon.toFixed(1)} MB (max ${w.max.toFixed(1)}), ` +
        `idle node ${w.idle.toFixed(1)} MB: ${(w.daemon / w.idle).toFixed(2)}× (target ≤ 1.3×)`,
    );
  }

  // Idle CPU, probes off.
  {
    const daemon = await startDaemon([], false);
    const idle = idleNode();
    await sleep(5000);
    const d0 = cpuTicks(daemon.proc.pid!);
    const n0 = cpuTicks(idle.pid!);
    const t0 = Date.now();
    await sleep(SECONDS * 3 * 1000);
    const secs = (Date.now() - t0) / 1000;
    const pct = (ticks: number) => ((100 * ticks) / TICKS / secs).toFixed(3);
    console.log(
      `idle CPU, probes off, over ${secs.toFixed(0)} s: daemon ${pct(cpuTicks(daemon.proc.pid!) - d0)} % of a core, ` +
        `idle node ${pct(cpuTicks(idle.pid!) - n0)} % (target ≤ 0.2 %)`,
    );

    // Kernel events: a rule nobody owns, added and deleted EVENTS/2 times.
    const before: number[] = [];
    for (let i = 0; i < 5; i++) {
      before.push(rssKb(daemon.proc.pid!));
      await sleep(1000);
    }
    const journal = async () => (await stat(join(daemon.dir, 'state', 'journal.jsonl'))).size;
    const journal0 = await journal();
    const batch = join(daemon.dir, 'events.batch');
    const chunk = 10_000;
    const c0 = cpuTicks(daemon.proc.pid!);
    const e0 = Date.now();
    for (let sent = 0; sent < EVENTS; sent += chunk) {
      const lines: string[] = [];
      for (let i = 0; i < chunk / 2; i++)
        lines.push(
          'rule add priority 5 from 192.0.2.99 table 250',
          'rule del priority 5 from 192.0.2.99 table 250',
        );
      await writeFile(batch, `${lines.join('\n')}\n`);
      await lab.exec(topo.router, ['ip', '-batch', batch]);
    }
    const eventSecs = (Date.now() - e0) / 1000;
    await sleep(3000);
    const eventCpu = cpuTicks(daemon.proc.pid!) - c0;
    const after: number[] = [];
    for (let i = 0; i < 5; i++) {
      after.push(rssKb(daemon.proc.pid!));
      await sleep(1000);
    }
    // A second round of the same: growth would show as a rise from the first round's level.
    for (let sent = 0; sent < EVENTS; sent += chunk) await lab.exec(topo.router, ['ip', '-batch', batch]);
    await sleep(3000);
    const after2: number[] = [];
    for (let i = 0; i < 5; i++) {
      after2.push(rssKb(daemon.proc.pid!));
      await sleep(1000);
    }
    const status = await daemon.status();
    console.log(
      `${EVENTS} kernel events in ${eventSecs.toFixed(1)} s (daemon CPU ${(eventCpu / TICKS).toFixed(2)} s): RSS ${(median(before) / 1024).toFixed(1)} MB before, ` +
        `${(median(after) / 1024).toFixed(1)} MB after, ${(median(after2) / 1024).toFixed(1)} MB after ${EVENTS} more; ` +
        `journal ${journal0} → ${await journal()} bytes; drift items ${status.drift?.items.length ?? 'n/a'}`,
    );
    await daemon.proc.stop();
    await idle.stop();
  }
} finally {
  await lab.cleanup();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}
