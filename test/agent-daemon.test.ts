/**
 * The agent daemon over its unix socket, with the memory dataplane: commit-confirmed
 * (apply → confirm, timeout revert, restart recovery), one writer, the management-path
 * guard, and protocol hardening. Kernel behaviour is in agent-daemon-ssh.test.ts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { AGENT_VERSION } from '../agent/src/daemon/agent-version.js';
import { parseSshConnection } from '../agent/src/daemon/check-management-path.js';
import { type RunningDaemon, startDaemon } from '../agent/src/daemon/daemon.js';
import { WIRE_MAX_LINE_BYTES, WIRE_PROTOCOL_VERSION } from '../agent/src/daemon/wire-limits.js';
import { MemoryDataplane } from '../agent/src/dataplane/memory.js';
import { withFailpoints } from '../agent/src/dataplane/with-failpoints.js';
import { Failpoints, parseFailpoints } from '../agent/src/faults/failpoints.js';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { KernelState } from '../agent/src/model/kernel-state.js';
import { LineSplitter } from '../agent/src/model/line-splitter.js';
import {
  errorResponse as errorResponseSchema,
  MAX_LINE_BYTES,
  type Method,
  PROTOCOL_VERSION,
  type resultSchemas,
} from '../agent/src/model/protocol.js';
import { routerFacts, routerFactsHash } from '../agent/src/model/router-facts.js';
import { JsonLinesClient } from './lab/json-lines.js';
import { mulberry32, randomInvalidLine } from './lab/rpc-fuzz.js';
import { parseExactResult } from './support/exact-result.js';
import { exampleDesiredState, exampleFacts, withContentHash } from './support/example-desired-state.js';
import * as released from './support/protocol-1-as-released.js';

/** The controller reaches the router's mgmt0 (10.77.0.2) from 10.77.0.1. */
const SSH_CONNECTION = '10.77.0.1 50022 10.77.0.2 22';

function freshRouter(): MemoryDataplane {
  const facts = exampleFacts();
  return new MemoryDataplane({
    facts: {
      interfaces: {
        ...facts.interfaces,
        mgmt0: { exists: true, up: true, addresses: [{ address: '10.77.0.2', prefixLength: 24 }] },
      },
    },
    rules: [
      { priority: 0, action: 'lookup', table: 255, protocol: 2 },
      { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
      { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
    ],
    routes: [
      { table: 254, dst: '0.0.0.0/0', type: 'unicast', dev: 'eth1', gateway: '198.51.100.1', protocol: 4 },
      {
        table: 254,
        dst: '10.77.0.0/24',
        type: 'unicast',
        dev: 'mgmt0',
        scope: 'link',
        src: '10.77.0.2',
        protocol: 2,
      },
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
    sysctls: { 'net.ipv4.conf.eth1.rp_filter': '1', 'net.ipv4.conf.ppp1.rp_filter': '1' },
  });
}

/** The example site without the `main suppress_prefixlength 0` rule, plus a rule that captures mgmt replies. */
function cuttingDesired(): DesiredState {
  const desired = exampleDesiredState();
  desired.rules = desired.rules.filter((r) => r.id !== 'main-specific');
  desired.rules.push({
    id: 'policy:everything/isp1',
    priority: 10050,
    action: 'lookup',
    table: 101,
    from: { kind: 'literal', cidr: '10.77.0.0/24' },
    requires: 'isp1',
  });
  return withContentHash(desired);
}

let stateDir: string;
let dataplane: MemoryDataplane;
let daemon: RunningDaemon | undefined;
let clock: { offset: number };

async function start(failpoints: Failpoints = Failpoints.none): Promise<RunningDaemon> {
  daemon = await startDaemon({
    stateDir,
    socketPath: join(stateDir, 'agent.sock'),
    dataplane: () => withFailpoints(dataplane, failpoints),
    failpoints,
    now: () => Date.now() + clock.offset,
    log: () => {},
    revertRetryMs: 200,
  });
  return daemon;
}

async function client(sshConnection: string | null = SSH_CONNECTION): Promise<JsonLinesClient> {
  const c = await JsonLinesClient.open(daemon!.socketPath);
  c.send({ bridge: 1, sshConnection });
  return c;
}

/** Asserts a success and validates the result against the protocol's schema for the method. */
function expectOk<M extends Method>(
  method: M,
  answer: Record<string, unknown>,
): z.infer<(typeof resultSchemas)[M]> {
  expect(answer, JSON.stringify(answer)).toMatchObject({ v: 1, ok: true });
  return parseExactResult(method, answer.result);
}

function expectError(answer: Record<string, unknown>, code: string) {
  const parsed = errorResponseSchema.parse(answer);
  expect(parsed.error.code, parsed.error.message).toBe(code);
  expect(parsed.error.message).not.toMatch(/\n\s+at /);
  return parsed.error;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function normalise(kernel: KernelState) {
  const key = (v: unknown) => JSON.stringify(v);
  return {
    ...kernel,
    rules: [...kernel.rules].sort((a, b) => a.priority - b.priority || key(a).localeCompare(key(b))),
    routes: [...kernel.routes].sort((a, b) => key(a).localeCompare(key(b))),
  };
}

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-daemon-'));
  dataplane = freshRouter();
  clock = { offset: 0 };
});
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
  await rm(stateDir, { recursive: true, force: true });
});

