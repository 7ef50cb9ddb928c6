/**
 * The controller's transport against a real OpenSSH sshd on 127.0.0.1 with a fake agent as
 * the forced command (see sshd.ts). No timing assertions: retries use a recording sleep.
 */
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../agent/src/model/protocol.js';
import { parseStatusResult } from '../../controller/src/transport/agent-results.js';
import {
  type ApplyAndConfirmOptions,
  applyAndConfirm,
} from '../../controller/src/transport/apply-and-confirm.js';
import { fingerprintSha256, parsePublicKeyLine } from '../../controller/src/transport/host-key.js';
import { mapWithConcurrency } from '../../controller/src/transport/pool.js';
import { AgentSession } from '../../controller/src/transport/rpc-client.js';
import {
  connectSsh,
  readKnownHosts,
  type SshConnection,
  type SshTarget,
} from '../../controller/src/transport/ssh-transport.js';
import {
  AgentError,
  HostKeyError,
  ProtocolError,
  TransportError,
} from '../../controller/src/transport/transport-errors.js';
import { exampleDesiredState } from '../support/example-desired-state.js';
import { freePort, requireSshd, useSshd } from './sshd.js';

function fingerprintOf(line: string): string {
  const key = parsePublicKeyLine(line);
  if (!key.ok) throw new Error(key.error);
  return fingerprintSha256(key.value.blob);
}

/** Retry settings that never really wait: the sleeps are recorded instead. */
function fastRetry(attempts = 3): ApplyAndConfirmOptions & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    retry: { attempts, baseDelayMs: 100, maxDelayMs: 1_000 },
    random: () => 0,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
}

/** One session: connect, open the RPC channel, run `body`, close both. */
async function withSession<T>(target: SshTarget, body: (session: AgentSession) => Promise<T>): Promise<T> {
  const connection = await connectSsh(target, { connectTimeoutMs: 10_000 });
  try {
    const session = await AgentSession.open(connection, { callTimeoutMs: 20_000 });
    const result = await body(session);
    await session.close();
    return result;
  } finally {
    connection.close();
  }
}

/**
 * A TCP relay to sshd that dies like a management link: from the `cutAt`-th connection on,
 * nothing more is forwarded either way and nothing is closed — no FIN, no RST — so a
 * polite close never completes and a new connection never gets its handshake.
 */
