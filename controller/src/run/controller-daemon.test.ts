/**
 * The daemon's loop on a real temporary git repository with the in-memory FakeFleet:
 * what it retries after a finished rollout, that one failing step does not stop the loop,
 * that rollouts never overlap, that polls never stack up, that a restart mid-bake keeps the
 * bake check's health baseline, and that no secret leaks.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { factsRecord, type RouterFacts, routerFactsHash, type StatusResult } from '#agent/model';
import { createFleetRemote, type FleetRemote } from '../../../test/git/fleet-remote.js';
import { smallFleetFiles } from '../../../test/git/small-fleet.js';
import { FakeFleet } from '../../../test/support/fake-site-transport.js';
import { until } from '../../../test/until.js';
import type { ValidSite } from '../spec/valid-site.js';
import {
  emptyControl,
  readControl,
  requestRetry,
  resume,
  suspend,
  writeControl,
} from '../state/control-file.js';
import { CONTROLLER_STATE_FILE, readControllerState } from '../state/index.js';
import { FLEET_TIMELINE } from '../state/timeline-store.js';
import {
  ControllerDaemon,
  type ControllerDaemonOptions,
  redactUrl,
  redactUrls,
} from './controller-daemon.js';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';
const SITES = ['s1', 's2', 's3', 's4', 's5'].map((name, i) => ({
  name,
  address: `192.0.2.${10 + i}`,
  hostKey: HOST_KEY,
}));
const NAMES = SITES.map((s) => s.name);

/** The small fleet; the last wave ("rest": s4, s5) may lose `restMaxFailures` sites. */
function files(version: number, options: { restMaxFailures?: number; rollbackOnFailure?: boolean } = {}) {
  const f = smallFleetFiles({
    sites: SITES,
    version,
    ...(options.rollbackOnFailure ? { rollbackOnFailure: true } : {}),
  });
  const fleet = f['fleet.yaml']!;
  f['fleet.yaml'] = fleet.replace(
    '      concurrency: 8\n',
    `      concurrency: 8\n      maxFailures: ${options.restMaxFailures ?? 0}\n`,
  );
  return f;
}

let remote: FleetRemote;
let stateDir: string;
let daemon: ControllerDaemon | undefined;

beforeEach(async () => {
  remote = await createFleetRemote();
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-daemon-'));
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await remote.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

async function startDaemon(
  agents: FakeFleet,
  options: Partial<ControllerDaemonOptions> = {},
): Promise<ControllerDaemon> {
  daemon = new ControllerDaemon({
    repo: { url: remote.bare, branch: remote.branch },
    stateDir,
    transport: agents,
    log: pino({ level: 'silent' }),
    pollIntervalMs: 3_600_000,
    statusPollIntervalMs: 3_600_000,
    freshForMs: 60_000,
    concurrency: 4,
    signatures: null,
    version: 'test',
    ...options,
  });
  await daemon.start();
  return daemon;
}

const finished = (d: ControllerDaemon, commit: string, phase = 'done') =>
  d.state.rollout?.plan.commit === commit && d.state.rollout.phase === phase && d.currentRun === undefined;

/** The small fleet where only the canary wave bakes, for an hour: a restart always lands mid-bake. */
function canaryBakesFiles(version: number): Record<string, string> {
  const f = files(version);
  f['fleet.yaml'] = f['fleet.yaml']!.replace('bake: 0s', 'bake: 1h');
  return f;
}

/**
 * Roll `version` out until the canary wave bakes, stop the daemon there, let `between` edit
 * the persisted state, then start a daemon on the same state dir whose clock is two hours
 * on (the bake is over, its check runs at once). The first daemon's run keeps only its bake
 * timer (an hour), so it never writes again.
 */
async function restartMidBake(
  agents: FakeFleet,
  version: number,
  between: (stateFile: string) => Promise<void> = async () => {},
) {
  const commit = await remote.commit(canaryBakesFiles(version), `v${version}`);
  const first = await startDaemon(agents);
  await until(
    'the canary baking',
    () =>
      first.state.rollout?.plan.commit === commit &&
      first.state.rollout.phase === 'baking' &&
      first.state.rollout.waveIndex === 0,
  );
  await first.stop();
  const stateFile = join(stateDir, CONTROLLER_STATE_FILE);
  const atStop = await readControllerState(stateFile);
  await between(stateFile);
  const warnings: string[] = [];
  const second = await startDaemon(agents, {
    now: () => Date.now() + 2 * 3_600_000,
    log: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }),
  });
  return { commit, atStop, second, warnings };
}