const applyParams = (
  generation: string,
  desired: DesiredState = exampleDesiredState(),
  confirmWithinMs = 60_000,
) => ({
  // As the compiler would stamp it: tests edit states, the agent checks the hash.
  desired: withContentHash(desired),
  generation,
  confirmWithinMs,
});

describe('agent daemon: commit-confirmed', () => {
  it('apply → pending; confirm on a second connection → applied; status reports it', async () => {
    await start();
    const before = dataplane.dump();
    const first = await client();
    const hello = expectOk('hello', await first.call(1, 'hello', { protocol: 1, client: 'test' }));
    expect(hello).toEqual({
      protocol: 1,
      supported: [1, 2, 3, 4],
      agent: `uplink-agent/${AGENT_VERSION}`,
      site: null,
    });
    const applied = expectOk('apply', await first.call(2, 'apply', applyParams('g1')));
    expect(applied.pending).toMatchObject({ generation: 'g1', site: 'branch-1' });
    expect(applied.applied).toBeNull();
    expect(applied.changes.length).toBeGreaterThan(10);
    expect(applied.managementPath).toMatchObject({ unchanged: true, current: { dev: 'mgmt0' } });
    expect(dataplane.dump()).not.toEqual(before);
    // The pending apply is on disk before the answer.
    const journal = JSON.parse(await readFile(join(stateDir, 'commit.json'), 'utf8'));
    expect(journal.pending).toMatchObject({
      generation: 'g1',
      phase: 'armed',
      deadline: applied.pending!.deadline,
    });
    first.end();

    const second = await client();
    const confirmed = expectOk('confirm', await second.call('c', 'confirm', { generation: 'g1' }));
    expect(confirmed).toMatchObject({
      generation: 'g1',
      alreadyConfirmed: false,
      applied: { generation: 'g1' },
    });
    const again = expectOk('confirm', await second.call('c2', 'confirm', { generation: 'g1' }));
    expect(again.alreadyConfirmed).toBe(true);
    const status = expectOk('status', await second.call('s', 'status', {}));
    expect(status).toMatchObject({
      agent: `uplink-agent/${AGENT_VERSION}`,
      protocol: 1,
      site: 'branch-1',
      applied: { generation: 'g1', hash: exampleDesiredState().hash },
      pending: null,
      lastRevert: null,
      owned: { rules: 10, nftRules: 5, sysctls: 2 },
    });
    expect(status.facts.providers.map((p) => [p.name, p.available])).toEqual([
      ['isp1', true],
      ['isp2', true],
      ['isp3', true],
    ]);
    expect(status.drift).toBeNull();
    expect(status.health).toEqual([]);
    second.end();
  });

  it('no confirm → reverts to the snapshot by itself and journals why', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1', exampleDesiredState(), 1_000)));
    await waitFor(() => daemon!.commit.record.pending === null);
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    const status = expectOk('status', await c.call(2, 'status', {}));
    expect(status).toMatchObject({
      applied: null,
      pending: null,
      lastRevert: { generation: 'g1', reason: 'confirm-timeout', result: 'ok' },
      owned: { rules: 0 },
    });
    expectError(await c.call(3, 'confirm', { generation: 'g1' }), 'not-pending');
    const journal = await readFile(join(stateDir, 'journal.jsonl'), 'utf8');
    expect(journal).toMatch(/"op":"commit-revert".*"reason":"confirm-timeout".*"result":"ok"/);
  });

  it('a confirm for another generation is refused; revert undoes the pending apply', async () => {
    await start();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1')));
    await c.call(2, 'confirm', { generation: 'g1' });
    const afterG1 = dataplane.dump();
    const second = exampleDesiredState();
    second.sysctls['net.ipv4.conf.eth1.rp_filter'] = '0';
    expectOk('apply', await c.call(3, 'apply', applyParams('g2', second)));
    const wrong = expectError(await c.call(4, 'confirm', { generation: 'g1' }), 'not-pending');
    expect(wrong.message).toMatch(/g1 is not pending; g2 is, until \d{4}-/);
    const reverted = expectOk('revert', await c.call(5, 'revert', {}));
    expect(reverted).toMatchObject({
      reverted: { generation: 'g2', reason: 'requested' },
      applied: { generation: 'g1' },
    });
    expect(normalise(dataplane.dump())).toEqual(normalise(afterG1));
    expectError(await c.call(6, 'revert', {}), 'not-pending');
  });

  it('a second apply while one is pending is refused as busy, naming it and its deadline', async () => {
    await start();
    const [a, b] = [await client(), await client()];
    const other = exampleDesiredState();
    other.sysctls['net.ipv4.conf.eth1.rp_filter'] = '0';
    a.send({ v: 1, id: 1, method: 'apply', params: applyParams('ga') });
    b.send({ v: 1, id: 1, method: 'apply', params: applyParams('gb', other) });
    const [[ra], [rb]] = await Promise.all([a.read(1), b.read(1)]);
    const answers = [ra!, rb!];
    const won = answers.filter((x) => x.ok === true);
    const lost = answers.filter((x) => x.ok === false);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = expectOk('apply', won[0]!).generation;
    const error = expectError(lost[0]!, 'busy');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`generation ${winner} is pending confirmation until 20`);
    // Nothing mixed: the kernel holds exactly the winner's state.
    const expected = winner === 'ga' ? '2' : '0';
    expect(dataplane.dump().sysctls['net.ipv4.conf.eth1.rp_filter']).toBe(expected);
  });

  it('an apply that changes nothing is applied at once with nothing to confirm', async () => {
    await start();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1')));
    expectOk('confirm', await c.call(2, 'confirm', { generation: 'g1' }));
    const calls = dataplane.applyCalls;
    const same = expectOk('apply', await c.call(3, 'apply', applyParams('g1b')));
    expect(same).toMatchObject({ changes: [], steps: 0, pending: null, applied: { generation: 'g1b' } });
    expect(dataplane.applyCalls).toBe(calls);
  });

  it('refuses a change that would move the management path, before changing anything', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    const plan = expectOk('plan', await c.call(1, 'plan', { desired: cuttingDesired() }));
    expect(plan.managementPath).toMatchObject({
      unchanged: false,
      current: { dev: 'mgmt0' },
      next: { dev: 'eth1' },
    });
    const error = expectError(
      await c.call(2, 'apply', applyParams('g1', cuttingDesired())),
      'management-path',
    );
    expect(error.message).toBe(
      'rule 10050 `from 10.77.0.0/24 lookup 101` would send replies to the controller 10.77.0.1 out eth1 instead of mgmt0; apply with allowManagementChange to do it anyway',
    );
    expect(dataplane.dump()).toEqual(before);
    expect(dataplane.applyCalls).toBe(0);
    expect(daemon!.commit.record.pending).toBeNull();
    // Told so, it applies (and is still commit-confirmed).
    const forced = expectOk(
      'apply',
      await c.call(3, 'apply', { ...applyParams('g1', cuttingDesired()), allowManagementChange: true }),
    );
    expect(forced.pending?.generation).toBe('g1');
    // Without SSH_CONNECTION (a local client) there is nothing to guard.
    const local = await client(null);
    const planLocal = expectOk('plan', await local.call(1, 'plan', { desired: cuttingDesired() }));
    expect(planLocal.managementPath).toBeNull();
  });
});

