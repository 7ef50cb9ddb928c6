/**
 * Commit-confirmed under the faults of issue 13, against the real kernel: a namespace router
 * with the agent installed by install.sh, real OpenSSH sshd, the controller's restricted key
 * (test/lab/managed-router.ts), its state directory on a small tmpfs of its own, and a
 * second uplink on a dotted (VLAN-style) interface name, enp2s0.7.
 *
 * - the disk fills up after the kernel changed (ENOSPC writing applied.json after verify —
 *   a real full tmpfs, filled while a failpoint holds the apply there): the apply answers
 *   state-dir-full, the kernel is back to the previous state before it answers, status says
 *   so, and once space is freed the records catch up;
 * - the interface vanishes during the apply (deleted while a failpoint holds the apply at
 *   its nft step) and while an apply is pending: the revert skips what went with the
 *   interface, restores everything else, completes, and says what it skipped; when the
 *   interface is back the confirmed state is followed back in;
 * - the agent SIGKILLed at a chosen step (a failpoint) is reverted by its restart;
 * - a read-only state directory and a missing nft are named as what they are, change
 *   nothing, and are logged once, not per poll;
 * - the controller: `uplink apply` (dist/uplink.mjs, ssh2) with the management link cut
 *   right after the apply answers reports `unconfirmed` within confirmWithin plus its margin,
 *   and the router reverts by itself.
 *
 * Failpoints (D102) only choose the moment; the faults themselves are real.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import type { StatusResult } from '../agent/src/model/protocol.js';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab, waitOperUp } from './lab/index.js';
import { ManagedRouter } from './lab/managed-router.js';
import { sshRpc } from './lab/ssh-rpc.js';
import { HEALTH_OFF, managedRouterDesired } from './managed-router-desired.js';
import { writeManagedRouterFleet } from './managed-router-fleet.js';
import { withContentHash } from './support/example-desired-state.js';
import { until } from './until.js';
import { git } from './uplink-cli.js';

const SITE = 'faults-1';
const VLAN = 'enp2s0.7';

/** Two uplinks: isp1, and isp2 on enp2s0.7 (dotted name), each with its table, track, SNAT, rp_filter. */
function desiredA(): DesiredState {
  const base = managedRouterDesired(SITE);
  return withContentHash({
    ...base,
    providers: [
      ...base.providers,
      {
        ...base.providers[0]!,
        name: 'isp2',
        interface: VLAN,
        gateway: { kind: 'static', address: '198.51.100.9' },
        table: 102,
        mark: 0x200,
        health: HEALTH_OFF,
      },
    ],
    rules: [
      ...base.rules,
      {
        id: 'track/isp2',
        priority: 1001,
        action: 'lookup',
        table: 102,
        fwmark: 0x200,
        fwmask: 0xff00,
        requires: 'isp2',
      },
      { id: 'default/isp2', priority: 30001, action: 'lookup', table: 102, requires: 'isp2' },
    ],
    routes: [
      ...base.routes,
      {
        id: 'isp2/default',
        table: 102,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        dev: VLAN,
        gateway: { kind: 'provider-gateway', provider: 'isp2' },
        requires: 'isp2',
        requiresUp: true,
      },
    ],
    nft: [
      ...base.nft,
      { kind: 'track-save', provider: 'isp2', iif: VLAN, mark: 0x200 },
      { kind: 'masquerade', provider: 'isp2', oif: VLAN },
    ],
    sysctls: { ...base.sysctls, [`net.ipv4.conf.${VLAN}.rp_filter`]: '2' },
  });
}

/** B changes something of every kind on both uplinks. */
function desiredB(): DesiredState {
  const a = desiredA();
  return withContentHash({
    ...a,
    rules: [
      ...a.rules,
      {
        id: 'policy:lab/isp2',
        priority: 10000,
        action: 'lookup',
        table: 102,
        from: { kind: 'literal', cidr: '10.99.0.0/16' },
        requires: 'isp2',
      },
    ],
    routes: a.routes.map((r) => (r.id === 'isp2/default' ? { ...r, metric: 7 } : r)),
    nft: a.nft.filter((n) => !(n.kind === 'masquerade' && n.provider === 'isp1')),
    sysctls: { 'net.ipv4.conf.isp1.rp_filter': '0', [`net.ipv4.conf.${VLAN}.rp_filter`]: '0' },
  });
}

