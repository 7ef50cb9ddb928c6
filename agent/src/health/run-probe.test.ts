import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandResult } from '../dataplane/run-command.js';
import {
  conntrackFlushCommand,
  conntrackNatFlushCommand,
  flushConntrackMark,
  flushConntrackNat,
} from './flush-conntrack.js';
import { type ProbeRequest, parsePingRtt, probeCommand, processProbeRunner } from './run-probe.js';

describe('probe commands', () => {
  it('icmp: one ping with the mark (decimal), the device and the timeout in seconds', () => {
    expect(
      probeCommand({ method: 'icmp', target: '203.0.113.1', interface: 'wan1', mark: 0x200, timeoutMs: 400 }),
    ).toEqual(['ping', '-n', '-c', '1', '-W', '0.400', '-m', '512', '-I', 'wan1', '203.0.113.1']);
  });

  it('IPv6: ping -6 and socat TCP6 with the address in brackets (D183)', () => {
    const base = {
      family: 'inet6' as const,
      target: '2001:db8:99::1',
      interface: 'wan1',
      mark: 0x200,
      timeoutMs: 400,
    };
    expect(probeCommand({ ...base, method: 'icmp' })).toEqual([
      'ping',
      '-6',
      '-n',
      '-c',
      '1',
      '-W',
      '0.400',
      '-m',
      '512',
      '-I',
      'wan1',
      '2001:db8:99::1',
    ]);
    expect(probeCommand({ ...base, method: 'tcp', tcpPort: 443 }).at(-1)).toBe(
      'TCP6:[2001:db8:99::1]:443,connect-timeout=0.400,so-bindtodevice=wan1,setsockopt-int=1:36:512',
    );
  });

  it('tcp: socat with SO_BINDTODEVICE and SO_MARK (SOL_SOCKET=1, SO_MARK=36)', () => {
    expect(
      probeCommand({
        method: 'tcp',
        target: '203.0.113.1',
        tcpPort: 443,
        interface: 'ppp0',
        mark: 0x100,
        timeoutMs: 1500,
      }),
    ).toEqual([
      'socat',
      '-T',
      '1.500',
      '-u',
      'OPEN:/dev/null',
      'TCP4:203.0.113.1:443,connect-timeout=1.500,so-bindtodevice=ppp0,setsockopt-int=1:36:256',
    ]);
    expect(() =>
      probeCommand({ method: 'tcp', target: '203.0.113.1', interface: 'ppp0', mark: 1, timeoutMs: 1 }),
    ).toThrow(/port/);
  });

  it.each([
    ['64 bytes from 203.0.113.1: icmp_seq=1 ttl=63 time=0.061 ms', 0.061],
    ['64 bytes from 203.0.113.1: icmp_seq=1 ttl=63 time=12.5 ms', 12.5],
    ['1 packets transmitted, 0 received, 100% packet loss', undefined],
  ])('parsePingRtt(%j) → %s', (line, rtt) => {
    expect(parsePingRtt(`PING 203.0.113.1 (203.0.113.1) 56(84) bytes of data.\n${line}\n`)).toBe(rtt);
  });

  it('conntrack: delete by mark under the mask only', () => {
    expect(conntrackFlushCommand(0x200, 0xff00)).toEqual([
      'conntrack',
      '-D',
      '-f',
      'ipv4',
      '-m',
      '0x200/0xff00',
    ]);
  });
});

describe('conntrack NAT flush (D84)', () => {
  it('deletes by reply destination, IPv4 only, as an argument array', () => {
    expect(conntrackNatFlushCommand('198.51.100.2')).toEqual([
      'conntrack',
      '-D',
      '-f',
      'ipv4',
      '--reply-dst',
      '198.51.100.2',
    ]);
  });

  /** A runner that answers like conntrack and records what it was asked to run. */
  function fakeConntrack(result: Omit<CommandResult, 'signal' | 'stdout'>) {
    const calls: (readonly string[])[] = [];
    return {
      calls,
      run: async (argv: readonly string[]) => {
        calls.push(argv);
        return { ...result, signal: null, stdout: '' };
      },
    };
  }

  it('reads the count from the summary; exit 1 with nothing matched is 0 deleted', async () => {
    const some = fakeConntrack({
      exitCode: 0,
      stderr: 'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n',
    });
    expect(await flushConntrackNat(some, '198.51.100.2')).toBe(3);
    expect(some.calls).toEqual([conntrackNatFlushCommand('198.51.100.2')]);
    const none = fakeConntrack({
      exitCode: 1,
      stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n',
    });
    expect(await flushConntrackNat(none, '198.51.100.2')).toBe(0);
    expect(await flushConntrackMark(none, 0x100, 0xff00)).toBe(0);
  });

  it("anything else is an error with conntrack's message", async () => {
    const broken = fakeConntrack({
      exitCode: 1,
      stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted\n',
    });
    await expect(flushConntrackNat(broken, '198.51.100.2')).rejects.toThrow(/exited 1: .*not permitted/);
  });
});

describe('a probe that cannot run is inconclusive (D83)', () => {
  const icmp: ProbeRequest = {
    method: 'icmp',
    target: '192.0.2.1',
    interface: 'lo',
    mark: 0x100,
    timeoutMs: 200,
  };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-probe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a program that does not exist: inconclusive, with the spawn error', async () => {
    const outcome = await processProbeRunner({ prefix: [join(dir, 'no-such-program')] })(icmp);
    expect(outcome).toMatchObject({ target: '192.0.2.1', ok: false, inconclusive: true });
    expect(outcome.error).toMatch(/^cannot run .*no-such-program: spawn .* ENOENT$/);
  });

  it('a program that is not executable: inconclusive (EACCES)', async () => {
    const file = join(dir, 'not-executable');
    await writeFile(file, '#!/bin/sh\nexit 0\n');
    await chmod(file, 0o644);
    const outcome = await processProbeRunner({ prefix: [file] })(icmp);
    expect(outcome).toMatchObject({ ok: false, inconclusive: true });
    expect(outcome.error).toMatch(/EACCES/);
  });

  it('ping and socat missing from PATH: inconclusive, naming the Debian package', async () => {
    const path = process.env.PATH;
    process.env.PATH = dir;
    try {
      const ping = await processProbeRunner()(icmp);
      expect(ping).toMatchObject({ ok: false, inconclusive: true });
      expect(ping.error).toBe(
        'cannot run ping: spawn ping ENOENT (not installed? Debian package iputils-ping)',
      );
      const socat = await processProbeRunner()({ ...icmp, method: 'tcp', tcpPort: 443 });
      expect(socat.error).toBe('cannot run socat: spawn socat ENOENT (not installed? Debian package socat)');
      expect(socat.inconclusive).toBe(true);
    } finally {
      process.env.PATH = path;
    }
  });

  it('a program that runs and fails is a failed probe, not an inconclusive one', async () => {
    const file = join(dir, 'unreachable');
    await writeFile(file, '#!/bin/sh\necho "ping: connect: Network is unreachable" >&2\nexit 2\n');
    await chmod(file, 0o755);
    const outcome = await processProbeRunner({ prefix: [file] })(icmp);
    expect(outcome).toEqual({
      target: '192.0.2.1',
      ok: false,
      error: 'ping: connect: Network is unreachable',
    });
  });
});