describe('agent daemon: restart with a pending apply', () => {
  it('deadline passed while down → reverts at once', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1', exampleDesiredState(), 5_000)));
    c.end();
    await daemon!.close();
    clock.offset = 10_000;
    await start();
    expect(daemon!.commit.record).toMatchObject({
      pending: null,
      lastRevert: { generation: 'g1', reason: 'deadline-passed-at-start', result: 'ok' },
    });
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
  });

  it('a revert that completed but could not be recorded (full disk) is recorded at start; no confirm can take it', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1', exampleDesiredState(), 60_000)));
    // The revert put the kernel and applied.json back and removed the snapshot; commit.json
    // still says pending (its write failed), and the agent stopped.
    const reverted = expectOk('revert', await c.call(2, 'revert', {}));
    expect(reverted.reverted.result).toBe('ok');
    c.end();
    await daemon!.close();
    const recorded = JSON.parse(await readFile(join(stateDir, 'commit.json'), 'utf8'));
    expect(recorded.pending).toBeNull();
    // Reconstruct what a failed write leaves: the armed record of g1, deadline still ahead.
    const armed = {
      ...recorded,
      pending: {
        generation: 'g1',
        hash: exampleDesiredState().hash,
        site: 'branch-1',
        at: Date.now(),
        deadline: Date.now() + 60_000,
        phase: 'armed',
        snapshotAt: '2026-01-01T00:00:00.000Z',
        confirmWithinMs: 60_000,
      },
      lastRevert: null,
    };
    await (await import('node:fs/promises')).writeFile(join(stateDir, 'commit.json'), JSON.stringify(armed));
    await start();
    expect(daemon!.commit.record.pending).toBeNull();
    expect(daemon!.commit.record.lastRevert).toMatchObject({ generation: 'g1', result: 'ok' });
    const again = await client();
    expectError(await again.call(1, 'confirm', { generation: 'g1' }), 'not-pending');
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    again.end();
  });

  it('deadline not passed → re-arms the rest; a confirm still works', async () => {
    await start();
    const c = await client();
    const applied = expectOk(
      'apply',
      await c.call(1, 'apply', applyParams('g1', exampleDesiredState(), 60_000)),
    );
    c.end();
    await daemon!.close();
    await start();
    expect(daemon!.commit.record.pending).toMatchObject({
      generation: 'g1',
      deadline: applied.pending!.deadline,
    });
    const d = await client();
    expectOk('confirm', await d.call(1, 'confirm', { generation: 'g1' }));
  });

  it('re-armed deadline still reverts when it comes', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    expectOk('apply', await c.call(1, 'apply', applyParams('g1', exampleDesiredState(), 1_500)));
    c.end();
    await daemon!.close();
    await start();
    expect(daemon!.commit.record.pending?.generation).toBe('g1');
    await waitFor(() => daemon!.commit.record.pending === null);
    expect(daemon!.commit.record.lastRevert).toMatchObject({ reason: 'confirm-timeout', result: 'ok' });
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
  });
});

