/**
 * The daemon's kernel event sources: `ip monitor` and `nft monitor` lines classified, and a
 * monitor process whose lines reach the listeners and whose restart says what it watches (D152).
 */
import { describe, expect, it } from 'vitest';
import {
  IpMonitor,
  type KernelEvent,
  mergeKernelEvents,
  parseMonitorLine,
  parseNftMonitorLine,
} from './kernel-watch.js';

describe('parseNftMonitorLine', () => {
  it('a change in table inet uplink is an nft event; other tables and generation lines are not', () => {
    expect(parseNftMonitorLine('add rule inet uplink postrouting oifname "ppp1" masquerade')).toEqual({
      kind: 'nft',
    });
    expect(parseNftMonitorLine('delete rule inet uplink prerouting handle 7')).toEqual({ kind: 'nft' });
    expect(parseNftMonitorLine('delete table inet uplink')).toEqual({ kind: 'nft' });
    expect(parseNftMonitorLine('add chain inet uplink c')).toEqual({ kind: 'nft' });
    expect(parseNftMonitorLine('add table ip other')).toBeUndefined();
    expect(parseNftMonitorLine('add table inet uplinkx')).toBeUndefined();
    expect(parseNftMonitorLine('# new generation 5 by process 21340 (nft)')).toBeUndefined();
    expect(parseNftMonitorLine('')).toBeUndefined();
  });

  it('ip monitor lines keep their classification', () => {
    expect(parseMonitorLine('[ADDR]3: ppp1    inet 10.0.0.2 peer 10.0.0.1/32')).toEqual({
      kind: 'address',
      iface: 'ppp1',
    });
    expect(parseMonitorLine('[RULE]5: from 192.0.2.99 lookup 250')).toEqual({ kind: 'rule' });
  });
});

describe('IpMonitor with a parser', () => {
  it('delivers the parsed lines of its process to every listener, and its restart event after it dies', async () => {
    const script = "printf 'add table ip other\\nadd rule inet uplink c counter\\n# new generation 2\\n'";
    let starts = 0;
    const monitor = new IpMonitor({
      log: () => {},
      argv: ['sh', '-c', script],
      parse: parseNftMonitorLine,
      restartEvent: { kind: 'nft' },
      restartMs: 20,
      onStart: () => starts++,
    });
    const other = new IpMonitor({ log: () => {}, argv: ['sh', '-c', "printf '[RULE]x\\n'; exec sleep 30"] });
    const events: KernelEvent[] = [];
    const merged = mergeKernelEvents(monitor, other);
    merged.onEvent((e) => events.push(e));
    const deadline = Date.now() + 10_000;
    while (starts < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    await merged.close();
    expect(starts).toBeGreaterThanOrEqual(2);
    // Each run of the nft script prints one inet uplink change; each restart adds one nft event.
    expect(events.filter((e) => e.kind === 'nft').length).toBeGreaterThanOrEqual(3);
    expect(events.filter((e) => e.kind === 'link')).toEqual([]);
    expect(events.filter((e) => e.kind === 'rule')).toHaveLength(1);
  });
});
