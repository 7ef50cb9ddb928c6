/**
 * The fault-injection walk (D102): commit-confirmed against every injection point of an
 * apply, on the memory dataplane. A clean run of each scenario records the failpoints it
 * passes — every kernel step (the ip batch, the nft transaction, each sysctl, each kernel
 * read) and every state write, fsync, rename, directory fsync, journal append and the lock —
 * then each point is made to fail in each way that can happen there:
 *
 * - state writes: the filesystem fills up (ENOSPC), goes read-only (EROFS) or fails (EIO)
 *   at that point and stays so until the test "repairs" it;
 * - kernel steps: the kernel refuses, the tool is missing, or interface enp2s0.7 is
 *   deleted right then;
 * - anywhere: the daemon is killed there (the instance hangs at the point forever, and a
 *   new one is opened on the same state directory and kernel, as a restart would).
 *
 * After the deadline plus a margin the invariant (D100) must hold: what Uplink owns in the
 * kernel equals the snapshot (state A) or a confirmed generation (B, when its confirm was
 * recorded), less the objects of a deleted interface; the daemon answers; status tells the
 * truth (what is applied, pending, the last revert, the faults). After the repair the daemon
 * converges to clean records and takes a new apply.
 *
 * Scenarios: `confirm` (apply B, confirm it) and `timeout` (apply B, no confirm: the timer
 * reverts). Kernel behaviour itself is proven in namespaces (agent-faults-ns.test.ts).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalizeState } from '../agent/src/core/canonicalize-state.js';
import { mergeOwnershipScopes, owned, ownershipScope } from '../agent/src/core/owned.js';
import { resolve } from '../agent/src/core/resolve.js';
import { withoutVanishedInterfaces } from '../agent/src/core/vanished-interfaces.js';
import { CommitConfirmed } from '../agent/src/daemon/commit-confirmed.js';
import { MemoryDataplane } from '../agent/src/dataplane/memory.js';
import { withFailpoints } from '../agent/src/dataplane/with-failpoints.js';
import { isAgentError } from '../agent/src/errors.js';
import { type FailpointAction, Failpoints, type FsErrno } from '../agent/src/faults/failpoints.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { KernelState } from '../agent/src/model/kernel-state.js';
import type { StatusResult } from '../agent/src/model/protocol.js';
import { exampleDesiredState, exampleFacts } from './support/example-desired-state.js';

const VLAN = 'enp2s0.7';
const CONFIRM_WITHIN_MS = 300;
/** After the deadline: revert retries start at 20 ms and double up to 80 ms. */
const MARGIN_MS = 700;

/** The example site with its DHCP uplink on a dotted (VLAN-style) interface name. */
function desiredA(): DesiredState {
  const desired = JSON.parse(
    JSON.stringify(exampleDesiredState()).replaceAll('"eth2"', `"${VLAN}"`),
  ) as DesiredState;
  desired.hash = 'a'.repeat(64);
  desired.sysctls[`net.ipv4.conf.${VLAN}.rp_filter`] = '2';
  return desired;
}

/** B touches every kind of object on every uplink: sysctls, routes, rules, nft. */
function desiredB(): DesiredState {
  const desired = desiredA();
  desired.hash = 'b'.repeat(64);
  desired.sysctls['net.ipv4.conf.eth1.rp_filter'] = '0';
  desired.sysctls['net.ipv4.conf.ppp1.rp_filter'] = '1';
  desired.sysctls[`net.ipv4.conf.${VLAN}.rp_filter`] = '1';
  desired.rules = desired.rules.map((r) => (r.id === 'policy:web/isp2' ? { ...r, priority: 10020 } : r));
  desired.routes = desired.routes.map((r) => (r.id === 'isp3/default' ? { ...r, metric: 10 } : r));
  desired.nft = [...desired.nft, { kind: 'masquerade', provider: 'isp3', oif: VLAN }];
  return desired;
}