describe('ControllerDaemon', () => {
  it('after a finished rollout retries the sites it could not reach at once, one that was not confirmed only after its backoff', async () => {
    const agents = new FakeFleet(NAMES);
    agents.down.add('s4');
    agents.neverConfirmed.add('s5');
    const c1 = await remote.commit(files(1, { restMaxFailures: 2 }), 'v1');
    const d = await startDaemon(agents, { statusPollIntervalMs: 50 });
    await until('v1 done', () => finished(d, c1));
    expect(d.state.sites.s4?.lastAttempted?.outcome).toBe('unreachable');
    expect(d.state.sites.s5?.lastAttempted?.outcome).toBe('unconfirmed');
    const s5Applies = agents.applies('s5').length;
    // s4 answers again: the next poll rolls the commit out to s4, and to s4 only.
    agents.down.delete('s4');
    await until('s4 retried', () => agents.appliedHash('s4') !== undefined);
    await until('s4 retry done', () => finished(d, c1) && d.state.rollout?.perSite.length === 1);
    expect(d.state.rollout?.perSite.map((p) => p.site)).toEqual(['s4']);
    // Many polls later s5 (reachable, behind, not confirmed) was never applied again.
    const polls = agents.calls.filter((c) => c.method === 'status' && c.site === 's5').length;
    await until(
      'ten more polls',
      () => agents.calls.filter((c) => c.method === 'status' && c.site === 's5').length >= polls + 10,
    );
    expect(agents.applies('s5').length).toBe(s5Applies);
    expect(agents.applies('s4').length).toBe(2);
    expect(d.state.sites.s5?.reconcile).toMatchObject({ failures: 1 });
  });

  it('reconciles a site moved away from git (a manual apply) at the next poll; a failing one backs off, doubling', async () => {
    const agents = new FakeFleet(NAMES);
    // A clock that moves only when told to (and by 1 ms per reading, so events stay ordered).
    let clock = Date.now();
    const now = () => clock++;
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents, { now, reconcileBackoffMs: 60_000 });
    await until('v1 done', () => finished(d, c1));
    const target = agents.appliedHash('s3')!;
    // Someone applies another state to s3 by hand (a break-glass apply).
    agents.agents.get('s3')!.applied = {
      generation: 'bg:alice:hotfix:abcdef123456+dirty-bbbbbbbbbbbb',
      hash: 'b'.repeat(64),
      at: 5,
    };
    await d.pollStatus();
    expect(d.status().sites.find((s) => s.name === 's3')?.state).toBe('overridden');
    expect(d.timeline('s3').some((e) => e.kind === 'override' && /alice: hotfix/.test(e.message))).toBe(true);
    await until('s3 reconciled', () => agents.appliedHash('s3') === target && d.currentRun === undefined);
    expect(d.state.rollout?.plan).toMatchObject({ trigger: 'reconcile', commit: c1 });
    expect(d.state.rollout?.perSite.map((p) => p.site)).toEqual(['s3']);
    expect(d.status().sites.find((s) => s.name === 's3')?.state).toBe('in-sync');

    // s2 moves away too, and its reconcile is never confirmed: backoff 1 min, then 2 min.
    agents.agents.get('s2')!.applied = { generation: 'manual-1', hash: 'c'.repeat(64), at: 6 };
    agents.neverConfirmed.add('s2');
    await d.pollStatus();
    await until('s2 tried once', () => agents.applies('s2').length === 2 && d.currentRun === undefined);
    const first = d.state.sites.s2!.reconcile!;
    expect(first.failures).toBe(1);
    expect(first.nextAt - clock).toBeGreaterThan(59_000);
    expect(d.status().sites.find((s) => s.name === 's2')?.reconcile?.note).toMatch(
      /backing off after 1 failed try/,
    );
    await d.pollStatus();
    await new Promise((r) => setTimeout(r, 50));
    expect(agents.applies('s2')).toHaveLength(2);
    clock += 61_000;
    await d.pollStatus();
    await until('s2 tried again', () => agents.applies('s2').length === 3 && d.currentRun === undefined);
    const second = d.state.sites.s2!.reconcile!;
    expect(second.failures).toBe(2);
    expect(second.nextAt - clock).toBeGreaterThan(119_000);
    expect(second.nextAt - clock).toBeLessThanOrEqual(120_000);
    // It works again: the next try (after its backoff) brings it back, and clears the backoff.
    agents.neverConfirmed.delete('s2');
    clock += 121_000;
    await d.pollStatus();
    await until(
      's2 reconciled',
      () => d.status().sites.find((x) => x.name === 's2')?.state === 'in-sync' && d.currentRun === undefined,
    );
    expect(d.state.sites.s2?.reconcile).toBeUndefined();
    // (The fake agent's own times are made up, so compare the kinds, not their order.)
    expect(
      d
        .timeline('s2')
        .map((e) => e.kind)
        .sort(),
    ).toEqual(['applied', 'applied', 'applied-outside', 'apply-failed', 'apply-failed', 'reverted']);
  });

  it('report-only (rollout.reconcile: report) shows a site behind git and leaves it alone', async () => {
    const agents = new FakeFleet(NAMES);
    const f = files(1);
    f['fleet.yaml'] = f['fleet.yaml']!.replace('rollout:\n', 'rollout:\n  reconcile: report\n');
    const c1 = await remote.commit(f, 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    agents.agents.get('s3')!.applied = { generation: 'manual-1', hash: 'c'.repeat(64), at: 6 };
    for (let i = 0; i < 5; i++) await d.pollStatus();
    await new Promise((r) => setTimeout(r, 50));
    expect(agents.applies('s3')).toHaveLength(1);
    const s3 = d.status().sites.find((s) => s.name === 's3')!;
    expect(s3.state).toBe('out-of-date');
    expect(s3.reconcile?.note).toMatch(/report-only/);
    expect(d.status().attention.some((a) => a.startsWith('s3: out-of-date'))).toBe(true);
  });

  it("keeps each site's reported facts in the state dir, asks for them by hash, and shows them in status", async () => {
    const agents = new FakeFleet(NAMES);
    const facts: RouterFacts = {
      interfaces: {
        ppp1: {
          exists: true,
          up: true,
          addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.1' }],
        },
      },
      rules: [],
      routes: [{ table: 254, dst: '10.9.0.0/16', type: 'unicast', dev: 'tun0', protocol: 4 }],
      sysctls: { 'net.ipv4.ip_forward': '1' },
    };
    agents.routerFacts.set('s2', facts);
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    await d.pollStatus();
    await d.pollStatus();
    const file = join(stateDir, 'facts', 's2.json');
    await until('the facts written', async () => (await readFile(file, 'utf8').catch(() => '')) !== '');
    const stored = factsRecord.parse(JSON.parse(await readFile(file, 'utf8')));
    expect(stored).toMatchObject({ site: 's2', hash: routerFactsHash(facts), facts });
    // Sent in full once; every later answer is the hash alone.
    const asked = agents.calls.filter((c) => c.method === 'status' && c.site === 's2');
    expect(asked.length).toBeGreaterThan(2);
    expect(asked.map((c) => c.factsSent)).toEqual([true, ...asked.slice(1).map(() => false)]);
    const s2 = d.status().sites.find((s) => s.name === 's2')!;
    expect(s2.facts).toMatchObject({ hash: routerFactsHash(facts), facts });
    expect(d.status().sites.find((s) => s.name === 's1')!.facts).toBeNull();
    await until('status.json shows them', async () =>
      JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8')).sites.some(
        (s: { name: string; facts: unknown }) => s.name === 's2' && s.facts !== null,
      ),
    );
    // A readdress: the new facts replace the file.
    const moved = {
      ...facts,
      interfaces: {
        ppp1: {
          ...facts.interfaces.ppp1!,
          addresses: [{ address: '203.0.113.78', prefixLength: 32, peer: '203.0.113.1' }],
        },
      },
    };
    agents.routerFacts.set('s2', moved);
    await d.pollStatus();
    await until('the new facts written', async () => (await readFile(file, 'utf8')).includes('203.0.113.78'));
  });

  it('suspend stops a rollout at the wave boundary and starts nothing; resume continues with the sites still behind', async () => {
    const agents = new FakeFleet(NAMES);
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents, { controlPollMs: 3_600_000 });
    await until('v1 done', () => finished(d, c1));
    // Hold the canary's apply of v2, suspend meanwhile: the canary finishes, nothing else starts.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    agents.holdApply = (site) => (site === 's1' ? held : undefined);
    const c2 = await remote.commit(files(2), 'v2');
    void d.triggerFetch();
    await until('the canary applying', () => agents.applies('s1').length === 2);
    await writeControl(
      stateDir,
      suspend(emptyControl(), { by: 'ops@test', reason: 'maintenance window', at: 1 }),
    );
    await d.checkControl();
    release();
    await until('stopped at the boundary', () => finished(d, c2, 'suspended'));
    expect(d.state.rollout?.perSite.filter((p) => p.status === 'confirmed').map((p) => p.site)).toEqual([
      's1',
    ]);
    for (const s of NAMES.slice(1)) expect(agents.applies(s), s).toHaveLength(1);
    const status = d.status();
    expect(status.suspended).toMatchObject({ by: 'ops@test', reason: 'maintenance window' });
    expect(status.attention[0]).toBe('rollouts and reconciliation suspended by ops@test: maintenance window');
    // A poll reconciles nothing while suspended; a new commit is recorded but not rolled out.
    await d.pollStatus();
    const c3 = await remote.commit(files(3), 'v3');
    await d.triggerFetch();
    expect(d.state.lastGoodCommit).toBe(c3);
    expect(d.state.rollout?.plan.commit).toBe(c2);
    for (const s of NAMES.slice(1)) expect(agents.applies(s), s).toHaveLength(1);
    // Resume: c3 rolls out (its canary first), to every site.
    await writeControl(stateDir, resume(await readControl(stateDir)));
    await d.checkControl();
    await until('v3 done', () => finished(d, c3));
    expect(d.status().summary.byState['in-sync']).toBe(NAMES.length);
    for (const s of NAMES) expect(agents.applies(s).length, s).toBe(s === 's1' ? 3 : 2);
    expect(d.timeline(FLEET_TIMELINE).map((e) => e.kind)).toEqual(
      expect.arrayContaining(['suspended', 'resumed']),
    );
  });

  it('a site suspended alone is left out of rollouts and reconciliation, and says so', async () => {
    const agents = new FakeFleet(NAMES);
    await writeControl(
      stateDir,
      suspend(emptyControl(), { by: 'ops@test', reason: 'router swap', at: 1 }, ['s4']),
    );
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    expect(agents.applies('s4')).toEqual([]);
    expect(d.state.rollout?.plan.suspended).toEqual(['s4']);
    const s4 = d.status().sites.find((s) => s.name === 's4')!;
    expect(s4.suspended).toMatchObject({ reason: 'router swap' });
    expect(s4.state).toBe('out-of-date');
    await d.pollStatus();
    await new Promise((r) => setTimeout(r, 50));
    expect(agents.applies('s4')).toEqual([]);
  });

  it('uplink retry rolls a halted commit out again without a new commit', async () => {
    const agents = new FakeFleet(NAMES);
    agents.neverConfirmed.add('s1');
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents, { controlPollMs: 3_600_000 });
    await until('v1 halted', () => finished(d, c1, 'halted'));
    // Halted: polls do not reconcile anything.
    await d.pollStatus();
    await new Promise((r) => setTimeout(r, 50));
    expect(agents.applies()).toHaveLength(1);
    expect(d.status().attention.some((a) => a.startsWith(`rollout of ${c1.slice(0, 12)} halted`))).toBe(true);
    agents.neverConfirmed.delete('s1');
    await requestRetry(stateDir, { by: 'ops@test', at: 1 });
    await d.checkControl();
    await until('v1 done on retry', () => finished(d, c1));
    expect(d.state.rollout?.plan.trigger).toBe('retry');
    for (const s of NAMES) expect(agents.appliedHash(s), s).toBeDefined();
    expect(d.status().attention).toEqual([]);
  });

  it('a step that fails (here: planning a rollout) is logged and recorded, and the loop goes on', async () => {
    const agents = new FakeFleet(NAMES);
    let broken = true;
    const status = agents.status.bind(agents);
    agents.status = async (site: ValidSite): Promise<StatusResult> => {
      const answer = await status(site);
      if (!broken) return answer;
      // A corrupt answer that blows up whoever reads it (planning reads `applied`).
      return Object.defineProperty({ ...answer }, 'applied', {
        get() {
          throw new Error('corrupt status answer');
        },
      });
    };
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents, { pollIntervalMs: 100 });
    await until('the failure recorded', () => d.status().controller.lastError != null);
    expect(d.status().controller.lastError).toMatchObject({ commit: c1 });
    expect(d.status().controller.lastError?.message).toContain('corrupt status answer');
    expect(d.events.list().some((e) => e.kind === 'error' && e.commit === c1)).toBe(true);
    expect(agents.applies()).toEqual([]);
    // The next fetch (same commit) starts the rollout that failed to start.
    broken = false;
    await until('v1 done', () => finished(d, c1));
    for (const s of NAMES) expect(agents.appliedHash(s)).toBeDefined();
    // And a new commit still rolls out.
    const c2 = await remote.commit(files(2), 'v2');
    await until('v2 done', () => finished(d, c2));
  });

  it('a new rollout waits until the halted one has finished its rollbacks', async () => {
    const agents = new FakeFleet(NAMES);
    const c1 = await remote.commit(files(1, { rollbackOnFailure: true }), 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    const v1s1 = agents.appliedHash('s1')!;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    agents.holdApply = (site, hash) => (site === 's1' && hash === v1s1 ? held : undefined);
    agents.neverConfirmed.add('s2');
    const c2 = await remote.commit(files(2, { rollbackOnFailure: true }), 'v2');
    void d.triggerFetch();
    await until('v2 halted', () => d.state.rollout?.plan.commit === c2 && d.state.rollout.phase === 'halted');
    await until('s1 rollback in flight', () => agents.applies('s1').some((c) => c.hash === v1s1));
    agents.neverConfirmed.delete('s2');
    const c3 = await remote.commit(files(3, { rollbackOnFailure: true }), 'v3');
    void d.triggerFetch();
    await until('v3 seen', () =>
      d.events.list().some((e) => e.commit === c3 && (e.kind === 'waiting' || e.kind === 'rollout-started')),
    );
    expect(
      d.events
        .list()
        .filter((e) => e.commit === c3)
        .map((e) => e.kind),
    ).not.toContain('rollout-started');
    release();
    await until('v3 done', () => finished(d, c3));
    // s1's rollback returned before the first apply of v3.
    const rollbackDone = agents.calls.findIndex(
      (c) => c.method === 'applySettled' && c.site === 's1' && c.hash === v1s1,
    );
    const v3Hashes = new Set(NAMES.map((s) => agents.appliedHash(s)));
    const firstV3 = agents.calls.findIndex((c) => c.method === 'apply' && v3Hashes.has(c.hash));
    expect(rollbackDone).toBeGreaterThanOrEqual(0);
    expect(firstV3).toBeGreaterThan(rollbackDone);
    expect(d.state.rollout?.plan.commit).toBe(c3);
  });

  it('a site put back by rollbackOnFailure is recorded as rolled back, on the state it runs again', async () => {
    const agents = new FakeFleet(NAMES);
    const c1 = await remote.commit(files(1, { rollbackOnFailure: true }), 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    const v1s1 = agents.appliedHash('s1')!;
    // v2: the canary s1 confirms, s2 in the next wave never does — the rollout halts and s1 goes back.
    agents.neverConfirmed.add('s2');
    const c2 = await remote.commit(files(2, { rollbackOnFailure: true }), 'v2');
    void d.triggerFetch();
    await until('v2 halted', () => finished(d, c2, 'halted'));
    await until(
      's1 recorded as rolled back',
      () => d.state.sites.s1?.lastAttempted?.outcome === 'rolled-back',
    );
    expect(agents.appliedHash('s1')).toBe(v1s1);
    const s1 = d.state.sites.s1!;
    expect(s1.lastAttempted).toMatchObject({ commit: c2, hash: v1s1, outcome: 'rolled-back' });
    expect(s1.lastAttempted?.generation).toMatch(new RegExp(`^${c2}-${v1s1.slice(0, 12)}`));
    expect(s1.lastApplied).toEqual(s1.lastAttempted);
    // s2 failed: its record says so, and nothing was rolled back there.
    expect(d.state.sites.s2?.lastAttempted?.outcome).toBe('unconfirmed');
  });

  it('a status poll is skipped while the previous one still runs', async () => {
    const agents = new FakeFleet(NAMES);
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents);
    await until('v1 done', () => finished(d, c1));
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    agents.holdStatus = (site) => (site === 's3' ? held : undefined);
    const before = agents.calls.filter((c) => c.method === 'status').length;
    const polls = [d.pollStatus(), d.pollStatus(), d.pollStatus()];
    release();
    await Promise.all(polls);
    expect(agents.calls.filter((c) => c.method === 'status').length - before).toBe(NAMES.length);
  });

  it('a restart mid-bake keeps the baseline: a provider the change took down fails the wave and halts', async () => {
    const agents = new FakeFleet(NAMES);
    // The canary's apply of the new state takes its isp1 down (the change broke that route).
    agents.holdApply = (site, hash) => {
      if (site === 's1') agents.providersDownAfter.set('s1', { hash, providers: ['isp1'] });
      return undefined;
    };
    const { commit, atStop, second } = await restartMidBake(agents, 1);
    // Persisted before the first apply: isp1 was up on every site.
    expect(atStop.healthBaseline).toEqual({
      commit,
      upBefore: Object.fromEntries(NAMES.map((s) => [s, ['isp1']])),
    });
    // After the restart s1 reports isp1 down; the baseline still says it was up before.
    await until('settled', () => finished(second, commit, 'halted') || finished(second, commit, 'done'));
    expect(second.state.rollout?.phase).toBe('halted');
    expect(second.state.rollout?.halt).toMatchObject({ wave: 'canary', failed: ['s1'] });
    expect(second.state.sites.s1?.lastAttempted).toMatchObject({ outcome: 'unhealthy' });
    expect(second.state.sites.s1?.lastAttempted?.error).toMatch(/isp1 was up before the apply/);
    for (const s of NAMES.slice(1)) expect(agents.applies(s), s).toEqual([]);
    // A halted rollout needs no baseline: it is gone from the state and the file.
    expect(second.state.healthBaseline).toBeUndefined();
    await second.stop();
    expect((await readControllerState(join(stateDir, CONTROLLER_STATE_FILE))).healthBaseline).toBeUndefined();
  });

  it('a restart mid-bake with a provider that was already down before the apply passes the wave', async () => {
    const agents = new FakeFleet(NAMES);
    agents.agents.get('s1')!.health = [
      { name: 'isp1', state: 'down' },
      { name: 'isp2', state: 'up' },
    ];
    const { commit, atStop, second } = await restartMidBake(agents, 1);
    expect(atStop.healthBaseline?.upBefore.s1).toEqual(['isp2']);
    await until('done', () => finished(second, commit));
    for (const s of NAMES) expect(agents.applies(s), s).toHaveLength(1);
    expect(second.state.healthBaseline).toBeUndefined();
  });

  it('a state file without a baseline (older Uplink) resumes with the health after the restart, and says so', async () => {
    const agents = new FakeFleet(NAMES);
    agents.holdApply = (site, hash) => {
      if (site === 's1') agents.providersDownAfter.set('s1', { hash, providers: ['isp1'] });
      return undefined;
    };
    const { commit, second, warnings } = await restartMidBake(agents, 1, async (file) => {
      const { healthBaseline: _dropped, ...old } = JSON.parse(await readFile(file, 'utf8'));
      await writeFile(file, JSON.stringify(old));
    });
    // Today's (pre-D86) behaviour: isp1 is down in the "before" too, so the wave passes.
    await until('done', () => finished(second, commit));
    expect(warnings.some((l) => l.includes('no health baseline persisted for this rollout'))).toBe(true);
  });

  it('never shows the credentials of the repository URL', async () => {
    expect(redactUrl('https://ops:s3cret@git.example.org/fleet.git')).toBe(
      'https://git.example.org/fleet.git',
    );
    expect(redactUrl('git@git.example.org:fleet.git')).toBe('git@git.example.org:fleet.git');
    expect(redactUrls("fatal: unable to access 'https://tok3n@git.example.org/fleet.git/'")).not.toContain(
      'tok3n',
    );
    const agents = new FakeFleet(NAMES);
    const d = await startDaemon(agents, {
      repo: { url: 'http://ops:s3cret@127.0.0.1:9/fleet.git', branch: 'main' },
    });
    await until('the fetch failed', () => d.status().controller.lastFetchError !== null);
    const text = JSON.stringify(d.status());
    expect(text).toContain('127.0.0.1:9/fleet.git');
    expect(text).not.toContain('s3cret');
  });
});
