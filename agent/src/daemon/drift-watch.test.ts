import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { MemoryDataplane } from '../dataplane/memory.js';
import { reconcile } from '../engine/reconcile.js';
import type { Health } from '../model/kernel-state.js';
import type { CommitConfirmed } from './commit-confirmed.js';
import { DriftWatch } from './drift-watch.js';
import type { HealthSource } from './health-source.js';

/** A health source driven by the test; records what `settled` was told. */
class ScriptedHealth implements HealthSource {
  #health: Health = {};
  readonly #listeners = new Set<(health: Health) => void>();
  readonly settledWith: Health[] = [];

  set(health: Health): void {
    this.#health = health;
    for (const listener of this.#listeners) listener(health);
  }
  current = (): Health => this.#health;
  report = () => [];
  configure = () => {};
  onChange(listener: (health: Health) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  settled = async (effective: Health): Promise<void> => {
    this.settledWith.push(effective);
  };
  close = async () => {};
}

/** The part of CommitConfirmed the watch uses: a confirmed state in force, a one-writer queue. */
function confirmedCommit(health: HealthSource, stateDir: string): CommitConfirmed {
  let queue: Promise<unknown> = Promise.resolve();
  const fake = {
    health,
    record: { pending: null, applied: null },
    faults: { noteError: () => {} },
    engineOptions: { stateDir },
    exclusive<T>(task: () => Promise<T>): Promise<T> {
      const run = queue.then(task);
      queue = run.catch(() => {});
      return run;
    },
    onStateChange: () => () => {},
    reportDriftFrom: () => {},
  };
  return fake as unknown as CommitConfirmed;
}

async function until(check: () => boolean, what: string, deadlineMs = 3000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let stateDir: string;
let watch: DriftWatch | undefined;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-drift-watch-'));
});
afterEach(async () => {
  await watch?.close();
  watch = undefined;
  await rm(stateDir, { recursive: true, force: true });
});

/** The example site confirmed on a memory kernel, watched with a scripted health source. */
async function watched(dataplane: Dataplane = new MemoryDataplane({ facts: exampleFacts() })) {
  await reconcile(dataplane, exampleDesiredState(), {}, { stateDir });
  const health = new ScriptedHealth();
  const logs: string[] = [];
  watch = new DriftWatch(
    confirmedCommit(health, stateDir),
    { stateDir, dataplane: () => dataplane, now: Date.now, log: (line) => logs.push(line) },
    { debounceMs: 1, fullCheckMs: 60_000 },
  );
  watch.start();
  await until(() => watch!.report() !== null, 'the first check');
  return { health, logs };
}

describe('DriftWatch settles health changes', () => {
  it('settles with the health the kernel followed: none down under the last resort', async () => {
    const { health } = await watched();
    health.set({ isp1: 'down', isp2: 'down', isp3: 'down' });
    await until(() => health.settledWith.length === 1, 'settled (all down)');
    // Every available provider down: resolve kept them all, so nothing may be flushed.
    expect(health.settledWith[0]).toEqual({ isp1: 'up', isp2: 'up', isp3: 'up' });

    health.set({ isp1: 'up', isp2: 'down', isp3: 'down' });
    await until(() => health.settledWith.length === 2, 'settled (isp1 back)');
    // isp1 carries traffic again: now the kernel routes around isp2 and isp3.
    expect(health.settledWith[1]).toEqual({ isp1: 'up', isp2: 'down', isp3: 'down' });
  });

  it('a second provider going down during the first follow is settled too, with its own health', async () => {
    const memory = new MemoryDataplane({ facts: exampleFacts() });
    let duringApply: (() => void) | undefined;
    // The kernel takes its time: the second verdict arrives while the first follow applies.
    const dataplane: Dataplane = {
      readFacts: () => memory.readFacts(),
      readKernel: (request) => memory.readKernel(request),
      apply: async (steps) => {
        const hook = duringApply;
        duringApply = undefined;
        hook?.();
        await memory.apply(steps);
      },
    };
    const { health } = await watched(dataplane);
    duringApply = () => health.set({ isp1: 'down', isp2: 'down' });
    health.set({ isp1: 'down' });
    await until(() => health.settledWith.length === 2, 'both changes settled');
    expect(health.settledWith).toEqual([{ isp1: 'down' }, { isp1: 'down', isp2: 'down' }]);
  });
});

describe('DriftWatch follows facts that change during a follow', () => {
  it('an uplink pulled out while its arrival is followed is followed again, never reported as drift', async () => {
    const memory = new MemoryDataplane({ facts: exampleFacts() });
    let duringApply: (() => void) | undefined;
    const dataplane: Dataplane = {
      readFacts: () => memory.readFacts(),
      readKernel: (request) => memory.readKernel(request),
      apply: async (steps) => {
        await memory.apply(steps);
        const hook = duringApply;
        duringApply = undefined;
        hook?.();
      },
    };
    const facts = exampleFacts();
    const ppp1 = facts.interfaces.ppp1!;
    memory.setInterface('ppp1', undefined);
    const { logs } = await watched(dataplane);
    // ppp1 appears (a follow brings isp2 in) and, as that follow writes, disappears again.
    duringApply = () => memory.setInterface('ppp1', undefined);
    memory.setInterface('ppp1', ppp1);
    watch!.trigger('link');
    await until(() => logs.filter((l) => l.startsWith('follow: re-applied')).length >= 2, 'two follows');
    await until(
      () => watch!.report()?.checkedAt !== undefined && memory.dump().rules.every((r) => r.table !== 102),
      'isp2 gone again',
    );
    expect(logs.filter((l) => /^drift: /.test(l))).toEqual([]);
    expect(watch!.report()?.items).toEqual([]);
  });
  it('an uplink pulled out under the follow that brings it in: followed again at once, no failure, no drift', async () => {
    const memory = new MemoryDataplane({ facts: exampleFacts() });
    let beforeApply: (() => void) | undefined;
    const dataplane: Dataplane = {
      readFacts: () => memory.readFacts(),
      readKernel: (request) => memory.readKernel(request),
      apply: async (steps) => {
        const hook = beforeApply;
        beforeApply = undefined;
        hook?.();
        await memory.apply(steps);
      },
    };
    const facts = exampleFacts();
    const ppp1 = facts.interfaces.ppp1!;
    memory.setInterface('ppp1', undefined);
    const { logs } = await watched(dataplane);
    // ppp1 appears; the follow that brings isp2 in finds it gone when it writes.
    beforeApply = () => memory.setInterface('ppp1', undefined);
    memory.setInterface('ppp1', ppp1);
    watch!.trigger('link');
    await until(() => logs.some((l) => /went away while .* was re-applied/.test(l)), 'the vanish noticed');
    await until(
      () => watch!.report()?.checkedAt !== undefined && memory.dump().rules.every((r) => r.table !== 102),
      'isp2 gone again',
    );
    expect(logs.filter((l) => /^drift: |failed/.test(l))).toEqual([]);
    expect(watch!.report()?.items).toEqual([]);
  });
});
