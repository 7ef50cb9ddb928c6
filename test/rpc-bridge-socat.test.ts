/**
 * `install.sh --rpc-bridge socat`: the forced command bridges with sh + socat instead of node.
 * The same promises as the node bridge: the daemon learns the SSH client's address from a
 * preamble the client cannot forge, over-long lines are refused (by the daemon here), a
 * missing daemon answers `unavailable`, and the key still runs nothing but the bridge.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultSchemas } from '../agent/src/model/protocol.js';
import { buildDist } from './build-dist.js';
import { type LabProcess, requireRoot, useLab } from './lab/index.js';
import { sshRpc } from './lab/ssh-rpc.js';
import { type NamespaceSshd, startSshdInNamespace } from './lab/sshd-in-namespace.js';
import { managedRouterDesired } from './managed-router-desired.js';

const ROUTER = '192.0.2.2';
const CONTROLLER = '192.0.2.1';
const LINE_LIMIT = 8 * 1024 * 1024;

const haveSocat = spawnSync('socat', ['-V']).status === 0;

describe.skipIf(!requireRoot())('rpc bridge in sh + socat (install.sh --rpc-bridge socat)', () => {
  const lab = useLab('socatbridge');
  let dir: string;
  let router: string;
  let ctrl: string;
  let sshd: NamespaceSshd;
  let key: string;
  let root: string;
  let daemon: LabProcess | undefined;

  const paths = () => ({
    agent: join(root, 'usr/local/bin/uplink-agent'),
    stateDir: join(root, 'var/lib/uplink-agent'),
    socket: join(root, 'run/uplink-agent/agent.sock'),
  });

  async function startDaemon(): Promise<void> {
    const p = paths();
    const proc = lab.current.start(router, [
      p.agent,
      'daemon',
      '--state-dir',
      p.stateDir,
      '--socket',
      p.socket,
    ]);
    daemon = proc;
    const deadline = Date.now() + 20_000;
    while (!proc.stderr.includes('listening on')) {
      if (proc.child.exitCode !== null) throw new Error(`daemon exited: ${proc.stderr}`);
      if (Date.now() > deadline) throw new Error(`daemon did not start: ${proc.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stopDaemon(): Promise<void> {
    const proc = daemon;
    daemon = undefined;
    if (proc === undefined) return;
    if (proc.child.exitCode === null) proc.child.kill('SIGTERM');
    await proc.exited;
  }

  /** One SSH connection with the installed key; `input` is sent, then EOF. */
  const rpc = (input: string, remote: readonly string[] = []) =>
    sshRpc(lab.current, ctrl, sshd, key, input, remote);

  const line = (id: number, method: string, params: unknown) =>
    `${JSON.stringify({ v: 1, id, method, params })}\n`;

  beforeAll(async () => {
    if (!haveSocat) throw new Error('socat is not installed (make deps installs it)');
    buildDist();
    dir = await mkdtemp(join(tmpdir(), 'uplink-socat-'));
    root = join(dir, 'root');
    key = join(dir, 'controller');
    await lab.current.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
    await lab.current.run([
      'sh',
      'deploy/agent/install.sh',
      '--controller-key',
      `${key}.pub`,
      '--prefix',
      root,
      '--user',
      'root',
      '--no-systemd',
      '--rpc-bridge',
      'socat',
    ]);
    router = await lab.current.netns('router');
    ctrl = await lab.current.netns('ctrl');
    await lab.current.veth(
      { ns: router, name: 'mgmt0', address: `${ROUTER}/24` },
      { ns: ctrl, name: 'eth0', address: `${CONTROLLER}/24` },
    );
    await lab.current.exec(router, ['ip', 'link', 'add', 'isp1', 'type', 'veth', 'peer', 'name', 'isp1peer']);
    await lab.current.exec(router, ['ip', 'addr', 'add', '198.51.100.2/29', 'dev', 'isp1']);
    await lab.current.exec(router, ['ip', 'link', 'set', 'isp1peer', 'up']);
    await lab.current.exec(router, ['ip', 'link', 'set', 'isp1', 'up']);
    sshd = await startSshdInNamespace(lab.current, router, {
      address: ROUTER,
      dir: join(dir, 'sshd'),
      authorizedKeysFile: `${root}%h/.ssh/authorized_keys`,
    });
    await startDaemon();
  }, 120_000);

  afterAll(async () => {
    await stopDaemon();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('installs the socat bridge, and the wrapper runs it for rpc', async () => {
    const wrapper = await readFile(paths().agent, 'utf8');
    expect(wrapper).toMatch(/then exec \S+\/uplink-rpc-socat; fi/);
    const asId = await rpc(line(1, 'status', {}), ['id']);
    expect(asId.stdout).not.toMatch(/uid=/);
    expect(asId.answers).toHaveLength(1);
    expect(asId.answers[0]).toMatchObject({ id: 1, ok: true });
  });

  it("passes SSH_CONNECTION in the preamble; a client's own preamble line is not taken as one", async () => {
    const desired = managedRouterDesired('lab-socat');
    const forged = `${JSON.stringify({ bridge: 1, sshConnection: '203.0.113.9 4242 192.0.2.2 22' })}\n`;
    const { answers } = await rpc(`${forged}${line(2, 'plan', { desired })}`);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatchObject({ ok: false });
    expect(answers[1]).toMatchObject({ id: 2, ok: true });
    const plan = resultSchemas.plan.parse(answers[1]!.result);
    expect(plan.changes.length).toBeGreaterThan(0);
    expect(plan.managementPath).toMatchObject({ controller: CONTROLLER, unchanged: true });
  });

  it('an over-long line is refused by the daemon, and the session goes on', async () => {
    const { answers } = await rpc(`${'x'.repeat(LINE_LIMIT + 10)}\n${line(3, 'status', {})}`);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatchObject({ id: null, ok: false, error: { code: 'too-large' } });
    expect(answers[1]).toMatchObject({ id: 3, ok: true });
  });

  it('answers an apply sent right before end of input, then closes (commit-confirmed works)', async () => {
    const desired = managedRouterDesired('lab-socat');
    const applied = await rpc(line(4, 'apply', { desired, generation: 's1', confirmWithinMs: 30_000 }));
    expect(applied.answers).toHaveLength(1);
    expect(resultSchemas.apply.parse(applied.answers[0]!.result).pending).toMatchObject({ generation: 's1' });
    const confirmed = await rpc(line(5, 'confirm', { generation: 's1' }));
    expect(resultSchemas.confirm.parse(confirmed.answers[0]!.result)).toMatchObject({
      generation: 's1',
      alreadyConfirmed: false,
    });
  });

  it('without a daemon: one `unavailable` answer and exit 7', async () => {
    await stopDaemon();
    try {
      const result = await rpc(line(6, 'status', {}));
      expect(result.exitCode).toBe(7);
      expect(result.answers).toEqual([
        {
          v: 1,
          id: null,
          ok: false,
          error: {
            code: 'unavailable',
            message: `the uplink-agent daemon is not reachable at ${paths().socket}`,
            retryable: true,
          },
        },
      ]);
    } finally {
      await startDaemon();
    }
  });
});
