import { describe, expect, it } from 'vitest';
import {
  interfaceSysctlKey,
  isSysctlKey,
  parseSysctlKey,
  suggestSysctlKey,
  sysctlInterface,
  sysctlPath,
  sysctlToolKey,
} from './sysctl-key.js';

describe('sysctl keys: path, sysctl(8) name and interface', () => {
  it.each([
    ['net.ipv4.ip_forward', 'net/ipv4/ip_forward', 'net.ipv4.ip_forward', undefined],
    ['net.ipv4.conf.ppp1.rp_filter', 'net/ipv4/conf/ppp1/rp_filter', 'net.ipv4.conf.ppp1.rp_filter', 'ppp1'],
    ['net.ipv4.conf.all.rp_filter', 'net/ipv4/conf/all/rp_filter', 'net.ipv4.conf.all.rp_filter', undefined],
    [
      'net.ipv4.conf.default.rp_filter',
      'net/ipv4/conf/default/rp_filter',
      'net.ipv4.conf.default.rp_filter',
      undefined,
    ],
    // A VLAN interface name contains a dot: only the separators around it are slashes.
    [
      'net.ipv4.conf.eth0.100.rp_filter',
      'net/ipv4/conf/eth0.100/rp_filter',
      'net.ipv4.conf.eth0/100.rp_filter',
      'eth0.100',
    ],
    [
      'net.ipv4.conf.br-lan.20.rp_filter',
      'net/ipv4/conf/br-lan.20/rp_filter',
      'net.ipv4.conf.br-lan/20.rp_filter',
      'br-lan.20',
    ],
    [
      'net.ipv4.conf.enp0s20f0u1.rp_filter',
      'net/ipv4/conf/enp0s20f0u1/rp_filter',
      'net.ipv4.conf.enp0s20f0u1.rp_filter',
      'enp0s20f0u1',
    ],
    ['net.ipv4.conf.WAN.rp_filter', 'net/ipv4/conf/WAN/rp_filter', 'net.ipv4.conf.WAN.rp_filter', 'WAN'],
    [
      'net.ipv4.neigh.eth0.100.gc_stale_time',
      'net/ipv4/neigh/eth0.100/gc_stale_time',
      'net.ipv4.neigh.eth0/100.gc_stale_time',
      'eth0.100',
    ],
    ['net.ipv4.route.flush', 'net/ipv4/route/flush', 'net.ipv4.route.flush', undefined],
    [
      'net.ipv4.fib_multipath_hash_policy',
      'net/ipv4/fib_multipath_hash_policy',
      'net.ipv4.fib_multipath_hash_policy',
      undefined,
    ],
  ])('%s', (key, path, toolKey, iface) => {
    expect(isSysctlKey(key)).toBe(true);
    expect(sysctlPath(key)).toBe(path);
    expect(sysctlToolKey(key)).toBe(toolKey);
    expect(sysctlInterface(key)).toBe(iface);
  });

  it.each([
    ['a path out of /proc/sys/net', 'net.ipv4.conf.all.rp_filter/../../../../kernel/panic'],
    ['a ".." interface', 'net.ipv4.conf....rp_filter'],
    ['another part of net', 'net.core.rmem_max'],
    ['another subtree', 'kernel.panic'],
    ['an interface name over 15 characters', 'net.ipv4.conf.enp0s20f0u1u2u3u4u5.rp_filter'],
    ['a slash', 'net.ipv4.conf.eth0/100.rp_filter'],
    ['no leaf', 'net.ipv4.conf.eth0'],
    ['conf as a leaf', 'net.ipv4.conf'],
    ['an upper-case leaf', 'net.ipv4.IP_FORWARD'],
    ['an empty part', 'net.ipv4..ip_forward'],
    ['whitespace', 'net.ipv4.conf.eth 0.rp_filter'],
  ])('refuses %s', (_what, key) => {
    expect(isSysctlKey(key)).toBe(false);
    expect(parseSysctlKey(key)).toBeUndefined();
    expect(() => sysctlPath(key)).toThrow(/not a sysctl key Uplink manages/);
  });

  it('builds per-interface keys that parse back to the same interface, dots kept', () => {
    for (const iface of ['enp1s0.100', 'enp2s0.7', 'ppp0', 'wwan0', 'br-lan', 'br-lan.20', 'a_b@c-d.e']) {
      const key = interfaceSysctlKey(iface, 'rp_filter');
      expect(sysctlInterface(key)).toBe(iface);
      expect(sysctlPath(key)).toBe(`net/ipv4/conf/${iface}/rp_filter`);
    }
    expect(() => interfaceSysctlKey('eth0/1', 'rp_filter')).toThrow(/not an interface name/);
  });

  it("suggests the dotted form for sysctl(8)'s slash spelling", () => {
    expect(suggestSysctlKey('net.ipv4.conf.enp1s0/100.rp_filter')).toBe('net.ipv4.conf.enp1s0.100.rp_filter');
    expect(suggestSysctlKey('net.ipv4.conf.all.rp_filter/../../../../kernel/panic')).toBeUndefined();
    expect(suggestSysctlKey('net.ipv4.ip_forward')).toBeUndefined();
  });
});