describe('agent daemon: protocol', () => {
  it('answers requests sent before the client closed its side (echo … | ssh)', async () => {
    await start();
    const c = await client();
    c.send({ v: 1, id: 1, method: 'apply', params: applyParams('g1') });
    c.send({ v: 1, id: 2, method: 'status', params: {} });
    c.end();
    const answers = await c.read(2);
    expect(answers.map((a) => [a.id, a.ok]).sort()).toEqual([
      [1, true],
      [2, true],
    ]);
  });

  it('negotiates the protocol revision: the highest both speak; an unknown envelope version is refused', async () => {
    await start();
    const c = await client();
    expect(expectOk('hello', await c.call(1, 'hello', { protocol: 1, client: 'old' }))).toMatchObject({
      protocol: 1,
      supported: [1, 2, 3, 4],
    });
    expect(expectOk('hello', await c.call(2, 'hello', { protocol: 2, client: 'x' })).protocol).toBe(2);
    // A controller one revision ahead, with a hello field this agent does not know, is answered.
    expect(
      expectOk('hello', await c.call(3, 'hello', { protocol: 5, client: 'new', features: ['x'] })).protocol,
    ).toBe(4);
    // So is a status asked with a parameter this agent does not know.
    expectOk('status', await c.call(4, 'status', { detail: 'full' }));
    c.send({ v: 2, id: 7, method: 'hello', params: { protocol: 2, client: 'x' } });
    const [answer] = await c.read();
    expect(expectError(answer!, 'unsupported-version')).toBeTruthy();
    expect(answer!.id).toBe(7);
  });

  it('refuses malformed lines, wrong types, unknown methods and oversized lines, and stays up', async () => {
    await start();
    const c = await client();
    const cases: Array<[string, string]> = [
      ['{not json', 'bad-request'],
      ['[1,2,3]', 'bad-request'],
      ['"hello"', 'bad-request'],
      ['{"v":1,"id":1,"method":"status"}', 'bad-request'],
      ['{"v":1,"id":1,"method":"confirm","params":{"generation":"g","x":1}}', 'bad-request'],
      ['{"v":"1","id":1,"method":"status","params":{}}', 'bad-request'],
      ['{"v":1,"id":{},"method":"status","params":{}}', 'bad-request'],
      ['{"v":1,"id":1,"method":"reboot","params":{}}', 'unknown-method'],
      ['{"v":1,"id":1,"method":"__proto__","params":{}}', 'unknown-method'],
      ['{"v":1,"id":1,"method":"confirm","params":{"generation":"a b; rm -rf /"}}', 'bad-request'],
      ['{"v":1,"id":1,"method":"apply","params":{"generation":"g","confirmWithinMs":1}}', 'bad-request'],
    ];
    for (const [line, code] of cases) {
      c.write(`${line}\n`);
      const [answer] = await c.read();
      expectError(answer!, code);
    }
    c.write(`{"v":1,"id":1,"method":"status","params":{},"pad":"${'x'.repeat(MAX_LINE_BYTES)}"}\n`);
    expectError((await c.read())[0]!, 'too-large');
    expectOk('status', await c.call(9, 'status', {}));
    expect(dataplane.applyCalls).toBe(0);
  });

  it('1000 seeded random invalid messages: every one refused with a protocol error, nothing applied', async () => {
    await start();
    const before = dataplane.dump();
    const c = await client();
    const random = mulberry32(0x5eed);
    const lines = Array.from({ length: 1000 }, () => randomInvalidLine(random));
    for (const line of lines) c.write(`${line}\n`);
    const answers = await c.read(lines.length, 60_000);
    answers.forEach((answer, i) => {
      const parsed = errorResponseSchema.safeParse(answer);
      expect(parsed.success, `line ${i}: ${lines[i]!.slice(0, 200)} → ${JSON.stringify(answer)}`).toBe(true);
      expect(['bad-request', 'unknown-method', 'unsupported-version', 'too-large']).toContain(
        parsed.data!.error.code,
      );
    });
    expectOk('status', await c.call('alive', 'status', {}));
    expect(dataplane.applyCalls).toBe(0);
    expect(dataplane.dump()).toEqual(before);
  });
});