function freshKernel(): MemoryDataplane {
  const facts = exampleFacts();
  const { eth2, ...others } = facts.interfaces;
  return new MemoryDataplane({
    facts: { interfaces: { ...others, [VLAN]: eth2! } },
    rules: [
      { priority: 0, action: 'lookup', table: 255, protocol: 2 },
      { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
      { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
    ],
    routes: [
      { table: 254, dst: '172.20.1.0/24', type: 'unicast', dev: 'eth0', scope: 'link', protocol: 2 },
      { table: 254, dst: '198.51.100.0/24', type: 'unicast', dev: 'eth1', scope: 'link', protocol: 2 },
      { table: 254, dst: '192.0.2.0/24', type: 'unicast', dev: VLAN, scope: 'link', protocol: 2 },
      { table: 254, dst: '0.0.0.0/0', type: 'unicast', dev: VLAN, gateway: '192.0.2.1', protocol: 16 },
    ],
    nft: null,
    sysctls: {
      'net.ipv4.conf.eth1.rp_filter': '1',
      'net.ipv4.conf.ppp1.rp_filter': '1',
      [`net.ipv4.conf.${VLAN}.rp_filter`]: '1',
    },
  });
}

const SCOPE = mergeOwnershipScopes(ownershipScope(desiredA()), ownershipScope(desiredB()));

function ownedNow(kernel: MemoryDataplane): KernelState {
  return canonicalizeState(owned(kernel.dump(), SCOPE));
}

/** `expected` less what the kernel removed with interfaces that are gone. */
async function minusVanished(expected: KernelState, kernel: MemoryDataplane): Promise<KernelState> {
  return canonicalizeState(withoutVanishedInterfaces(expected, await kernel.readFacts()).state);
}

type Scenario = 'confirm' | 'timeout';

type Injection =
  | { readonly kind: 'errno'; readonly code: FsErrno }
  | { readonly kind: 'kernel-error' }
  | { readonly kind: 'tool-missing' }
  | { readonly kind: 'delete-interface' }
  | { readonly kind: 'kill' };

interface Case {
  readonly scenario: Scenario;
  /** Index of the hit (after A is confirmed) where the fault starts. */
  readonly hit: number;
  readonly point: string;
  readonly injection: Injection;
}

interface Router {
  readonly stateDir: string;
  readonly kernel: MemoryDataplane;
  readonly logs: string[];
  /** The instance now running (a new one after a kill). */
  commit: CommitConfirmed;
  kernelA: KernelState;
}

/** A router with A applied and confirmed, and a failpoint set that is quiet until armed. */
async function routerWithA(failpoints: Failpoints): Promise<Router> {
  // tmpfs where there is one (D69): hundreds of cases fsync, and the deadlines are short.
  const stateDir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'uplink-faults-'));
  const kernel = freshKernel();
  const logs: string[] = [];
  const commit = await open(stateDir, kernel, failpoints, logs);
  await commit.apply({ desired: desiredA(), generation: 'gen-a', confirmWithinMs: 60_000 }, undefined);
  await commit.confirm('gen-a');
  return { stateDir, kernel, logs, commit, kernelA: ownedNow(kernel) };
}

