/**
 * The kernel a freshly booted router has before Uplink touches it: the three default
 * rules, connected routes for every address, a main default route, and stock rp_filter
 * sysctls — what `ip rule`/`ip route`/sysctl show on Debian, protocol tags included
 * (2 = kernel, 4 = static), so ownership and the management-path guard see a real layout.
 */
import ipaddr from 'ipaddr.js';
import type { MemoryDataplaneInit } from '../../agent/src/dataplane/memory.js';
import type { Facts, KernelRoute } from '../../agent/src/model/kernel-state.js';

export function seedKernel(
  facts: Facts,
  mainDefault: { readonly dev: string; readonly gateway: string } | undefined,
): MemoryDataplaneInit {
  const routes: KernelRoute[] = [];
  const sysctls: Record<string, string> = {
    'net.ipv4.ip_forward': '1',
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '1',
  };
  for (const [dev, iface] of Object.entries(facts.interfaces)) {
    if (!iface.exists) continue;
    sysctls[`net.ipv4.conf.${dev}.rp_filter`] = '1';
    for (const a of iface.addresses) {
      const dst =
        a.peer !== undefined
          ? `${a.peer}/32`
          : `${ipaddr.IPv4.networkAddressFromCIDR(`${a.address}/${a.prefixLength}`).toString()}/${a.prefixLength}`;
      routes.push({ table: 254, dst, type: 'unicast', dev, scope: 'link', src: a.address, protocol: 2 });
    }
  }
  if (mainDefault !== undefined) {
    routes.push({
      table: 254,
      dst: '0.0.0.0/0',
      type: 'unicast',
      dev: mainDefault.dev,
      gateway: mainDefault.gateway,
      protocol: 4,
    });
  }
  return {
    facts,
    rules: [
      { priority: 0, action: 'lookup', table: 255, protocol: 2 },
      { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
      { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
    ],
    routes,
    nft: null,
    sysctls,
  };
}