describe('agent daemon: faults on the wire (D103)', () => {
  /**
   * The disk fills up right after verify, when applied.json is written — the bug of issue 13 —
   * and stays full: every later write fails too (removing a file still works on a full disk).
   */
  const fullAfterVerify = () => {
    let full = false;
    return new Failpoints([
      {
        match: (point) => {
          if (point === 'state.write:applied.json') full = true;
          return full && point.startsWith('state.') && !point.startsWith('state.remove:');
        },
        action: { kind: 'errno', code: 'ENOSPC' },
      },
    ]);
  };

  it('a revision-3 session gets the fault by name, and status lists it; the change is reverted at once', async () => {
    await start(fullAfterVerify());
    const before = dataplane.dump();
    const c = await client();
    expectOk('hello', await c.call(1, 'hello', { protocol: 3, client: 'uplink-controller/0.1.0' }));
    const error = expectError(await c.call(2, 'apply', applyParams('g1')), 'state-dir-full');
    expect(error.message).toMatch(
      /^state directory .* is on a full filesystem \(ENOSPC writing applied\.json\): free space on its filesystem \(the previous state was restored\)$/,
    );
    expect(error.retryable).toBe(false);
    // Not "pending until it is noticed as drift": the kernel is back before the answer.
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    expect(daemon!.commit.record.pending).toBeNull();
    const status = expectOk('status', await c.call(3, 'status', {}));
    expect(status.lastRevert).toMatchObject({ generation: 'g1', reason: 'apply-failed', result: 'ok' });
    expect(status.faults).toEqual([expect.objectContaining({ kind: 'state-dir-full', subject: stateDir })]);
    c.end();
  });

  it('a revision-4 session gets the router facts with their hash; the hash alone when the controller holds them', async () => {
    await start();
    const c = await client();
    expectOk('hello', await c.call(1, 'hello', { protocol: 4, client: 'uplink-controller/0.1.0' }));
    expectOk('apply', await c.call(2, 'apply', applyParams('g1')));
    const first = expectOk('status', await c.call(3, 'status', {})).routerFacts!;
    const facts = routerFacts.parse(first.facts);
    expect(first.hash).toBe(routerFactsHash(facts));
    expect(facts.interfaces.mgmt0?.addresses).toEqual([{ address: '10.77.0.2', prefixLength: 24 }]);
    expect(facts.interfaces.ppp1).toEqual(exampleFacts().interfaces.ppp1);
    // The kernel's default rules are not Uplink's: they are facts.
    expect(facts.rules.map((r) => r.priority)).toEqual([0, 32766, 32767]);
    // The controller as the router sees it, for the management-path guard offline (no port: it changes).
    expect(facts.connection).toEqual({ controller: '10.77.0.1', router: '10.77.0.2', routerPort: 22 });
    // Uplink's own objects are not facts.
    expect(facts.rules.filter((r) => r.protocol === exampleDesiredState().settings.protocol)).toEqual([]);
    const again = expectOk('status', await c.call(4, 'status', { factsHash: first.hash })).routerFacts!;
    expect(again).toEqual({ hash: first.hash, readAt: expect.any(Number) });
    // A readdress changes the facts: sent in full again.
    dataplane.setInterface('ppp1', {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.1' }],
    });
    const moved = expectOk('status', await c.call(5, 'status', { factsHash: first.hash })).routerFacts!;
    expect(moved.hash).not.toBe(first.hash);
    expect(routerFacts.parse(moved.facts).interfaces.ppp1?.addresses[0]?.address).toBe('203.0.113.77');
    // Below revision 4, no facts.
    const old = await client();
    expectOk('hello', await old.call(1, 'hello', { protocol: 3, client: 'uplink-controller/0.1.0' }));
    expect(expectOk('status', await old.call(2, 'status', {}))).not.toHaveProperty('routerFacts');
    old.end();
    c.end();
  });

  it.each([1, 2])(
    'a revision-%i session gets the words it knows: same message, older codes, no new fields',
    async (revision) => {
      await start(fullAfterVerify());
      const c = await client();
      expectOk('hello', await c.call(1, 'hello', { protocol: revision, client: 'uplink-controller/0.1.0' }));
      const answer = await c.call(2, 'apply', applyParams('g1'));
      const error = released.errorResponse.parse(answer).error;
      expect(error.code).toBe('internal');
      expect(error.message).toMatch(/is on a full filesystem \(ENOSPC writing applied\.json\)/);
      expect(error.message).not.toMatch(/this is a bug/);
      const status = released.statusResult.parse((await c.call(3, 'status', {})).result);
      expect(status.lastRevert).toMatchObject({
        generation: 'g1',
        reason: 'interrupted-apply',
        result: 'ok',
      });
      expect(status).not.toHaveProperty('faults');
      // A session with no hello at all is an older client too.
      const bare = await client();
      released.statusResult.parse((await bare.call(1, 'status', {})).result);
      bare.end();
      c.end();
    },
  );

  it('a kernel tool that is missing is tool-missing, naming the tool and its package; nothing is left changed', async () => {
    await start(new Failpoints(parseFailpoints('kernel.nft=tool-missing')));
    const before = dataplane.dump();
    const c = await client();
    expectOk('hello', await c.call(1, 'hello', { protocol: 3, client: 'test' }));
    const error = expectError(await c.call(2, 'apply', applyParams('g1')), 'tool-missing');
    expect(error.message).toMatch(
      /^nft is not installed or not executable .*install the Debian package nftables/,
    );
    expect(error.message).toMatch(/the previous state was restored/);
    expect(normalise(dataplane.dump())).toEqual(normalise(before));
    c.end();
  });
});

