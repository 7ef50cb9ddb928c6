/**
 * A router without its probe program (D83), at the daemon's level and without namespaces:
 * the agent daemon runs over its socket with the memory dataplane and a real probe runner
 * whose program does not exist. The applied state is confirmed, the probes keep trying, and
 * nothing fails over: no provider becomes down, the kernel keeps every provider's routes,
 * nothing is flushed, and `status` — validated by the protocol's strict schema — carries the
 * reason as `probeError`, logged once per provider.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningDaemon, startDaemon } from '../agent/src/daemon/daemon.js';
import { MemoryDataplane } from '../agent/src/dataplane/memory.js';
import { HealthMonitor } from '../agent/src/health/health-monitor.js';
import { processProbeRunner } from '../agent/src/health/run-probe.js';
import { resultSchemas } from '../agent/src/model/protocol.js';
import { until } from './health-lab.js';
import { callOnSocket } from './lab/json-lines.js';
import { exampleDesiredState, exampleFacts, withContentHash } from './support/example-desired-state.js';

let dir: string;
let daemon: RunningDaemon | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-noping-'));
});
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('the agent daemon without its probe program', () => {
  it('never fails over, flushes nothing, and says why in status', async () => {
    const dataplane = new MemoryDataplane({ facts: exampleFacts() });
    const logs: string[] = [];
    const flushed: string[] = [];
    const runner = processProbeRunner({ prefix: [join(dir, 'no-such-ping')] });
    let probes = 0;
    const health = new HealthMonitor({
      readFacts: () => dataplane.readFacts(),
      log: (line) => logs.push(line),
      probe: (request) => {
        probes++;
        return runner(request);
      },
      flushConntrack: async (mark) => {
        flushed.push(`mark ${mark}`);
        return 0;
      },
      flushNat: async (address) => {
        flushed.push(`nat ${address}`);
        return 0;
      },
    });
    const socketPath = join(dir, 'agent.sock');
    daemon = await startDaemon({
      stateDir: dir,
      socketPath,
      dataplane: () => dataplane,
      log: (line) => logs.push(line),
      health,
      // Follows health changes; no kernel events in memory, no periodic check needed.
      watch: { fullCheckMs: 3_600_000 },
    });
    const example = exampleDesiredState();
    const desired = withContentHash({
      ...example,
      providers: example.providers.map((p) => ({
        ...p,
        health: { ...p.health, intervalMs: 100, timeoutMs: 50, failAfter: 2 },
      })),
    });
    await callOnSocket(socketPath, 'apply', { desired, generation: 'g1', confirmWithinMs: 60_000 });
    await callOnSocket(socketPath, 'confirm', { generation: 'g1' });
    const routesBefore = (await dataplane.readKernel({ sysctls: [] })).routes;
    const status = async () => resultSchemas.status.parse(await callOnSocket(socketPath, 'status', {}));

    // Many times failAfter rounds of each of the three providers.
    await until(async () => probes > 3 * 10, 'ten rounds of each provider', 20_000);
    const s = await status();
    expect(s.health.map((h) => [h.name, h.state, h.probing, h.loss])).toEqual([
      ['isp1', 'unknown', true, 0],
      ['isp2', 'unknown', true, 0],
      ['isp3', 'unknown', true, 0],
    ]);
    for (const h of s.health) expect(h.probeError).toMatch(/^cannot run .*no-such-ping: spawn .* ENOENT$/);
    expect((await dataplane.readKernel({ sysctls: [] })).routes).toEqual(routesBefore);
    expect(flushed).toEqual([]);
    expect(logs.filter((l) => l.includes('probes cannot run'))).toHaveLength(3);
    expect(logs.filter((l) => / → down/.test(l))).toEqual([]);
  });
});