describe.skipIf(!requireRoot())(
  'commit-confirmed under real faults, in namespaces (installed agent, sshd)',
  () => {
    const lab = useLab('faultsns');
    let m: ManagedRouter;
    let tmpfs: string | undefined;
    let generation = 0;

    /** One SSH session of the controller's key: hello asking for revision 3 (faults), then `method`. */
    async function call(method: string, params: unknown): Promise<Record<string, unknown>> {
      const lines = [
        { v: 1, id: 1, method: 'hello', params: { protocol: 3, client: 'faults-test' } },
        { v: 1, id: 2, method, params },
      ];
      const { answers, stderr } = await sshRpc(
        lab.current,
        m.ctrl,
        m.sshd,
        m.controllerKey,
        lines.map((l) => `${JSON.stringify(l)}\n`).join(''),
      );
      expect(answers, `${stderr}\ndaemon: ${m.daemonProcess?.stderr.slice(-3000)}`).toHaveLength(2);
      // Answers come in the order they are ready, not the order asked.
      return answers.find((a) => a.id === 2)!;
    }
    const status = async () => {
      const answer = await call('status', {});
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
      return answer.result as StatusResult;
    };
    const apply = (desired: DesiredState, confirmWithinMs = 60_000) => {
      const gen = `g${++generation}`;
      return { gen, answer: call('apply', { desired, generation: gen, confirmWithinMs }) };
    };
    const confirm = async (gen: string) => {
      const answer = await call('confirm', { generation: gen });
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
    };
    async function applyConfirmed(desired: DesiredState): Promise<string> {
      const { gen, answer } = apply(desired);
      const result = await answer;
      expect(result.ok, JSON.stringify(result)).toBe(true);
      if ((result.result as { pending: unknown }).pending !== null) await confirm(gen);
      return gen;
    }

    const exec = (argv: readonly string[]) => lab.current.exec(m.router, argv, { allowFailure: true });
    /** Uplink's objects in the router: rules, its two tables, table inet uplink, both rp_filters. */
    async function kernel(): Promise<string> {
      const out = async (argv: readonly string[]) => (await exec(argv)).stdout.trim();
      return [
        await out(['ip', 'rule', 'show']),
        await out(['ip', 'route', 'show', 'table', '101']),
        await out(['ip', 'route', 'show', 'table', '102']),
        await out(['nft', 'list', 'table', 'inet', 'uplink']),
        await out(['sysctl', '-n', 'net.ipv4.conf.isp1.rp_filter']),
        await out(['sysctl', '-n', `net.ipv4.conf.${VLAN.replace('.', '/')}.rp_filter`]),
      ].join('\n----\n');
    }

    async function addVlanUplink(isp: string): Promise<void> {
      await lab.current.veth(
        { ns: m.router, name: VLAN, address: '198.51.100.10/29' },
        { ns: isp, name: 'cust2', address: '198.51.100.9/29' },
      );
      await waitOperUp(lab.current, m.router, [VLAN], 15_000);
    }

    /** Restarts the daemon with `env` (failpoints, PATH), waiting until it listens. */
    async function restart(env?: Record<string, string>): Promise<void> {
      await m.stopDaemon();
      await m.startDaemon(env);
    }

    /** Waits for `text` in the daemon's log (a failpoint announcing its pause). */
    const logged = (text: string) =>
      until(`daemon log: ${text}`, async () => m.daemonProcess?.stderr.includes(text) === true, 30_000);

    let isp2: string;
    let kernelA: string;

    /** No object of B in force; A's wherever enp2s0.7 has no part; nothing of enp2s0.7's. */
    async function expectAWithoutVlan(): Promise<void> {
      const [rules, t101, t102, nft, rp1] = (await kernel()).split('\n----\n');
      const [aRules, a101, , , aRp1] = kernelA.split('\n----\n');
      const withoutVlan = (text: string) =>
        text
          .split('\n')
          .filter((l) => !/lookup 102|0x200/.test(l))
          .join('\n');
      expect({ rules: withoutVlan(rules!), t101, t102, rp1 }, m.daemonProcess!.stderr).toEqual({
        rules: withoutVlan(aRules!),
        t101: a101,
        t102: '',
        rp1: aRp1,
      });
      expect(rules).not.toMatch(/^10000:/m);
      expect(nft).toMatch(/oifname "isp1" masquerade/);
    }

    beforeAll(async () => {
      buildDist();
      m = await ManagedRouter.start(lab.current, 'faults-ns');
      isp2 = await lab.current.netns('isp2');
      await addVlanUplink(isp2);
      // The state directory on a tmpfs of its own (1 MiB), so that it can really fill up.
      await m.stopDaemon();
      tmpfs = m.paths.stateDir;
      await rm(tmpfs, { recursive: true, force: true });
      await mkdir(tmpfs, { recursive: true, mode: 0o700 });
      await lab.current.run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', tmpfs]);
      await m.startDaemon();
      await applyConfirmed(desiredA());
      kernelA = await kernel();
      expect(kernelA).toContain(`dev ${VLAN}`);
    }, 180_000);

    afterAll(async () => {
      await m?.stopDaemon();
      if (tmpfs !== undefined) await lab.current.run(['umount', tmpfs]).catch(() => {});
      await m?.close();
    });

    it('ENOSPC after verify: the apply answers state-dir-full, the kernel is back to A before it answers, status says so', async () => {
      const go = join(m.dir, 'go-full');
      await restart({ UPLINK_AGENT_FAILPOINTS: `state.write:applied.json=pause:${go}` });
      const { gen, answer } = apply(desiredB());
      await logged('failpoint state.write:applied.json: paused');
      // B is in the kernel and verified; now the state directory's filesystem fills up.
      expect(await kernel()).not.toBe(kernelA);
      const filler = join(tmpfs!, 'filler');
      await lab.current.run(['dd', 'if=/dev/zero', `of=${filler}`, 'bs=4k'], { allowFailure: true });
      expect((await lab.current.run(['df', '--output=avail', tmpfs!])).stdout).toMatch(/\s0\s*$/);
      await writeFile(go, '');
      const result = await answer;
      expect(result, JSON.stringify(result)).toMatchObject({ ok: false, error: { code: 'state-dir-full' } });
      const message = (result.error as { message: string }).message;
      expect(message).toMatch(/is on a full filesystem \(ENOSPC writing applied\.json\)/);
      expect(message).toMatch(/the previous state was restored/);
      expect(await kernel()).toBe(kernelA);
      const during = await status();
      expect(during.pending).toBeNull();
      expect(during.lastRevert).toMatchObject({ generation: gen, reason: 'apply-failed', result: 'ok' });
      expect(during.faults).toEqual([
        expect.objectContaining({ kind: 'state-dir-full', subject: m.paths.stateDir }),
      ]);
      // Logged once, however often it is met.
      await status();
      const lines = m.daemonProcess!.stderr.split('\n').filter((l) => l.includes('fault: state directory'));
      expect(lines, m.daemonProcess!.stderr).toHaveLength(1);

      // Space freed: the fault is gone at the next status, the records catch up, and a restart
      // finds nothing to revert (the kernel stays A).
      await rm(filler);
      const after = await status();
      expect(after.faults ?? [], m.daemonProcess!.stderr).toEqual([]);
      await until('commit.json records the revert', async () => {
        const record = JSON.parse(await readFile(join(m.paths.stateDir, 'commit.json'), 'utf8'));
        return record.pending === null && record.lastRevert?.generation === gen;
      });
      await restart();
      expect(await kernel()).toBe(kernelA);
      expect((await status()).pending).toBeNull();
    }, 120_000);

    it('an interface deleted during the apply (at its nft step): reverted at once without it, named; followed back when it returns', async () => {
      const go = join(m.dir, 'go-vanish');
      await restart({ UPLINK_AGENT_FAILPOINTS: `kernel.nft=pause:${go}` });
      const { gen, answer } = apply(desiredB());
      await logged('failpoint kernel.nft: paused');
      await lab.current.run(['ip', '-n', m.router, 'link', 'del', VLAN]);
      await writeFile(go, '');
      const result = await answer;
      expect(result, JSON.stringify(result)).toMatchObject({
        ok: false,
        error: { code: 'interface-missing' },
      });
      expect((result.error as { message: string }).message).toMatch(
        new RegExp(
          `^interface ${VLAN.replace('.', '\\.')} vanished during the apply .*the previous state was restored`,
        ),
      );
      // Nothing of B is left, and A holds wherever enp2s0.7 has no part. (The revert put the
      // snapshot back without the interface's objects; the follow after it re-applied A to a
      // router without enp2s0.7, so isp2's rules and nft rules wait for it too.)
      await expectAWithoutVlan();
      const s = await status();
      expect(s.pending).toBeNull();
      expect(s.lastRevert).toMatchObject({ generation: gen, reason: 'apply-failed', result: 'ok' });
      expect(s.lastRevert!.skipped).toEqual([
        `route table 102 default: default via 198.51.100.9 dev ${VLAN} proto 252`,
        `sysctl net.ipv4.conf.${VLAN}.rp_filter = 2`,
      ]);
      expect(s.faults).toEqual([expect.objectContaining({ kind: 'interface-missing', subject: VLAN })]);
      expect(s.facts.providers.find((p) => p.name === 'isp2')).toMatchObject({ available: false });

      // The interface comes back: the confirmed state A is followed back in, all of it.
      await addVlanUplink(isp2);
      await until('A back in the kernel with enp2s0.7', async () => (await kernel()) === kernelA, 30_000);
      expect((await status()).faults ?? []).toEqual([]);
    }, 120_000);

    it('an interface deleted while an apply is pending: the deadline revert completes without it (no retry loop)', async () => {
      await restart();
      const { gen, answer } = apply(desiredB(), 5_000);
      expect((await answer).ok).toBe(true);
      await lab.current.run(['ip', '-n', m.router, 'link', 'del', VLAN]);
      await until(
        'the deadline revert',
        async () => {
          const s = await status();
          return s.pending === null && s.lastRevert?.generation === gen;
        },
        30_000,
      );
      const s = await status();
      expect(s.lastRevert).toMatchObject({ reason: 'confirm-timeout', result: 'ok' });
      expect(s.lastRevert!.skipped?.length).toBeGreaterThan(0);
      await expectAWithoutVlan();
      expect(m.daemonProcess!.stderr).not.toMatch(/is not complete/);
      await addVlanUplink(isp2);
      await until('A back in the kernel with enp2s0.7', async () => (await kernel()) === kernelA, 30_000);
    }, 120_000);

    it.each(['kernel.nft', 'state.write:applied.json'])(
      'the agent SIGKILLed at %s during an apply: the restarted agent reverts at once',
      async (point) => {
        await restart({ UPLINK_AGENT_FAILPOINTS: `${point}=kill` });
        const gen = `g${++generation}`;
        const { answers } = await sshRpc(
          lab.current,
          m.ctrl,
          m.sshd,
          m.controllerKey,
          `${JSON.stringify({ v: 1, id: 1, method: 'apply', params: { desired: desiredB(), generation: gen, confirmWithinMs: 60_000 } })}\n`,
        );
        // The agent died mid-apply: no answer.
        expect(answers).toEqual([]);
        await m.daemonProcess?.exited;
        expect(m.daemonProcess!.stderr).toContain(`failpoint ${point}: SIGKILL`);
        expect(await kernel()).not.toBe(kernelA);
        await restart();
        const s = await status();
        expect(s.pending).toBeNull();
        expect(s.lastRevert).toMatchObject({ generation: gen, reason: 'interrupted-apply', result: 'ok' });
        expect(await kernel()).toBe(kernelA);
      },
      120_000,
    );

    it('a read-only state directory is state-dir-read-only, not busy; nothing changes; logged once', async () => {
      await restart();
      await lab.current.run(['mount', '-o', 'remount,ro', tmpfs!]);
      try {
        const { answer } = apply(desiredB());
        const result = await answer;
        expect(result, JSON.stringify(result)).toMatchObject({
          ok: false,
          error: { code: 'state-dir-read-only' },
        });
        expect((result.error as { message: string }).message).toMatch(
          /read-only filesystem .*nothing was changed/,
        );
        expect(await kernel()).toBe(kernelA);
        for (let i = 0; i < 3; i++) {
          expect((await status()).faults).toEqual([expect.objectContaining({ kind: 'state-dir-read-only' })]);
        }
        expect(
          m.daemonProcess!.stderr.split('\n').filter((l) => l.includes('fault: state directory')),
        ).toHaveLength(1);
      } finally {
        await lab.current.run(['mount', '-o', 'remount,rw', tmpfs!]);
      }
      expect((await status()).faults ?? []).toEqual([]);
    }, 120_000);

    it('nft not installed: tool-missing naming nft and its package, nothing changes, status still answers, logged once', async () => {
      // A PATH with everything the agent runs but nft.
      const bin = join(m.dir, 'bin-without-nft');
      await mkdir(bin, { recursive: true });
      for (const tool of ['ip', 'sysctl', 'ping', 'conntrack']) {
        const found = (
          await lab.current.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true })
        ).stdout.trim();
        if (found !== '') await symlink(found, join(bin, tool)).catch(() => {});
      }
      await restart({ PATH: bin });
      const { answer } = apply(desiredB());
      const result = await answer;
      expect(result, JSON.stringify(result)).toMatchObject({ ok: false, error: { code: 'tool-missing' } });
      expect((result.error as { message: string }).message).toMatch(
        /^nft is not installed or not executable .*nftables/,
      );
      expect(await kernel()).toBe(kernelA);
      const s = await status();
      expect(s.faults).toEqual([expect.objectContaining({ kind: 'tool-missing', subject: 'nft' })]);
      // The drift watch polls table inet uplink every 500 ms: 3 s of polls, one line about it.
      await new Promise((r) => setTimeout(r, 3_000));
      const nftLines = m.daemonProcess!.stderr.split('\n').filter((l) => /nft is not installed/.test(l));
      expect(nftLines.length, m.daemonProcess!.stderr).toBeLessThanOrEqual(3);
      expect(m.daemonProcess!.stderr).not.toMatch(/this is a bug/);
      await restart();
      expect((await status()).faults ?? []).toEqual([]);
    }, 120_000);

    /**
     * The cut, in the router: the controller's second SSH connection — the confirm's, which
     * it opens only once it has the apply's answer (`rollout` applies on its status call's
     * connection, D82) — puts the controller's address in @cut, and from then on every packet
     * from or to it is dropped: the apply's connection too, mid-close.
     */
    const CUT = `table inet cut {
  set cut { type ipv4_addr; flags dynamic; }
  chain in {
    type filter hook input priority -300;
    ip saddr @cut drop
    ip saddr 192.0.2.1 tcp dport 22 tcp flags & (syn | ack) == syn limit rate over 1/hour burst 1 packets add @cut { ip saddr } drop
  }
  chain out {
    type filter hook output priority -300;
    ip daddr @cut drop
  }
}
`;
    const CONFIRM_WITHIN_S = 8;

    it.each([
      [
        'apply',
        ['apply', SITE, '--confirm-within', String(CONFIRM_WITHIN_S)],
        /^faults-1: unconfirmed \(\d+ changes?\) generation /m,
      ],
      ['rollout', ['rollout'], /unconfirmed/],
    ] as const)(
      'uplink %s with the management link cut right after the apply answers: unconfirmed within confirmWithin + margin; the router reverts',
      async (_command, args, outcome) => {
        await restart();
        const before = await kernel();
        const repo = join(m.dir, `repo-${_command}`);
        await writeManagedRouterFleet(repo, SITE, m.hostKey);
        const fleetYaml = join(repo, 'fleet.yaml');
        await writeFile(
          fleetYaml,
          (await readFile(fleetYaml, 'utf8')).replace(
            /confirmWithin: \d+s/,
            `confirmWithin: ${CONFIRM_WITHIN_S}s`,
          ),
        );
        // `rollout --repo` reads a clone: make it one.
        git(repo, 'init', '-q', '-b', 'main');
        git(repo, 'add', '.');
        git(repo, 'commit', '-q', '-m', 'fleet');
        await lab.current.exec(m.router, ['nft', '-f', '-'], { stdin: CUT });
        try {
          const started = Date.now();
          const run = await lab.current.exec(
            m.ctrl,
            [process.execPath, 'dist/uplink.mjs', ...args, '--repo', repo, '--identity', m.controllerKey],
            { allowFailure: true, timeoutMs: 120_000 },
          );
          const elapsed = Date.now() - started;
          expect(`${run.stdout}${run.stderr}`).toMatch(outcome);
          expect(run.exitCode, `${run.stdout}${run.stderr}`).toBe(1);
          // The outcome is due within confirmWithin + the 10 s settle margin (D104), not when TCP gives up.
          expect(elapsed).toBeLessThan((CONFIRM_WITHIN_S + 10) * 1000);
          const set = (await exec(['nft', 'list', 'set', 'inet', 'cut', 'cut'])).stdout;
          expect(set, 'the cut happened').toContain('192.0.2.1');
          // The router reverts by itself at its deadline.
          await exec(['nft', 'delete', 'table', 'inet', 'cut']);
          await until(
            'the router reverted by itself',
            async () => {
              const s = await status();
              return (
                s.pending === null && s.lastRevert?.reason === 'confirm-timeout' && s.lastRevert.at > started
              );
            },
            30_000,
          );
          expect(await kernel(), m.daemonProcess!.stderr).toBe(before);
        } finally {
          await exec(['nft', 'delete', 'table', 'inet', 'cut']);
        }
      },
      180_000,
    );
  },
);
