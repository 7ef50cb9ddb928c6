import { describe, expect, it } from 'vitest';
import { conntrackFlushCommand } from './flush-conntrack.js';
import { parsePingRtt, probeCommand } from './run-probe.js';

describe('probe commands', () => {
  it('icmp: one ping with the mark (decimal), the device and the timeout in seconds', () => {
    expect(
      probeCommand({ method: 'icmp', target: '203.0.113.1', interface: 'wan1', mark: 0x200, timeoutMs: 400 }),
    ).toEqual(['ping', '-n', '-c', '1', '-W', '0.400', '-m', '512', '-I', 'wan1', '203.0.113.1']);
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