function open(stateDir: string, kernel: MemoryDataplane, failpoints: Failpoints, logs: string[]) {
  return CommitConfirmed.open({
    stateDir,
    dataplane: () => withFailpoints(kernel, failpoints),
    failpoints,
    log: (line) => logs.push(line),
    revertRetryMs: 20,
    revertRetryMaxMs: 80,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the scenario's calls on the router; resolves when they settled or the daemon was killed. */
async function runScenario(router: Router, scenario: Scenario, killed: Promise<void>) {
  const calls = (async () => {
    const outcome: { apply?: unknown; applyError?: unknown; confirmError?: unknown } = {};
    try {
      outcome.apply = await router.commit.apply(
        { desired: desiredB(), generation: 'gen-b', confirmWithinMs: CONFIRM_WITHIN_MS },
        undefined,
      );
    } catch (error) {
      outcome.applyError = error;
    }
    if (scenario === 'confirm' && outcome.applyError === undefined) {
      await router.commit.confirm('gen-b').catch((error: unknown) => {
        outcome.confirmError = error;
      });
    }
    return outcome;
  })();
  return Promise.race([calls, killed.then(() => 'killed' as const)]);
}

/** The clean runs: which points each scenario passes, in order, and B's kernel. */
let recorded: Record<Scenario, string[]>;
let kernelB: KernelState;

beforeAll(async () => {
  recorded = { confirm: [], timeout: [] };
  for (const scenario of ['confirm', 'timeout'] as const) {
    let recording = false;
    const failpoints = new Failpoints([], {
      onHit: (point) => {
        if (recording) recorded[scenario].push(point);
      },
    });
    const router = await routerWithA(failpoints);
    recording = true;
    await runScenario(router, scenario, new Promise(() => {}));
    if (scenario === 'confirm') kernelB = ownedNow(router.kernel);
    await sleep(CONFIRM_WITHIN_MS + MARGIN_MS);
    recording = false;
    await router.commit.close();
    await rm(router.stateDir, { recursive: true, force: true });
  }
});

function injectionsAt(point: string): Injection[] {
  if (point.startsWith('state.')) {
    return [
      { kind: 'errno', code: 'ENOSPC' },
      { kind: 'errno', code: 'EROFS' },
      { kind: 'errno', code: 'EIO' },
      { kind: 'kill' },
    ];
  }
  return [{ kind: 'kernel-error' }, { kind: 'tool-missing' }, { kind: 'delete-interface' }, { kind: 'kill' }];
}

function describeCase(c: Case): string {
  const what = c.injection.kind === 'errno' ? c.injection.code : c.injection.kind;
  return `${c.scenario}: ${what} at hit ${c.hit} (${c.point})`;
}

/** One case: inject, wait out the deadline, check the invariant; then repair and check convergence. */
async function runCase(c: Case): Promise<string[]> {
  const problems: string[] = [];
  const fail = (what: string) => problems.push(`${describeCase(c)}: ${what}`);
  let armedAt = Number.POSITIVE_INFINITY;
  let repaired = false;
  let reached = false;
  let onKill: () => void = () => {};
  let wasKilled = false;
  const killed = new Promise<void>((resolve) => {
    onKill = resolve;
  });
  let router: Router | undefined;
  const action = (): FailpointAction => {
    switch (c.injection.kind) {
      case 'errno':
        return { kind: 'errno', code: c.injection.code };
      case 'kernel-error':
      case 'tool-missing':
        return { kind: c.injection.kind };
      case 'delete-interface':
        return { kind: 'call', run: () => router!.kernel.deleteInterface(VLAN) };
      case 'kill':
        return {
          kind: 'call',
          run: async () => {
            wasKilled = true;
            onKill();
            // Stops here for good. Rooted, so what it holds open is not collected mid-run.
            const forever = new Promise<never>(() => {});
            hung.push(forever);
            await forever;
          },
        };
    }
  };
  const sticky = c.injection.kind === 'errno';
  const failpoints = new Failpoints([
    {
      // A disk that fills up (or goes read-only, or fails) stays so for every later write.
      match: (point, hit) => {
        if (repaired || hit < armedAt + c.hit) return false;
        if (hit === armedAt + c.hit) {
          reached = true;
          return true;
        }
        // On a full disk a file can still be removed; read-only and failing disks refuse that too.
        const removes =
          c.injection.kind === 'errno' && c.injection.code === 'ENOSPC' && point.startsWith('state.remove:');
        return sticky && reached && point.startsWith('state.') && !removes;
      },
      action: action(),
    },
  ]);
  router = await routerWithA(failpoints);
  armedAt = failpoints.hits;
  try {
    const outcome = await runScenario(router, c.scenario, killed);
    if (outcome !== 'killed') {
      for (const [call, error] of [
        ['apply', outcome.applyError],
        ['confirm', outcome.confirmError],
      ] as const) {
        if (error === undefined) continue;
        checkError(c, call, error, fail);
      }
    }
    await Promise.race([sleep(CONFIRM_WITHIN_MS + MARGIN_MS), killed]);
    if (wasKilled) {
      // The old instance stays stopped at the point, as a SIGKILLed process would; a new one
      // starts on the same state directory and kernel, as systemd would restart it.
      await sleep(20);
      router.commit = await open(router.stateDir, router.kernel, Failpoints.none, router.logs);
      await sleep(CONFIRM_WITHIN_MS + MARGIN_MS);
    }
    if (!reached) fail('the injection point was never reached (the walk is out of step with the code)');

    // The invariant, with the fault still in place.
    const status = await router.commit.status();
    await checkInvariant(c, router, status, fail);

    // Repair (space freed, remounted, the interface back) and converge.
    repaired = true;
    if (c.injection.kind === 'delete-interface') {
      router.kernel.setInterface(VLAN, exampleFacts().interfaces.eth2!);
    }
    await sleep(4 * 80 + 100);
    const after = await router.commit.status();
    if (after.faults?.some((f) => f.kind.startsWith('state-dir-'))) {
      fail(`after the repair status still reports ${JSON.stringify(after.faults)}`);
    }
    if (after.pending !== null)
      fail(`after the repair generation ${after.pending.generation} is still pending`);
    // The daemon is alive and takes a new apply: back to a clean A (re-applied as gen-c).
    const again = await router.commit.apply(
      { desired: desiredA(), generation: 'gen-c', confirmWithinMs: 60_000 },
      undefined,
    );
    if (again.pending !== null) await router.commit.confirm('gen-c');
    const final = ownedNow(router.kernel);
    if (JSON.stringify(final) !== JSON.stringify(router.kernelA))
      fail('a new apply of A after the repair did not give A');
  } catch (error) {
    fail(`threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (process.env.FAULTS_DEBUG && problems.length > 0) console.log(router.logs.join('\n'));
    await router.commit.close().catch(() => {});
    await rm(router.stateDir, { recursive: true, force: true });
  }
  return problems;
}

/** A case that does not settle in time is a failure of its own, not a hung test run. */
function withDeadline(c: Case, run: Promise<string[]>): Promise<string[]> {
  return Promise.race([run, sleep(15_000).then(() => [`${describeCase(c)}: did not settle within 15 s`])]);
}

/** Where "killed" instances stopped: kept referenced, so what they hold open is never collected mid-run. */
const hung: Promise<never>[] = [];

/** Faults are named as what they are: never a bare Error, a bug, "busy" or "locked". */
function checkError(c: Case, call: string, error: unknown, fail: (what: string) => void): void {
  const name = `${call} failed with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
  // A confirm that came too late (a slow, loaded machine) is refused truthfully; the
  // invariant checks after the deadline still apply.
  if (call === 'confirm' && (error as { code?: string }).code === 'not-pending') return;
  const kind = isAgentError(error) ? error.kind : (error as { code?: string }).code;
  switch (c.injection.kind) {
    case 'errno': {
      const fault = {
        ENOSPC: 'full',
        EROFS: 'read-only',
        EIO: 'unwritable',
        EACCES: 'unwritable',
        EDQUOT: 'full',
      }[c.injection.code];
      const wire = (error as { code?: string }).code;
      const ok =
        (isAgentError(error) && error.kind === 'state-dir' && error.fault === fault) ||
        wire === `state-dir-${fault}`;
      if (!ok) fail(`${name}; expected a state-dir ${fault} fault`);
      break;
    }
    case 'tool-missing':
      if (kind !== 'tool-missing') fail(`${name}; expected tool-missing`);
      break;
    case 'delete-interface':
      if (kind !== 'interface-missing' && kind !== 'kernel' && kind !== 'verify-failed')
        fail(`${name}; expected interface-missing`);
      break;
    case 'kernel-error':
      if (kind !== 'kernel' && kind !== 'verify-failed') fail(`${name}; expected a kernel error`);
      break;
    case 'kill':
      fail(`${name}; a kill cannot make a call fail`);
  }
  if (/this is a bug|locked/.test(error instanceof Error ? error.message : '')) fail(`${name}: misnamed`);
}

async function checkInvariant(
  c: Case,
  router: Router,
  status: StatusResult,
  fail: (what: string) => void,
): Promise<void> {
  const now = JSON.stringify(ownedNow(router.kernel));
  const facts = await router.kernel.readFacts();
  const a = await minusVanished(router.kernelA, router.kernel);
  // B applied before the interface went (less what went with it), or planned after it went.
  const b = [
    await minusVanished(kernelB, router.kernel),
    canonicalizeState(resolve(desiredB(), facts, {}).effective),
  ];
  const isA = now === JSON.stringify(a);
  const isB = b.some((state) => now === JSON.stringify(state));
  if (!isA && !isB) {
    fail(`the kernel holds neither A nor a confirmed B after the deadline: ${now}`);
    return;
  }
  if (isB) {
    if (status.applied?.generation !== 'gen-b' || status.pending !== null) {
      fail(
        `the kernel holds B but status says applied ${status.applied?.generation}, pending ${status.pending?.generation}`,
      );
    }
    return;
  }
  // The kernel holds A.
  if (status.applied?.generation !== 'gen-a')
    fail(`the kernel holds A but status says applied ${status.applied?.generation}`);
  if (status.pending !== null) {
    // Only while the revert cannot be recorded yet — and then status says so. A vanished
    // interface is no reason: what went with it is skipped, the rest is restored (D101).
    if (!(status.faults ?? []).some((f) => f.kind.startsWith('state-dir-')))
      fail(
        `the kernel holds A but gen-b is still pending without a state-dir fault: ${JSON.stringify(status.lastRevert)}`,
      );
    if (status.lastRevert?.generation !== 'gen-b' || status.lastRevert.result !== 'failed')
      fail(
        `the kernel holds A, gen-b still pending, and lastRevert does not say why: ${JSON.stringify(status.lastRevert)}`,
      );
    if (status.pending.deadline > status.now)
      fail('gen-b is pending with a deadline in the future after the revert began');
  }
  if (c.injection.kind === 'errno') {
    const want = {
      ENOSPC: 'state-dir-full',
      EROFS: 'state-dir-read-only',
      EIO: 'state-dir-unwritable',
      EACCES: 'state-dir-unwritable',
      EDQUOT: 'state-dir-full',
    }[c.injection.code];
    // The disk is still full (read-only, failing): status must say so, whatever else happened.
    if (!(status.faults ?? []).some((f) => f.kind === want)) {
      fail(`status does not report ${want}: ${JSON.stringify(status.faults)}`);
    }
  }
  if (c.injection.kind === 'delete-interface') {
    if (!(status.faults ?? []).some((f) => f.kind === 'interface-missing' && f.subject === VLAN)) {
      fail(`status does not report interface ${VLAN} missing: ${JSON.stringify(status.faults)}`);
    }
  }
}

describe('commit-confirmed under every injected fault (memory dataplane)', () => {
  let cases: Case[] = [];
  beforeAll(() => {
    cases = (['confirm', 'timeout'] as const).flatMap((scenario) =>
      recorded[scenario].flatMap((point, hit) =>
        injectionsAt(point).map((injection) => ({ scenario, hit, point, injection })),
      ),
    );
  });
  afterAll(() => {});

  it('the walk covers every kind of injection point of an apply, a confirm and a timed-out revert', () => {
    if (process.env.FAULTS_DEBUG) console.log(JSON.stringify(recorded, null, 1));
    const points = new Set([...recorded.confirm, ...recorded.timeout]);
    for (const point of [
      'kernel.read',
      'kernel.ip-batch',
      'kernel.nft',
      'kernel.sysctl:net.ipv4.conf.eth1.rp_filter',
      `kernel.sysctl:net.ipv4.conf.${VLAN}.rp_filter`,
      'state.lock',
      'state.write:snapshot.json',
      'state.fsync:snapshot.json',
      'state.rename:snapshot.json',
      'state.fsync-dir:snapshot.json',
      'state.write:commit.json',
      'state.fsync:commit.json',
      'state.write:applied.json',
      'state.append:journal.jsonl',
      'state.fsync:journal.jsonl',
      'state.remove:snapshot.json',
    ]) {
      expect(points, point).toContain(point);
    }
    expect(cases.length).toBeGreaterThan(150);
  });

  it('every case: after the deadline the kernel holds A or a confirmed B, status is true, and it converges', async () => {
    const limit = pLimit(12);
    const only = process.env.FAULTS_ONLY === undefined ? undefined : new RegExp(process.env.FAULTS_ONLY);
    const selected = only === undefined ? cases : cases.filter((c) => only.test(describeCase(c)));
    const results = await Promise.all(selected.map((c) => limit(() => withDeadline(c, runCase(c)))));
    const problems = results.flat();
    expect(problems, problems.slice(0, 20).join('\n')).toEqual([]);
  }, 240_000);
});
