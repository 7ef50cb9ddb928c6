import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import { MemoryDataplane } from '../dataplane/memory.js';
import { ConflictError, InvalidInputError, KernelError, StateError, VerifyFailedError } from '../errors.js';
import type { DesiredState } from '../model/desired-state.js';
import type { KernelState } from '../model/kernel-state.js';
import { plan } from './plan.js';
import { reconcile } from './reconcile.js';
import { revert } from './revert.js';
import { show } from './show.js';

/** A router before Uplink: default rules, connected and default routes in main, rp_filter strict. */
function freshRouter(): MemoryDataplane {
  return new MemoryDataplane({
    facts: exampleFacts(),
    rules: [
      { priority: 0, action: 'lookup', table: 255, protocol: 2 },
      { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
      { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
    ],
    routes: [
      { table: 254, dst: '0.0.0.0/0', type: 'unicast', dev: 'eth1', gateway: '198.51.100.1', protocol: 4 },
      {
        table: 254,
        dst: '172.20.1.0/24',
        type: 'unicast',
        dev: 'eth0',
        scope: 'link',
        src: '172.20.1.1',
        protocol: 2,
      },
      { table: 254, dst: '198.51.100.0/24', type: 'unicast', dev: 'eth1', scope: 'link', protocol: 2 },
    ],
    nft: null,
    sysctls: {
      'net.ipv4.conf.eth1.rp_filter': '1',
      'net.ipv4.conf.ppp1.rp_filter': '1',
      'net.ipv4.ip_forward': '1',
    },
  });
}

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-engine-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const options = () => ({ stateDir, now: () => new Date('2024-05-01T12:00:00Z') });

describe('reconcile', () => {
  it('applies, verifies, and a second apply changes nothing', async () => {
    const dataplane = freshRouter();
    const first = await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(first.verified).toBe(true);
    expect(first.changes.length).toBeGreaterThan(10);
    const kernel = dataplane.dump();
    expect(kernel.rules.find((r) => r.priority === 2001)).toMatchObject({
      from: '203.0.113.5/32',
      protocol: 252,
    });
    expect(kernel.sysctls['net.ipv4.conf.ppp1.rp_filter']).toBe('2');
    expect(kernel.nft).toHaveLength(5);
    // Foreign objects untouched.
    expect(kernel.routes.filter((r) => r.protocol !== 252)).toEqual(freshRouter().dump().routes);

    const callsBefore = dataplane.applyCalls;
    const second = await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(second).toMatchObject({ changes: [], steps: [], verified: true });
    expect(dataplane.applyCalls).toBe(callsBefore);
  });

  it('revert restores the exact previous kernel', async () => {
    const dataplane = freshRouter();
    const before = dataplane.dump();
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(dataplane.dump()).not.toEqual(before);
    const report = await revert(dataplane, options());
    expect(report.changes.length).toBeGreaterThan(0);
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    // Nothing left to revert, and `reconcile` has no desired state to re-run.
    await expect(revert(dataplane, options())).rejects.toBeInstanceOf(StateError);
  });

  it('revert after a second apply goes back to the first', async () => {
    const dataplane = freshRouter();
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    const afterFirst = dataplane.dump();
    const second = exampleDesiredState();
    second.routes.find((r) => r.id === 'balance/default')!.nexthops![0]!.weight = 5;
    second.rules = second.rules.filter((r) => r.id !== 'policy:web/isp2');
    second.sysctls['net.ipv4.conf.eth1.rp_filter'] = '0';
    const report = await reconcile(dataplane, second, {}, options());
    expect(report.changes.map((c) => `${c.action} ${c.kind}`)).toEqual([
      'update sysctl',
      'update route',
      'delete rule',
    ]);
    await revert(dataplane, options());
    expect(normalise(dataplane.dump())).toEqual(normalise(afterFirst));
  });

  it('a step the kernel refuses mid-apply rolls back and reports the error', async () => {
    const dataplane = freshRouter();
    const before = dataplane.dump();
    dataplane.injectFault({ match: (_step, position) => position === 6, effect: 'throw' });
    const error = await reconcile(dataplane, exampleDesiredState(), {}, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelError);
    expect(error).toMatchObject({ kind: 'kernel', revert: 'reverted' });
    // Five steps took effect before the failure, and were undone.
    expect(dataplane.applied.length).toBeGreaterThan(5);
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    const journal = await readFile(join(stateDir, 'journal.jsonl'), 'utf8');
    expect(journal).toContain('"result":"kernel-error"');
  });

  it('a kernel that reads back differently fails verification and rolls back', async () => {
    const dataplane = freshRouter();
    const before = dataplane.dump();
    dataplane.injectFault({
      match: (step) => step.op === 'route-replace' && step.route.table === 200,
      effect: 'ignore',
    });
    const error = await reconcile(dataplane, exampleDesiredState(), {}, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerifyFailedError);
    expect((error as VerifyFailedError).revert).toBe('reverted');
    expect((error as VerifyFailedError).differences.map((c) => c.key)).toEqual(['route table 200 default']);
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
  });

  it('refuses on a conflict and changes nothing', async () => {
    const dataplane = freshRouter();
    dataplane.addRoute({
      table: 101,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: 'eth1',
      gateway: '198.51.100.1',
      protocol: 4,
    });
    const before = dataplane.dump();
    const error = await reconcile(dataplane, exampleDesiredState(), {}, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).conflicts.map((c) => c.message)).toEqual([
      'table 101 holds a route not written by Uplink: default via 198.51.100.1 dev eth1 proto 4; add 101 to adoptTables to take it over',
    ]);
    expect(dataplane.applyCalls).toBe(0);
    expect(dataplane.dump()).toEqual(before);
    await expect(readFile(join(stateDir, 'snapshot.json'))).rejects.toThrow(/ENOENT/);
  });

  it('adopting the table takes the foreign route over', async () => {
    const dataplane = freshRouter();
    dataplane.addRoute({
      table: 101,
      dst: '192.0.2.0/24',
      type: 'unicast',
      dev: 'eth1',
      gateway: '198.51.100.1',
      protocol: 4,
    });
    const desired = exampleDesiredState();
    desired.settings.adoptTables = [101];
    await reconcile(dataplane, desired, {}, options());
    expect(
      dataplane
        .dump()
        .routes.filter((r) => r.table === 101)
        .map((r) => r.protocol),
    ).toEqual([252, 252]);
  });

  it('refuses an inconsistent desired state and changes nothing', async () => {
    const dataplane = freshRouter();
    const desired = exampleDesiredState();
    desired.rules.push({ id: 'typo', priority: 10020, action: 'lookup', table: 102, requires: 'isp9' });
    await expect(reconcile(dataplane, desired, {}, options())).rejects.toBeInstanceOf(InvalidInputError);
    expect(dataplane.applyCalls).toBe(0);
  });

  it('re-resolves after a PPP readdress: only the objects naming the address or peer change', async () => {
    const dataplane = freshRouter();
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    dataplane.setInterface('ppp1', {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.254' }],
    });
    const report = await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(report.changes.map((c) => `${c.action} ${c.key}`)).toEqual([
      'update route table 102 default',
      'update route table 200 default',
      'create rule priority 2001 from 203.0.113.77/32 lookup 102 proto 252',
      'delete rule priority 2001 from 203.0.113.5/32 lookup 102 proto 252',
    ]);
    expect(
      dataplane
        .dump()
        .rules.filter((r) => r.priority === 2001)
        .map((r) => r.from),
    ).toEqual(['203.0.113.77/32']);
  });

  it('failover: a down provider changes routes only', async () => {
    const dataplane = freshRouter();
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    const report = await reconcile(dataplane, exampleDesiredState(), { isp2: 'down' }, options());
    expect(report.changes.map((c) => `${c.action} ${c.key}`)).toEqual([
      'update route table 200 default',
      'delete route table 102 default',
    ]);
  });

  it('a provider that disappears loses everything of its own; when it returns it gets it back', async () => {
    const dataplane = freshRouter();
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    const full = dataplane.dump();
    dataplane.setInterface('ppp1', undefined);
    const gone = await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(gone.unavailable).toEqual([{ provider: 'isp2', reason: 'interface ppp1 does not exist' }]);
    expect(dataplane.dump().rules.some((r) => r.table === 102)).toBe(false);
    dataplane.setInterface('ppp1', exampleFacts().interfaces.ppp1);
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(normalise(dataplane.dump())).toEqual(normalise(full));
  });

  it('removes what a previous desired state created in a table the new one no longer uses', async () => {
    const dataplane = freshRouter();
    // The first state keeps its balanced route in table 150, the second in 200.
    const example = exampleDesiredState();
    const balance = example.settings.balanceTable!;
    const first: DesiredState = {
      ...example,
      settings: { ...example.settings, balanceTable: 150 },
      rules: example.rules.map((r) => (r.table === balance ? { ...r, table: 150 } : r)),
      routes: [
        ...example.routes.map((r) => (r.table === balance ? { ...r, table: 150 } : r)),
        { id: 'extra', table: 150, dst: { kind: 'literal', cidr: '192.0.2.0/24' }, type: 'blackhole' },
      ],
    };
    await reconcile(dataplane, first, {}, options());
    expect(dataplane.dump().routes.some((r) => r.table === 150)).toBe(true);
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(dataplane.dump().routes.some((r) => r.table === 150)).toBe(false);
  });
});

describe('plan and show', () => {
  it('plan changes nothing and matches what apply then does', async () => {
    const dataplane = freshRouter();
    const planned = await plan(dataplane, exampleDesiredState(), {}, options());
    expect(dataplane.applyCalls).toBe(0);
    const applied = await reconcile(dataplane, exampleDesiredState(), {}, options());
    expect(applied.steps).toEqual(planned.steps);
  });

  it('show reports the owned state and the last applied desired state', async () => {
    const dataplane = freshRouter();
    const empty = await show(dataplane, options());
    expect(empty.applied).toBeNull();
    expect(empty.owned.rules).toEqual([]);
    await reconcile(dataplane, exampleDesiredState(), {}, options());
    const shown = await show(dataplane, options());
    expect(shown.applied).toMatchObject({ site: 'branch-1', appliedAt: '2024-05-01T12:00:00.000Z' });
    expect(shown.owned.rules).toHaveLength(10);
    expect(shown.owned.sysctls).toEqual({
      'net.ipv4.conf.eth1.rp_filter': '2',
      'net.ipv4.conf.ppp1.rp_filter': '2',
    });
    expect(shown.snapshot).not.toBeNull();
  });
});

/** Kernel order of rules/routes is not meaningful for equality (priority is). */
function normalise(kernel: KernelState) {
  const key = (v: unknown) => JSON.stringify(v);
  return {
    ...kernel,
    rules: [...kernel.rules].sort((a, b) => a.priority - b.priority || key(a).localeCompare(key(b))),
    routes: [...kernel.routes].map((r) => ({ ...r })).sort((a, b) => key(a).localeCompare(key(b))),
  };
}
