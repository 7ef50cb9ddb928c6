/**
 * Probes leave by their own uplink (D30, D31), proven with real packets: main's default
 * points at isp1, yet isp2's probe is counted at isp2; it keeps leaving by isp2 while isp2's
 * table has lost its default route (failover), and it fails — rather than answering through
 * isp1 — when isp2 is unavailable or its upstream drops everything.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinuxDataplane } from '../agent/src/dataplane/linux.js';
import { reconcile } from '../agent/src/engine/reconcile.js';
import { processProbeRunner } from '../agent/src/health/run-probe.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { Health } from '../agent/src/model/kernel-state.js';
import {
  buildFailoverLab,
  compileFailoverSite,
  countEchoes,
  dropUpstream,
  PROBE_TARGET,
} from './health-lab.js';
import { requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

requireRoot();
const lab = useLab('hprobe');
let topo: RouterTopology;
let stateDir: string;
let desired: DesiredState;
let dataplane: LinuxDataplane;

beforeAll(async () => {
  topo = await buildFailoverLab(lab.current);
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-hprobe-'));
  desired = compileFailoverSite();
  dataplane = new LinuxDataplane({ netns: topo.router, markMask: 0xff00 });
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const apply = (health: Health) => reconcile(dataplane, desired, health, { stateDir });

function probe(provider: 'isp1' | 'isp2') {
  const p = desired.providers.find((x) => x.name === provider)!;
  return processProbeRunner({ prefix: ['ip', 'netns', 'exec', topo.router] })({
    method: 'icmp',
    target: PROBE_TARGET,
    interface: p.interface,
    mark: p.mark,
    timeoutMs: 400,
  });
}

describe('ICMP probes go out of their own uplink', () => {
  it('isp2 is probed through isp2 although main points at isp1, also while isp2 is down', async () => {
    await apply({});
    const l = lab.current;
    const atIsp1 = await countEchoes(l, topo.isps[0]!.ns, PROBE_TARGET);
    const atIsp2 = await countEchoes(l, topo.isps[1]!.ns, PROBE_TARGET);

    const up = await probe('isp2');
    expect(up).toMatchObject({ ok: true, target: PROBE_TARGET });
    expect(up.rttMs).toBeGreaterThan(0);
    expect(await atIsp2()).toBe(1);
    expect(await atIsp1()).toBe(0);

    // Failover: isp2's default route is gone; the probe still leaves by isp2.
    await apply({ isp2: 'down' });
    const table = await l.exec(topo.router, ['ip', '-j', 'route', 'show', 'table', '102']);
    expect(table.stdout).not.toContain('"dst":"default"');
    expect((await probe('isp2')).ok).toBe(true);
    expect(await atIsp2()).toBe(2);
    expect(await atIsp1()).toBe(0);
    await l.exec(topo.isps[0]!.ns, ['nft', 'delete', 'table', 'ip', 'probecount']);
    await l.exec(topo.isps[1]!.ns, ['nft', 'delete', 'table', 'ip', 'probecount']);
  });

  it('an upstream drop at isp2 fails isp2 probes only, though isp1 could answer', async () => {
    await apply({});
    await dropUpstream(lab.current, topo.isps[1]!.ns, true);
    try {
      const failed = await probe('isp2');
      expect(failed.ok).toBe(false);
      expect(failed.error).toBeTruthy();
      // The target answers through isp1: the failure is isp2's alone. (Unmarked traffic takes
      // the balanced route, whose hash may pick either uplink — not a property to test here.)
      expect((await probe('isp1')).ok).toBe(true);
    } finally {
      await dropUpstream(lab.current, topo.isps[1]!.ns, false);
    }
  });

  it('an unavailable uplink (no carrier) fails its probe instead of leaking by another', async () => {
    const l = lab.current;
    await l.exec(topo.isps[1]!.ns, ['ip', 'link', 'set', 'cust', 'down']);
    try {
      const report = await apply({});
      expect(report.unavailable.map((u) => u.provider)).toEqual(['isp2']);
      expect((await probe('isp2')).ok).toBe(false);
      expect((await probe('isp1')).ok).toBe(true);
    } finally {
      await l.exec(topo.isps[1]!.ns, ['ip', 'link', 'set', 'cust', 'up']);
    }
  });

  it('TCP probes (socat) carry the mark and the device too', async () => {
    await apply({});
    const l = lab.current;
    const server = l.start(topo.internet, [
      'socat',
      `TCP4-LISTEN:8443,bind=${PROBE_TARGET},fork,reuseaddr`,
      'SYSTEM:true',
    ]);
    try {
      const runner = processProbeRunner({ prefix: ['ip', 'netns', 'exec', topo.router] });
      const request = (provider: 'isp1' | 'isp2') => {
        const p = desired.providers.find((x) => x.name === provider)!;
        return runner({
          method: 'tcp',
          target: PROBE_TARGET,
          tcpPort: 8443,
          interface: p.interface,
          mark: p.mark,
          timeoutMs: 1000,
        });
      };
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = (await request('isp2')).ok;
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ok).toBe(true);
      await dropUpstream(l, topo.isps[1]!.ns, true);
      try {
        expect((await request('isp2')).ok).toBe(false);
        expect((await request('isp1')).ok).toBe(true);
      } finally {
        await dropUpstream(l, topo.isps[1]!.ns, false);
      }
    } finally {
      await server.stop();
    }
  });
});
