/**
 * The GitOps loop against real git: a bare "remote" and a working clone made by the test,
 * commits pushed; the daemon (in process) picks them up by polling and by webhook. The
 * agents are the in-memory FakeFleet (commit-confirmed semantics), so these tests are
 * about the loop; the namespace tests (controller-rollout-lab) cover real routers.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHttpServer } from '../controller/src/http/http-server.js';
import {
  ControllerDaemon,
  type ControllerDaemonOptions,
  STATUS_FILE,
} from '../controller/src/run/controller-daemon.js';
import {
  createFleetRemote,
  createGpgKey,
  createKeyring,
  type FleetRemote,
  stopGpgAgent,
} from './git/fleet-remote.js';
import { brokenSite, smallFleetFiles } from './git/small-fleet.js';
import { FakeFleet } from './support/fake-site-transport.js';
import { until } from './until.js';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';
const SITES = ['s1', 's2', 's3', 's4', 's5'].map((name, i) => ({
  name,
  address: `192.0.2.${10 + i}`,
  hostKey: HOST_KEY,
}));
const files = (version: number) => smallFleetFiles({ sites: SITES, version });

let remote: FleetRemote;
let stateDir: string;
let daemon: ControllerDaemon | undefined;

beforeEach(async () => {
  remote = await createFleetRemote();
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-ctl-'));
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await remote.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

function startDaemon(
  agents: FakeFleet,
  options: Partial<ControllerDaemonOptions> = {},
): Promise<ControllerDaemon> {
  daemon = new ControllerDaemon({
    repo: { url: remote.bare, branch: remote.branch },
    stateDir,
    transport: agents,
    log: pino({ level: 'silent' }),
    pollIntervalMs: 100,
    statusPollIntervalMs: 3_600_000,
    freshForMs: 60_000,
    concurrency: 4,
    signatures: null,
    version: 'test',
    ...options,
  });
  return daemon.start().then(() => daemon!);
}

const appliedVersion = (agents: FakeFleet, d: ControllerDaemon, commit: string) =>
  SITES.every((s) => agents.appliedHash(s.name) !== undefined) &&
  d.state.rollout?.plan.commit === commit &&
  d.state.rollout.phase === 'done';

describe('uplink run: the GitOps loop on a real repository', () => {
  it('picks up pushed commits by polling and rolls each out to every site, canary first', async () => {
    const agents = new FakeFleet(SITES.map((s) => s.name));
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents);
    await until('v1 rolled out', () => appliedVersion(agents, d, c1));
    expect(agents.applies()[0]?.site).toBe('s1');
    const v1 = new Map(SITES.map((s) => [s.name, agents.appliedHash(s.name)]));
    const c2 = await remote.commit(files(2), 'v2');
    await until(
      'v2 rolled out',
      () => d.state.rollout?.plan.commit === c2 && d.state.rollout.phase === 'done',
    );
    for (const s of SITES) expect(agents.appliedHash(s.name)).not.toBe(v1.get(s.name));
    expect(d.state.lastGoodCommit).toBe(c2);
    // Waves in order: canary s1, then early (s2, s3), then the rest.
    const v2Applies = agents
      .applies()
      .slice(SITES.length)
      .map((c) => c.site);
    expect(v2Applies[0]).toBe('s1');
    expect(new Set(v2Applies.slice(1, 3))).toEqual(new Set(['s2', 's3']));
    expect(new Set(v2Applies.slice(3))).toEqual(new Set(['s4', 's5']));
  });

  it('a webhook POST fetches at once (the poll interval is an hour)', async () => {
    const agents = new FakeFleet(SITES.map((s) => s.name));
    const c1 = await remote.commit(files(1), 'v1');
    const secretFile = join(stateDir, 'secret');
    await writeFile(secretFile, 'hunter2\n');
    const d = await startDaemon(agents, { pollIntervalMs: 3_600_000 });
    const http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      status: () => d.status(),
      siteDetail: (site, status) => d.siteDetail(site, status),
      metrics: d.metrics,
      onWebhook: () => void d.triggerFetch(),
      webhookSecret: (await readFile(secretFile, 'utf8')).trim(),
    });
    try {
      await until('v1 rolled out', () => appliedVersion(agents, d, c1));
      const c2 = await remote.commit(files(2), 'v2');
      const refused = await fetch(`${http.url}/webhook`, {
        method: 'POST',
        headers: { 'X-Uplink-Token': 'wrong' },
      });
      expect(refused.status).toBe(401);
      const accepted = await fetch(`${http.url}/webhook`, {
        method: 'POST',
        headers: { Authorization: 'Bearer hunter2' },
      });
      expect(accepted.status).toBe(202);
      await until(
        'v2 rolled out',
        () => d.state.rollout?.plan.commit === c2 && d.state.rollout.phase === 'done',
      );
      const status = (await (await fetch(`${http.url}/api/status`)).json()) as {
        lastGoodCommit: string;
        summary: { byState: Record<string, number> };
      };
      expect(status.lastGoodCommit).toBe(c2);
      // The finished-rollout counter moves once the state is flushed, just after phase "done".
      let metrics = '';
      await until('both rollouts counted', async () => {
        metrics = await (await fetch(`${http.url}/metrics`)).text();
        return /uplink_rollouts_total\{result="done"\} 2/.test(metrics);
      });
      expect(metrics).toMatch(/uplink_apply_duration_seconds_count\{outcome="applied"\} 10/);
      expect((await fetch(`${http.url}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${http.url}/`)).text()).toContain('<html');
    } finally {
      await http.close();
    }
  });

  it('an invalid commit changes nothing and is reported; the fixed commit rolls out', async () => {
    const agents = new FakeFleet(SITES.map((s) => s.name));
    const c1 = await remote.commit(files(1), 'v1');
    const d = await startDaemon(agents);
    await until('v1 rolled out', () => appliedVersion(agents, d, c1));
    const applied = agents.applies().length;
    const before = SITES.map((s) => agents.appliedHash(s.name));
    const bad = await remote.commit({ ...files(2), ...brokenSite('s3') }, 'broken');
    await until('the bad commit is refused', () => d.state.lastInvalidCommit?.commit === bad);
    expect(d.state.lastInvalidCommit).toMatchObject({ reason: 'invalid-spec' });
    expect(d.state.lastInvalidCommit?.diagnostics[0]).toMatchObject({ file: 'sites/s3.yaml' });
    expect(d.state.lastGoodCommit).toBe(c1);
    expect(agents.applies().length).toBe(applied);
    expect(SITES.map((s) => agents.appliedHash(s.name))).toEqual(before);
    const status = d.status();
    expect(status.lastInvalidCommit?.diagnostics[0]).toMatch(/^sites\/s3\.yaml:\d+:\d+: error: /);
    const fixed = await remote.commit(files(2), 'fixed');
    await until(
      'the fixed commit rolled out',
      () => d.state.rollout?.plan.commit === fixed && d.state.rollout.phase === 'done',
    );
    expect(SITES.map((s) => agents.appliedHash(s.name))).not.toEqual(before);
    // The daemon writes its status for `uplink status --state-dir`.
    await until('status.json written', async () =>
      (await readFile(join(stateDir, STATUS_FILE), 'utf8').catch(() => '')).includes(fixed),
    );
  });

  it('signed-commit mode: an unsigned commit is never rolled out; a signed one is', async () => {
    const agents = new FakeFleet(SITES.map((s) => s.name));
    const key = await createGpgKey(remote.root, 'fleet-signer');
    const keyring = await createKeyring(remote.root, [key.publicKey]);
    try {
      const unsigned = await remote.commit(files(1), 'unsigned');
      const d = await startDaemon(agents, { signatures: { gpgHome: keyring } });
      await until('the unsigned commit is refused', () => d.state.lastInvalidCommit?.commit === unsigned);
      expect(d.state.lastInvalidCommit?.reason).toBe('signature');
      expect(d.state.lastInvalidCommit?.message).toMatch(/not signed/);
      expect(agents.applies()).toEqual([]);
      expect(d.state.lastGoodCommit).toBeNull();
      const signed = await remote.commit(files(2), 'signed', {
        signingKey: key.fingerprint,
        gpgHome: key.home,
      });
      await until(
        'the signed commit rolled out',
        () => d.state.rollout?.plan.commit === signed && d.state.rollout.phase === 'done',
      );
      expect(agents.applies().length).toBe(SITES.length);
    } finally {
      await stopGpgAgent(key.home);
      await stopGpgAgent(keyring);
    }
  });
});
