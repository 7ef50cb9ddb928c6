/**
 * Hand edits behind the agent's back, as an administrator makes them on a router: each
 * one is what a drift check must find. They go through the memory kernel's own semantics
 * (a missing object to delete is an error, as in iproute2).
 */
import type { MemoryDataplane } from '../../agent/src/dataplane/memory.js';

export type DriftChange =
  /** `ip rule del` of the first rule Uplink owns. */
  | 'delete-rule'
  /** `ip route del` of the first route Uplink owns. */
  | 'delete-route'
  /** `nft flush table inet uplink`. */
  | 'flush-nft'
  /** `sysctl -w net.ipv4.conf.all.rp_filter=1`. */
  | 'sysctl'
  /** A foreign rule at a policy priority, capturing a LAN's traffic. */
  | 'foreign-rule';

/** Uplink's default route-protocol tag (fleet default `protocol: 252`). */
const OWNED_PROTOCOL = 252;

export async function applyDrift(dataplane: MemoryDataplane, change: DriftChange): Promise<void> {
  const kernel = dataplane.dump();
  switch (change) {
    case 'delete-rule': {
      const rule = kernel.rules.find((r) => r.protocol === OWNED_PROTOCOL);
      if (rule === undefined) throw new Error('drift delete-rule: no rule of protocol 252 to delete');
      await dataplane.apply([{ op: 'rule-delete', rule }]);
      return;
    }
    case 'delete-route': {
      const route = kernel.routes.find((r) => r.protocol === OWNED_PROTOCOL);
      if (route === undefined) throw new Error('drift delete-route: no route of protocol 252 to delete');
      await dataplane.apply([{ op: 'route-delete', route }]);
      return;
    }
    case 'flush-nft':
      dataplane.setNft(kernel.nft === null ? null : []);
      return;
    case 'sysctl':
      dataplane.setSysctl('net.ipv4.conf.all.rp_filter', '1');
      return;
    case 'foreign-rule':
      dataplane.addRule({ priority: 10001, action: 'lookup', table: 254, protocol: 3 });
      return;
  }
}
