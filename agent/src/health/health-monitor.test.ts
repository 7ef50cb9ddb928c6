import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../core/example-desired-state.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Health } from '../model/kernel-state.js';
import { HealthMonitor } from './health-monitor.js';
import type { ProbeRequest } from './run-probe.js';

/** Fast probing so the tests run in milliseconds; the verdict logic is the real one. */
function desiredWith(intervalMs = 5): DesiredState {
  const desired = exampleDesiredState();
  desired.providers = desired.providers.map((p) => ({
    ...p,
    health: { ...p.health, intervalMs, timeoutMs: intervalMs, failAfter: 3, recoverAfter: 2 },
  }));
  return desired;
}

async function until(check: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const monitors: HealthMonitor[] = [];
afterEach(async () => {
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});

function monitor(dead: Set<string>, extra: Partial<ConstructorParameters<typeof HealthMonitor>[0]> = {}) {
  const requests: ProbeRequest[] = [];
  const flushed: [number, number][] = [];
  const logs: string[] = [];
  const m = new HealthMonitor({
    readFacts: async () => exampleFacts(),
    log: (line) => logs.push(line),
    probe: async (request) => {
      requests.push(request);
      return dead.has(request.interface)
        ? { target: request.target, ok: false, error: 'no reply' }
        : { target: request.target, ok: true, rttMs: 2 };
    },
    flushConntrack: async (mark, mask) => {
      flushed.push([mark, mask]);
      return 1;
    },
    ...extra,
  });
  monitors.push(m);
  return { m, requests, flushed, logs };
}

describe('HealthMonitor', () => {
  it('probes each provider through its own interface and mark, the gateway by default', async () => {
    const { m, requests } = monitor(new Set());
    m.configure(desiredWith());
    await until(() => Object.keys(m.current()).length === 3, 'three verdicts');
    expect(m.current()).toEqual({ isp1: 'up', isp2: 'up', isp3: 'up' });
    const byInterface = Object.fromEntries(requests.map((r) => [r.interface, r]));
    // static gateway, PPP peer, detected DHCP gateway.
    expect(byInterface.eth1).toMatchObject({ target: '198.51.100.1', mark: 0x100, method: 'icmp' });
    expect(byInterface.ppp1).toMatchObject({ target: '203.0.113.1', mark: 0x200 });
    expect(byInterface.eth2).toMatchObject({ target: '192.0.2.1', mark: 0x300 });
    expect(m.report().map((r) => [r.name, r.state, r.probing, r.latencyMs])).toEqual([
      ['isp1', 'up', true, 2],
      ['isp2', 'up', true, 2],
      ['isp3', 'up', true, 2],
    ]);
  });

  it('reports a down provider once, flushes its mark once per down period, and recovers', async () => {
    const dead = new Set(['ppp1']);
    const { m, flushed } = monitor(dead);
    const changes: Health[] = [];
    m.onChange((h) => changes.push(h));
    m.configure(desiredWith());
    await until(() => m.current().isp2 === 'down', 'isp2 down');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ isp2: 'down' });
    await m.settled(m.current());
    await m.settled(m.current());
    expect(flushed).toEqual([[0x200, 0xff00]]);
    const transitions = m.report().find((r) => r.name === 'isp2')!.transitions;
    expect(transitions.at(-1)).toMatchObject({ from: 'unknown', to: 'down' });
    expect(transitions.at(-1)?.reason).toContain('3 failed rounds in a row');

    dead.clear();
    await until(() => m.current().isp2 === 'up', 'isp2 up');
    expect(changes).toHaveLength(2);
    await m.settled(m.current());
    expect(flushed).toHaveLength(1);
  });

  it('disabled probing: unknown, not probing, never down', async () => {
    const desired = desiredWith();
    desired.providers = desired.providers.map((p) => ({ ...p, health: { ...p.health, enabled: false } }));
    const { m, requests } = monitor(new Set(['eth1']));
    m.configure(desired);
    await new Promise((r) => setTimeout(r, 50));
    expect(requests).toEqual([]);
    expect(m.current()).toEqual({});
    expect(m.report().every((r) => r.state === 'unknown' && !r.probing)).toBe(true);
  });

  it('configure(null) stops probing and forgets the providers', async () => {
    const { m, requests } = monitor(new Set());
    m.configure(desiredWith());
    await until(() => requests.length > 3, 'some probes');
    m.configure(null);
    const count = requests.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(requests.length).toBe(count);
    expect(m.report()).toEqual([]);
  });

  it('keeps the verdict across a desired state that changes nothing probed', async () => {
    const { m } = monitor(new Set(['eth1']));
    m.configure(desiredWith());
    await until(() => m.current().isp1 === 'down', 'isp1 down');
    const next = desiredWith();
    next.rules = [];
    m.configure(next);
    expect(m.current().isp1).toBe('down');
  });

  it('runs the operator hook after settled with the transition in its environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-hook-'));
    try {
      const out = join(dir, 'events');
      const hook = join(dir, 'hook.sh');
      await writeFile(hook, `#!/bin/sh\necho "$SITE $PROVIDER $PREVIOUS>$STATE $REASON" >> ${out}\n`);
      await chmod(hook, 0o755);
      const { m } = monitor(new Set(['eth1']), { onTransition: hook });
      m.configure(desiredWith());
      await until(() => m.current().isp1 === 'down', 'isp1 down');
      await m.settled(m.current());
      await m.close();
      const lines = (await readFile(out, 'utf8')).trim().split('\n');
      expect(lines).toContain(
        'branch-1 isp1 unknown>down 3 failed rounds in a row: 0/1 targets answered, 1 needed (198.51.100.1 no reply)',
      );
      expect(lines.some((l) => l.startsWith('branch-1 isp2 unknown>up'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a hook that hangs is killed after its timeout and does not delay probing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-hook-'));
    try {
      const hook = join(dir, 'hook.sh');
      await writeFile(hook, '#!/bin/sh\nexec sleep 30\n');
      await chmod(hook, 0o755);
      const { m, requests, logs } = monitor(new Set(['eth1']), { onTransition: hook, hookTimeoutMs: 200 });
      m.configure(desiredWith());
      await until(() => m.current().isp1 === 'down', 'isp1 down');
      await m.settled(m.current());
      const count = requests.length;
      await until(() => requests.length > count + 5, 'probes continue while the hook runs');
      await until(() => logs.some((l) => l.includes('killed')), 'the hook killed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