describe('wire helpers', () => {
  it('the bridge constants equal the protocol', () => {
    expect(WIRE_MAX_LINE_BYTES).toBe(MAX_LINE_BYTES);
    expect(WIRE_PROTOCOL_VERSION).toBe(PROTOCOL_VERSION);
  });

  it('the agent version is the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
  });

  it('LineSplitter refuses over-long lines without buffering them, across chunks', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('ab'))).toEqual([]);
    expect(s.push(Buffer.from('cd\nabcdefgh'))).toEqual([{ line: Buffer.from('abcd') }]);
    expect(s.push(Buffer.from('ij\nxy\n'))).toEqual([{ tooLong: 10 }, { line: Buffer.from('xy') }]);
    expect(s.push(Buffer.from('z'))).toEqual([]);
    expect(s.end()).toEqual([{ line: Buffer.from('z') }]);
  });

  it('parses SSH_CONNECTION', () => {
    expect(parseSshConnection('192.0.2.1 50000 192.0.2.2 22')).toEqual({
      clientIp: '192.0.2.1',
      clientPort: 50000,
      serverIp: '192.0.2.2',
      serverPort: 22,
    });
    // IPv6, canonical; an IPv4-mapped peer (a dual-stack socket) is its IPv4 address.
    expect(parseSshConnection('2001:DB8:C0:0::5 50000 2001:db8:e0::2 22')).toEqual({
      clientIp: '2001:db8:c0::5',
      clientPort: 50000,
      serverIp: '2001:db8:e0::2',
      serverPort: 22,
    });
    expect(parseSshConnection('::ffff:192.0.2.1 50000 ::ffff:192.0.2.2 22')).toMatchObject({
      clientIp: '192.0.2.1',
      serverIp: '192.0.2.2',
    });
    expect(parseSshConnection('fe80::1%eth0 50000 fe80::2%eth0 22')).toBeUndefined();
    expect(parseSshConnection('192.0.2.1 50000 2001:db8::2 22')).toBeUndefined();
    expect(parseSshConnection('192.0.2.1 0x16 192.0.2.2 22')).toBeUndefined();
    expect(parseSshConnection('192.0.2.1 0 192.0.2.2 22')).toBeUndefined();
    expect(parseSshConnection(undefined)).toBeUndefined();
  });
});