async function cuttableRelay(upstreamPort: number, cutAt: number) {
  const sockets = new Set<Socket>();
  let connections = 0;
  let cut = false;
  const server = createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.on('error', () => {});
    if (++connections >= cutAt) cut = true;
    if (cut) return; // accepted by the kernel, never answered
    const upstream = netConnect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true });
    sockets.add(upstream);
    upstream.on('error', () => {});
    client.on('data', (chunk) => {
      if (!cut) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!cut) client.write(chunk);
    });
    client.on('end', () => {
      if (!cut) upstream.end();
    });
    upstream.on('end', () => {
      if (!cut) client.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!requireSshd())('SSH transport against a real sshd', () => {
  const sshd = useSshd();
  const desired = exampleDesiredState();
  beforeEach(() => sshd.current.reset());

  it('applies on one connection and confirms on a second, new one', async () => {
    const outcome = await applyAndConfirm(
      sshd.current.target('branch-1'),
      desired,
      'gen-1',
      60_000,
      fastRetry(),
    );
    expect(outcome).toEqual({
      site: 'branch-1',
      generation: 'gen-1',
      outcome: 'applied',
      changes: 2,
      attempts: { apply: 1, confirm: 1 },
    });
    const events = sshd.current.events();
    const sessions = events.filter((e) => e.event === 'session');
    expect(sessions).toHaveLength(2);
    expect(sessions.map((e) => e.command)).toEqual(['uplink-agent rpc', 'uplink-agent rpc']);
    // Two TCP connections: two different client source ports.
    expect(new Set(sessions.map((e) => e.sourcePort)).size).toBe(2);
    const [first, second] = sessions;
    const requests = (port: number) =>
      events.filter((e) => e.event === 'request' && e.sourcePort === port).map((e) => e.method);
    expect(requests(first!.sourcePort)).toEqual(['hello', 'apply']);
    expect(requests(second!.sourcePort)).toEqual(['hello', 'confirm']);
    expect(sshd.current.agentState()).toEqual({ pending: null, applied: 'gen-1' });
  });

  it('carries several calls on one session', async () => {
    const results = await withSession(sshd.current.target(), async (session) => [
      await session.hello(),
      await session.plan(desired),
      await session.status(),
    ]);
    expect(results[0]).toMatchObject({ agent: 'fake-agent', protocol: 4 });
    expect(results[1]).toEqual({ changes: [{ action: 'create' }] });
    expect(sshd.current.events().filter((e) => e.event === 'session')).toHaveLength(1);
  });

  it('refuses a host key that is not the pinned one, before sending anything', async () => {
    const target = sshd.current.target('branch-2', { hostKey: sshd.current.wrongHostKeyLine });
    const error = await connectSsh(target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostKeyError);
    const hostKeyError = error as HostKeyError;
    expect(hostKeyError.kind).toBe('refused');
    expect(hostKeyError.retryable).toBe(false);
    expect(hostKeyError.presented).toBe(fingerprintOf(sshd.current.hostKeyLine));
    expect(hostKeyError.expected).toEqual([fingerprintOf(sshd.current.wrongHostKeyLine)]);
    expect(hostKeyError.message).toMatch(/^branch-2 \(127\.0\.0\.1:\d+\): HOST KEY MISMATCH/);
    expect(hostKeyError.message).toContain(fingerprintOf(sshd.current.hostKeyLine));
    expect(hostKeyError.message).toContain(fingerprintOf(sshd.current.wrongHostKeyLine));

    const options = fastRetry(5);
    const outcome = await applyAndConfirm(target, desired, 'gen-1', 60_000, options);
    expect(outcome.outcome).toBe('refused');
    expect(outcome.attempts).toEqual({ apply: 1, confirm: 0 });
    expect(options.delays).toEqual([]);
    expect(sshd.current.events()).toEqual([]);
  });

  it('refuses to connect with no pinned key (no trust on first use)', async () => {
    const target = sshd.current.target('branch-3', { hostKey: undefined });
    await expect(connectSsh(target)).rejects.toThrow(/branch-3 .*no host key pinned/);
    expect(sshd.current.events()).toEqual([]);
  });

  it('offers only the pinned key type, so a pinned ecdsa key works on a server that also has ed25519', async () => {
    const target = sshd.current.target('branch-4', { hostKey: sshd.current.ecdsaHostKeyLine });
    await expect(withSession(target, (s) => s.hello())).resolves.toMatchObject({ agent: 'fake-agent' });
  });

  it('trusts a known_hosts file when no key is pinned in the spec', async () => {
    const knownHosts = await readKnownHosts(sshd.current.knownHostsPath);
    const target = sshd.current.target('branch-5', { hostKey: undefined, knownHosts });
    await expect(withSession(target, (s) => s.hello())).resolves.toMatchObject({ agent: 'fake-agent' });

    const otherPort = sshd.current.target('branch-5', {
      hostKey: undefined,
      knownHosts: knownHosts.replace(`]:${sshd.current.port} `, ']:1 '),
    });
    await expect(connectSsh(otherPort)).rejects.toBeInstanceOf(HostKeyError);
  });

  it('retries a refused TCP connection with backoff, then reports the site unreachable', async () => {
    const target = sshd.current.target('branch-6', { port: await freePort() });
    const options = fastRetry(4);
    const outcome = await applyAndConfirm(target, desired, 'gen-1', 60_000, options);
    expect(outcome.outcome).toBe('unreachable');
    expect(outcome.attempts).toEqual({ apply: 4, confirm: 0 });
    expect(outcome.error).toMatchObject({ kind: 'transport', code: 'connection-refused' });
    expect(options.delays).toEqual([50, 100, 200]);
  });

  it('does not retry a refused apply', async () => {
    sshd.current.setMode({ mode: 'refuse-apply' });
    const options = fastRetry(5);
    const outcome = await applyAndConfirm(sshd.current.target('branch-7'), desired, 'gen-1', 60_000, options);
    expect(outcome).toMatchObject({
      outcome: 'refused',
      attempts: { apply: 1, confirm: 0 },
      error: { kind: 'refused', code: 'conflict' },
    });
    expect(outcome.error?.message).toBe(
      'branch-7: apply failed: conflict: table 101 holds routes Uplink does not own',
    );
    expect(options.delays).toEqual([]);
    expect(sshd.current.events().filter((e) => e.event === 'session')).toHaveLength(1);
  });

  it('retries a busy agent, which applied nothing', async () => {
    sshd.current.setMode({ mode: 'busy' });
    const options = fastRetry(3);
    const outcome = await applyAndConfirm(sshd.current.target('branch-8'), desired, 'gen-1', 60_000, options);
    expect(outcome).toMatchObject({ outcome: 'unreachable', attempts: { apply: 3, confirm: 0 } });
    expect(outcome.error).toMatchObject({ code: 'busy' });
  });

  it('retries a channel closed before any response', async () => {
    sshd.current.setMode({ mode: 'close-immediately' });
    const error = await withSession(sshd.current.target('branch-9'), (s) => s.hello()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ reason: 'closed-before-response', retryable: true });

    const options = fastRetry(3);
    const outcome = await applyAndConfirm(sshd.current.target('branch-9'), desired, 'gen-1', 60_000, options);
    expect(outcome).toMatchObject({ outcome: 'unreachable', attempts: { apply: 3, confirm: 0 } });
  });

  it('never re-sends an apply whose answer was lost, and does not confirm it', async () => {
    sshd.current.setMode({ mode: 'close-on-apply' });
    const options = fastRetry(5);
    const outcome = await applyAndConfirm(
      sshd.current.target('branch-10'),
      desired,
      'gen-1',
      60_000,
      options,
    );
    expect(outcome).toMatchObject({
      outcome: 'unconfirmed',
      attempts: { apply: 1, confirm: 0 },
      error: { kind: 'transport', code: 'closed-before-response' },
    });
    expect(sshd.current.events().filter((e) => e.method === 'apply')).toHaveLength(1);
  });

  it('does not confirm when the second connection cannot be made; the agent keeps it pending to revert', async () => {
    const closedPort = await freePort();
    let connections = 0;
    const options: ApplyAndConfirmOptions = {
      ...fastRetry(3),
      // The first connection goes to sshd; every later one to a closed port (a cut management path).
      connector: (target, connectOptions) =>
        connectSsh(connections++ === 0 ? target : { ...target, port: closedPort }, connectOptions),
    };
    const outcome = await applyAndConfirm(
      sshd.current.target('branch-11'),
      desired,
      'gen-2',
      60_000,
      options,
    );
    expect(outcome).toMatchObject({
      outcome: 'unconfirmed',
      changes: 2,
      attempts: { apply: 1, confirm: 3 },
      error: { kind: 'transport', code: 'connection-refused' },
    });
    expect(sshd.current.events().filter((e) => e.method === 'confirm')).toEqual([]);
    expect(sshd.current.agentState().pending).toMatchObject({ generation: 'gen-2' });
  });

  it('a management link that dies right after the apply answers: unconfirmed within confirmWithin + margin, every socket gone', async () => {
    // The second connection (the confirm's) is the moment the controller has the apply's
    // answer: from then on the relay forwards nothing and closes nothing.
    const relay = await cuttableRelay(sshd.current.port, 2);
    const connections: SshConnection[] = [];
    const confirmWithinMs = 3_000;
    const settleMarginMs = 5_000;
    try {
      const started = Date.now();
      const outcome = await applyAndConfirm(
        sshd.current.target('branch-cut', { port: relay.port }),
        desired,
        'gen-cut',
        confirmWithinMs,
        {
          ...fastRetry(3),
          settleMarginMs,
          connector: async (target, options) => {
            const connection = await connectSsh(target, options);
            connections.push(connection);
            return connection;
          },
        },
      );
      const elapsed = Date.now() - started;
      expect(outcome).toMatchObject({ outcome: 'unconfirmed', changes: 2, attempts: { apply: 1 } });
      expect(elapsed).toBeLessThan(confirmWithinMs + settleMarginMs);
      // The apply's connection was closed politely into a dead link: it is gone all the
      // same (destroyed after the grace), so nothing keeps the process alive.
      expect(connections.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 50));
      expect(connections.map((c) => c.closed)).toEqual(connections.map(() => true));
      expect(sshd.current.events().filter((e) => e.method === 'confirm')).toEqual([]);
      expect(sshd.current.agentState().pending).toMatchObject({ generation: 'gen-cut' });
    } finally {
      await relay.close();
    }
  });

  it('skips the confirm when nothing changed and nothing is pending', async () => {
    sshd.current.setMode({ mode: 'no-changes' });
    const outcome = await applyAndConfirm(
      sshd.current.target('branch-12'),
      desired,
      'gen-1',
      60_000,
      fastRetry(),
    );
    expect(outcome).toEqual({
      site: 'branch-12',
      generation: 'gen-1',
      outcome: 'unchanged',
      changes: 0,
      attempts: { apply: 1, confirm: 0 },
    });
    expect(sshd.current.events().filter((e) => e.event === 'session')).toHaveLength(1);
  });

  it('maps a confirm the agent refuses (not pending) to a final refusal', async () => {
    const target = sshd.current.target('branch-13');
    await withSession(target, (s) => s.apply({ desired, generation: 'gen-a', confirmWithinMs: 60_000 }));
    const error = await withSession(target, (s) => s.confirm('gen-b')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect(error).toMatchObject({ kind: 'refused', code: 'not-pending', retryable: false });
  });

  it.each([
    ['oversized', new RegExp(`line over ${MAX_LINE_BYTES} bytes`)],
    ['malformed-json', /not JSON: "this is not json"/],
    ['malformed-schema', /invalid response/],
    ['wrong-id', /answered request id 1001, which was never sent/],
  ] as const)('refuses a %s response and does not retry it', async (mode, message) => {
    sshd.current.setMode({ mode });
    const error = await withSession(sshd.current.target('branch-14'), (s) => s.hello()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toMatch(message);
    expect((error as ProtocolError).message).toMatch(/^branch-14: /);

    sshd.current.reset();
    sshd.current.setMode({ mode });
    const options = fastRetry(5);
    const outcome = await applyAndConfirm(
      sshd.current.target('branch-14'),
      desired,
      'gen-1',
      60_000,
      options,
    );
    expect(outcome).toMatchObject({
      outcome: 'failed',
      attempts: { apply: 1, confirm: 0 },
      error: { kind: 'failed' },
    });
  });

  describe('version skew (D91): either upgrade order works', () => {
    it('an agent from before negotiation (revision 1): hello falls back, apply and confirm work, its status parses', async () => {
      sshd.current.setMode({ revision: 1 });
      const target = sshd.current.target('old-agent');
      const outcome = await applyAndConfirm(target, desired, 'gen-1', 60_000, fastRetry());
      expect(outcome).toMatchObject({ outcome: 'applied', changes: 2 });
      const [hello, status] = await withSession(
        target,
        async (s) => [await s.hello(), await s.status()] as const,
      );
      expect(hello).toMatchObject({ protocol: 1, supported: [1], agent: 'uplink-agent/0.1.0' });
      expect(parseStatusResult(status).applied?.generation).toBe('gen-1');
      // Each session asked for revision 4, was refused, and asked again for revision 1.
      const hellos = sshd.current.events().filter((e) => e.event === 'request' && e.method === 'hello');
      expect(hellos.length).toBe(6);
    });

    it('a session with an old agent negotiates revision 1; with a revision-2 agent 2; with this release, 4', async () => {
      sshd.current.setMode({ revision: 1 });
      expect(
        await withSession(sshd.current.target(), async (s) => (await s.hello(), s.protocolRevision)),
      ).toBe(1);
      sshd.current.setMode({ revision: 2 });
      expect(
        await withSession(sshd.current.target(), async (s) => (await s.hello(), s.protocolRevision)),
      ).toBe(2);
      sshd.current.setMode({ revision: 4 });
      const negotiated = await withSession(sshd.current.target(), async (s) => {
        await s.hello();
        return s.protocolRevision;
      });
      expect(negotiated).toBe(4);
    });

    it('an agent a revision ahead: fields this controller does not know are ignored everywhere', async () => {
      sshd.current.setMode({ revision: 5 });
      const target = sshd.current.target('new-agent');
      const outcome = await applyAndConfirm(target, desired, 'gen-1', 60_000, fastRetry());
      expect(outcome).toMatchObject({ outcome: 'applied', changes: 2, attempts: { apply: 1, confirm: 1 } });
      const [hello, revision, status] = await withSession(
        target,
        async (s) => [await s.hello(), s.protocolRevision, await s.status()] as const,
      );
      expect(hello).toMatchObject({ protocol: 4, supported: [1, 2, 3, 4, 5] });
      expect(revision).toBe(4);
      const parsed = parseStatusResult(status);
      expect(parsed.applied?.generation).toBe('gen-1');
      expect(JSON.stringify(parsed)).not.toContain('addedInRevision5');
    });

    it('an agent a revision ahead refusing with a code this controller has no name for: final, its message kept', async () => {
      sshd.current.setMode({ revision: 5, mode: 'refuse-apply' });
      const outcome = await applyAndConfirm(
        sshd.current.target('new-agent'),
        desired,
        'gen-1',
        60_000,
        fastRetry(),
      );
      expect(outcome).toMatchObject({
        outcome: 'failed',
        attempts: { apply: 1, confirm: 0 },
        error: { kind: 'failed', code: 'quota-exceeded', message: expect.stringMatching(/no name for/) },
      });
    });
  });

  it('runs many sites with bounded concurrency', async () => {
    sshd.current.setMode({ holdMs: 150 });
    const sites = Array.from({ length: 10 }, (_, i) => sshd.current.target(`site-${i}`));
    let running = 0;
    let maxRunning = 0;
    const results = await mapWithConcurrency(sites, 3, async (target) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        return await withSession(target, async (session) => {
          await session.status();
          return target.site;
        });
      } finally {
        running--;
      }
    });
    expect(results).toEqual(sites.map((t) => t.site));
    expect(maxRunning).toBe(3);
    const events = sshd.current.events();
    expect(events.filter((e) => e.event === 'session')).toHaveLength(10);
    // The agent side never saw more than three live sessions.
    expect(Math.max(...events.map((e) => e.active))).toBeLessThanOrEqual(3);
  });
});
