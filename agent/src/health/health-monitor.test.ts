import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Health } from '../model/kernel-state.js';
import { HealthMonitor } from './health-monitor.js';
import { type ProbeRequest, processProbeRunner } from './run-probe.js';

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
  const natFlushed: string[] = [];
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
    flushNat: async (address) => {
      natFlushed.push(address);
      return 2;
    },
    ...extra,
  });
  monitors.push(m);
  return { m, requests, flushed, natFlushed, logs };
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

  it('reports a down provider once, flushes its mark and NAT address once per down period, and recovers', async () => {
    const dead = new Set(['ppp1']);
    const { m, flushed, natFlushed, logs } = monitor(dead);
    const changes: Health[] = [];
    m.onChange((h) => changes.push(h));
    m.configure(desiredWith());
    await until(() => m.current().isp2 === 'down', 'isp2 down');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ isp2: 'down' });
    await m.settled(m.current());
    await m.settled(m.current());
    expect(flushed).toEqual([[0x200, 0xff00]]);
    // isp2 masquerades on ppp1, whose address (exampleFacts) is 203.0.113.5.
    expect(natFlushed).toEqual(['203.0.113.5']);
    expect(logs).toContain('health: isp2 down: flushed 2 conntrack entries NATed to 203.0.113.5');
    const transitions = m.report().find((r) => r.name === 'isp2')!.transitions;
    expect(transitions.at(-1)).toMatchObject({ from: 'unknown', to: 'down' });
    expect(transitions.at(-1)?.reason).toContain('3 failed rounds in a row');

    dead.clear();
    await until(() => m.current().isp2 === 'up', 'isp2 up');
    expect(changes).toHaveLength(2);
    await m.settled(m.current());
    expect(flushed).toHaveLength(1);
    expect(natFlushed).toHaveLength(1);

    // A new down period flushes again.
    dead.add('ppp1');
    await until(() => m.current().isp2 === 'down', 'isp2 down again');
    await m.settled(m.current());
    expect(natFlushed).toEqual(['203.0.113.5', '203.0.113.5']);
  });

  it('NAT flush: a fixed SNAT address as given, none without NAT, none while kept by the last resort', async () => {
    const desired = desiredWith();
    desired.providers = desired.providers.map((p) =>
      p.name === 'isp1'
        ? { ...p, snat: { kind: 'address' as const, address: '198.51.100.99' } }
        : p.name === 'isp3'
          ? { ...p, snat: { kind: 'none' as const } }
          : p,
    );
    const { m, flushed, natFlushed } = monitor(new Set(['eth1', 'ppp1', 'eth2']));
    m.configure(desired);
    await until(() => Object.values(m.current()).filter((v) => v === 'down').length === 3, 'all down');
    // The last resort (D32, D81): the kernel routes by all of them, nothing is flushed.
    await m.settled({ isp1: 'up', isp2: 'up', isp3: 'up' });
    expect([flushed, natFlushed]).toEqual([[], []]);
    await m.settled({ isp1: 'down', isp2: 'up', isp3: 'down' });
    expect(flushed).toEqual([
      [0x100, 0xff00],
      [0x300, 0xff00],
    ]);
    expect(natFlushed).toEqual(['198.51.100.99']);
  });

  it('NAT flush: every address masquerade may have used; none an up provider also uses', async () => {
    const desired = desiredWith();
    // isp3 (eth2, 192.0.2.50) shares its address as isp1's fixed SNAT address.
    desired.providers = desired.providers.map((p) =>
      p.name === 'isp1' ? { ...p, snat: { kind: 'address' as const, address: '192.0.2.50' } } : p,
    );
    const facts = exampleFacts();
    facts.interfaces.ppp1!.addresses.push({ address: '203.0.113.6', prefixLength: 32 });
    const { m, natFlushed, logs } = monitor(new Set(['eth1', 'ppp1']), { readFacts: async () => facts });
    m.configure(desired);
    await until(() => m.current().isp1 === 'down' && m.current().isp2 === 'down', 'isp1 and isp2 down');
    await m.settled({ isp1: 'down', isp2: 'down', isp3: 'up' });
    expect(natFlushed).toEqual(['203.0.113.5', '203.0.113.6']);
    expect(logs).toContain(
      'health: isp1 down: no NAT flush of 192.0.2.50, a provider that is up uses it too',
    );
    // Once isp3 is down too (and not the last resort), nothing live uses it any more.
    await m.settled({ isp1: 'down', isp2: 'down', isp3: 'down' });
    expect(natFlushed).toEqual(['203.0.113.5', '203.0.113.6', '192.0.2.50']);
  });

  it('NAT flush: facts that cannot be read are retried at the next settle, the mark flush is not repeated', async () => {
    let failing = false;
    const { m, flushed, natFlushed, logs } = monitor(new Set(['ppp1']), {
      readFacts: async () => {
        if (failing) throw new Error('ip: cannot open netlink socket');
        return exampleFacts();
      },
    });
    m.configure(desiredWith());
    await until(() => m.current().isp2 === 'down', 'isp2 down');
    failing = true;
    await m.settled({ isp2: 'down' });
    expect([flushed, natFlushed]).toEqual([[[0x200, 0xff00]], []]);
    expect(logs).toContain(
      'health: isp2: no NAT flush yet, the facts cannot be read: ip: cannot open netlink socket',
    );
    failing = false;
    await m.settled({ isp2: 'down' });
    expect([flushed, natFlushed]).toEqual([[[0x200, 0xff00]], ['203.0.113.5']]);
    await m.settled({ isp2: 'down' });
    expect(natFlushed).toEqual(['203.0.113.5']);
  });

  it('a failing NAT flush is logged and does not stop the mark flush of the next provider', async () => {
    const { m, flushed, logs } = monitor(new Set(['eth1', 'ppp1']), {
      flushNat: async () => {
        throw new Error('conntrack -D exited 1: Operation not permitted');
      },
    });
    m.configure(desiredWith());
    await until(() => m.current().isp1 === 'down' && m.current().isp2 === 'down', 'isp1 and isp2 down');
    await m.settled({ isp1: 'down', isp2: 'down', isp3: 'up' });
    expect(flushed).toEqual([
      [0x100, 0xff00],
      [0x200, 0xff00],
    ]);
    expect(logs).toContain(
      'health: isp1: conntrack flush of 198.51.100.10 failed: conntrack -D exited 1: Operation not permitted',
    );
  });

  it('probes that cannot run never fail over; the error is reported, and logged once per distinct error', async () => {
    let error = 'cannot run ping: spawn ping ENOENT';
    const { m, requests, logs } = monitor(new Set(), {
      probe: async (request) => {
        requests.push(request);
        return request.interface === 'eth1'
          ? { target: request.target, ok: false, inconclusive: true, error }
          : { target: request.target, ok: true, rttMs: 2 };
      },
    });
    m.configure(desiredWith());
    const eth1Rounds = () => requests.filter((r) => r.interface === 'eth1').length;
    await until(() => eth1Rounds() > 10, 'ten rounds of isp1');
    expect(m.current()).toEqual({ isp2: 'up', isp3: 'up' });
    const isp1 = m.report().find((r) => r.name === 'isp1')!;
    expect(isp1).toMatchObject({ state: 'unknown', loss: 0, latencyMs: null, probeError: error });
    expect(m.report().find((r) => r.name === 'isp2')).not.toHaveProperty('probeError');
    const cannotRun = () => logs.filter((l) => l.startsWith('health: isp1: probes cannot run'));
    expect(cannotRun()).toEqual([
      `health: isp1: probes cannot run, they count neither up nor down (verdict stays unknown): ${error}`,
    ]);

    error = 'cannot run ping: spawn ping EACCES';
    const before = eth1Rounds();
    await until(() => eth1Rounds() > before + 5, 'five more rounds');
    expect(cannotRun()).toHaveLength(2);
    expect(cannotRun()[1]).toContain('EACCES');
    expect(m.current().isp1).toBeUndefined();
  });

  it('with the real runner and no probe program, nothing is declared down (namespace-free)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-noprobe-'));
    try {
      const real = processProbeRunner({ prefix: [join(dir, 'ping')] });
      let probes = 0;
      const { m, logs } = monitor(new Set(), {
        probe: (request) => {
          probes++;
          return real(request);
        },
      });
      const changes: Health[] = [];
      m.onChange((h) => changes.push(h));
      m.configure(desiredWith());
      // Well past failAfter (3) rounds of each provider: still nobody down, nothing to fail over.
      await until(() => probes > 3 * 10, 'ten rounds of each provider');
      expect(m.current()).toEqual({});
      expect(changes).toEqual([]);
      expect(logs.filter((l) => l.includes('probes cannot run'))).toHaveLength(3);
      for (const r of m.report()) {
        expect(r.state).toBe('unknown');
        expect(r.probeError).toMatch(/^cannot run .*ping: spawn .*ENOENT$/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
