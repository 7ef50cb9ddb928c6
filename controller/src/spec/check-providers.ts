/**
 * A site's providers: interface, address, gateway, table and mark (assigned deterministically
 * when omitted), balance/fallback, SNAT and health — checked against the agent's limits and
 * reserved tables (D89).
 */
import { describeRange, LIMITS, RESERVED_TABLES, type SnatMode } from '#agent/model';
import {
  checkAddress,
  checkInterfaceAddress,
  checkNetwork,
  contains,
  networkOf,
  overlaps,
} from './addresses.js';
import { checkHealth } from './check-health.js';
import { checkIpv6Prefixes, checkProviderIpv6 } from './check-provider-ipv6.js';
import type { SiteCheck } from './site-check.js';
import type { FleetDefaults, ValidProvider, ValidProviderIpv6 } from './valid-site.js';

export interface ProviderContext {
  readonly markMask: number;
  readonly balanceTable: number;
  readonly lanInterfaces: readonly string[];
}

export function checkProviders(
  check: SiteCheck,
  defaults: FleetDefaults,
  context: ProviderContext,
): ValidProvider[] {
  const { site, err, field } = check;
  const { markMask, balanceTable } = context;
  const usedTables = new Map<number, string>();
  const usedMarks = new Map<number, string>();
  const usedInterfaces = new Map<string, string>();
  for (const p of site.providers) {
    if (p.value.table !== undefined && !usedTables.has(p.value.table))
      usedTables.set(p.value.table, p.value.name);
    if (p.value.mark !== undefined && !usedMarks.has(p.value.mark)) usedMarks.set(p.value.mark, p.value.name);
  }
  const markShift = lowestSetBit(markMask);
  let nextTable = defaults.tables[0];
  let nextMarkIndex = 1;
  const providers: ValidProvider[] = [];
  const seenTables = new Map<number, string>();
  const seenMarks = new Map<number, string>();
  let fallbackAuto = 1;
  const routedOwners: { prefix: string; provider: string }[] = [];

  for (const item of site.providers) {
    const p = item.value;
    const at = (name: string) => field(item, name);
    const label = `providers ${p.name}`;
    if (!p.interface) {
      err(item.origin, `${label}: interface is required; add interface: <uplink device, e.g. eth1 or ppp0>`);
      if (p.gateway === undefined && p.ipv4 !== false) err(item.origin, gatewayRequired(label, false));
      continue;
    }
    if (context.lanInterfaces.includes(p.interface))
      err(
        at('interface'),
        `${label}: interface ${p.interface} is also a LAN interface; an uplink needs its own interface`,
      );
    const other = usedInterfaces.get(p.interface);
    if (other) {
      err(
        at('interface'),
        `${label}: interface ${p.interface} is already used by provider ${other}; connections on one interface cannot be told apart, give each provider its own interface`,
      );
    }
    usedInterfaces.set(p.interface, p.name);

    let address: ValidProvider['address'] = null;
    if (p.address !== undefined) {
      const c = checkInterfaceAddress(p.address);
      if (c.ok) address = c.value;
      else err(at('address'), `${label}: address ${c.message}`);
    }

    // An IPv6-only uplink (D165): nothing IPv4 may be written for it, here or inherited.
    const ipv6Only = p.ipv4 === false;
    if (ipv6Only) {
      const own = at('ipv4').parsed.file;
      const ipv4Keys = [
        ['address', p.address !== undefined],
        ['gateway', p.gateway !== undefined],
        ['routed', (p.routed ?? []).length > 0],
        ['snat', p.snat !== undefined && p.snat !== 'auto' && p.snat !== 'none'],
        ['rpFilter', p.rpFilter !== undefined],
        ['health.targets', p.health?.targets !== undefined && p.health.targets.length > 0],
      ] as const;
      for (const [key, written] of ipv4Keys) {
        if (!written) continue;
        const where = key === 'health.targets' ? field(item, 'health') : at(key);
        const file = where.parsed.file;
        err(
          where,
          `${label}: an IPv6-only uplink (ipv4: false) has no IPv4 ${key}; ${
            key === 'health.targets'
              ? 'IPv6 probe targets go under ipv6: health: targets:'
              : file !== own
                ? `${key} is inherited from ${file}; write ${key}: null here`
                : `remove ${key}`
          }`,
        );
      }
      if (p.ipv6 === undefined || p.ipv6 === null)
        err(
          at('ipv4'),
          `${label}: ipv4: false leaves the uplink no address family; add an ipv6: block (e.g. gateway: detect) or remove ipv4: false`,
        );
    }

    let gateway: ValidProvider['gateway'] = { kind: 'detect' };
    if (ipv6Only) {
      gateway = { kind: 'none' };
    } else if (p.gateway === undefined) {
      err(item.origin, gatewayRequired(label, p.ipv6 !== undefined && p.ipv6 !== null));
    } else if (p.gateway === 'detect') {
      gateway = { kind: 'detect' };
    } else if (p.gateway === 'point-to-point' || p.gateway === 'ppp') {
      gateway = { kind: 'point-to-point' };
    } else {
      const c = checkAddress(p.gateway);
      if (!c.ok) {
        err(
          at('gateway'),
          `${label}: gateway ${c.message}${c.ipv6 ? ' (an IPv6 gateway goes under ipv6: gateway:)' : ', or detect, or point-to-point'}`,
        );
      } else {
        gateway = { kind: 'static', address: c.value };
        if (address) {
          const net = networkOf(address.address, address.prefixLength);
          if (!contains(net, c.value) || c.value === address.address) {
            err(
              at('gateway'),
              `${label}: gateway ${c.value} is not a neighbour inside ${net} (the subnet of address ${address.address}/${address.prefixLength}); write the ISP router's address in that subnet`,
            );
          }
        }
      }
    }

    const routed: string[] = [];
    (p.routed ?? []).forEach((text, i) => {
      const c = checkNetwork(text.includes('/') ? text : `${text}/32`);
      const origin = { parsed: at('routed').parsed, path: [...at('routed').path, i] };
      if (!c.ok) err(origin, `${label}: routed ${c.message}`);
      else {
        const owner = routedOwners.find((r) => overlaps(r.prefix, c.value));
        // Often the block is a DMZ on the router (public servers): overlapping a LAN subnet is the point.
        if (owner !== undefined)
          err(
            origin,
            `${label}: routed ${c.value} overlaps ${owner.prefix}, routed by provider ${owner.provider}; a prefix comes from one ISP`,
          );
        else {
          routed.push(c.value);
          routedOwners.push({ prefix: c.value, provider: p.name });
        }
      }
    });

    // Table
    let table = p.table;
    if (table === undefined) {
      while (usedTables.has(nextTable) || RESERVED_TABLES.has(nextTable) || nextTable === balanceTable)
        nextTable++;
      table = nextTable;
      usedTables.set(table, p.name);
      if (table > defaults.tables[1]) {
        err(
          item.origin,
          `${label}: no free table id left in ${defaults.tables[0]}–${defaults.tables[1]} (fleet.yaml defaults.tables); set table: explicitly`,
        );
      }
    } else if (RESERVED_TABLES.has(table)) {
      err(
        at('table'),
        `${label}: table ${table} is the kernel's "${RESERVED_TABLES.get(table)}" table; choose another id, e.g. ${defaults.tables[0]}`,
      );
    } else if (table === balanceTable) {
      err(
        at('table'),
        `${label}: table ${table} is the balance table; choose another id or change settings.balanceTable`,
      );
    }
    const tableOwner = seenTables.get(table);
    if (tableOwner)
      err(
        at('table'),
        `${label}: table ${table} is already used by provider ${tableOwner}; each provider needs its own table`,
      );
    seenTables.set(table, p.name);

    // Mark
    let mark = p.mark;
    if (mark === undefined) {
      while (usedMarks.has((nextMarkIndex << markShift) >>> 0)) nextMarkIndex++;
      mark = (nextMarkIndex << markShift) >>> 0;
      usedMarks.set(mark, p.name);
      if ((mark & ~markMask) >>> 0 !== 0 || mark === 0) {
        err(
          item.origin,
          `${label}: no free mark left under mask 0x${markMask.toString(16)}; widen settings.markMask or set mark: explicitly`,
        );
      }
    } else if (mark === 0 || mark > 0xffffffff || (mark & ~markMask) >>> 0 !== 0) {
      err(
        at('mark'),
        `${label}: mark 0x${mark.toString(16)} is outside the mark mask 0x${markMask.toString(16)}; write a non-zero value within the mask, e.g. 0x${((1 << markShift) >>> 0).toString(16)}`,
      );
    }
    const markOwner = seenMarks.get(mark);
    if (markOwner)
      err(
        at('mark'),
        `${label}: mark 0x${mark.toString(16)} is already used by provider ${markOwner}; each provider needs its own mark`,
      );
    seenMarks.set(mark, p.name);

    const weights = LIMITS.balanceWeight;
    if (p.balance !== undefined && (p.balance < weights.min || p.balance > weights.max)) {
      err(
        at('balance'),
        `${label}: balance ${p.balance} must be a weight from ${weights.min} to ${weights.max}`,
      );
    }
    let fallback: number | null = null;
    if (p.fallback === true) fallback = fallbackAuto++;
    else if (typeof p.fallback === 'number') {
      const orders = LIMITS.fallbackOrder;
      if (p.fallback < orders.min || p.fallback > orders.max)
        err(
          at('fallback'),
          `${label}: fallback ${p.fallback} must be true or an order from ${orders.min} to ${orders.max}`,
        );
      fallback = p.fallback;
    }
    if (fallback !== null && p.balance !== undefined) {
      const balanceFile = at('balance').parsed.file;
      err(
        at('fallback'),
        balanceFile !== at('fallback').parsed.file
          ? `${label}: a provider is either balanced or a fallback, and balance is inherited from ${balanceFile}; write balance: null here to drop it`
          : `${label}: a provider is either balanced or a fallback; remove balance or fallback`,
      );
    }

    let snat: SnatMode = { kind: ipv6Only ? 'none' : 'masquerade' };
    if (p.snat === 'none') snat = { kind: 'none' };
    else if (p.snat !== undefined && p.snat !== 'auto') {
      const c = checkAddress(p.snat);
      if (c.ok) snat = { kind: 'address', address: c.value };
      else err(at('snat'), `${label}: snat ${c.message}${c.ipv6 ? '' : ', or auto, or none'}`);
    }

    // The fleet's default IPv4 targets are not an IPv6-only uplink's (its probes are ipv6's).
    const baseHealth = ipv6Only ? { ...defaults.health, targets: [] } : { ...defaults.health };
    const health = checkHealth(baseHealth, p.health, (path, message) =>
      err(
        { parsed: at('health').parsed, path: [...at('health').path, ...path] },
        `${label}: health.${message}`,
      ),
    );

    let ipv6: ValidProviderIpv6 | undefined;
    if (p.ipv6 !== undefined && p.ipv6 !== null) {
      const base = at('ipv6');
      ipv6 = checkProviderIpv6(
        p.ipv6,
        { label, interface: p.interface },
        (...path) => ({ parsed: base.parsed, path: [...base.path, ...path] }),
        err,
      );
    }

    providers.push({
      name: p.name,
      interface: p.interface,
      address,
      gateway,
      routed,
      table,
      mark,
      balance: p.balance ?? null,
      fallback,
      track: p.track ?? true,
      snat,
      rpFilter: p.rpFilter ?? 'loose',
      health,
      ...(ipv6 === undefined ? {} : { ipv6 }),
    });
  }
  checkIpv6Prefixes(
    providers,
    (name) => {
      const item = site.providers.find((i) => i.value.name === name)!;
      const base = field(item, 'ipv6');
      return item.value.ipv6?.prefixes !== undefined
        ? { parsed: base.parsed, path: [...base.path, 'prefixes'] }
        : base;
    },
    err,
  );
  if (providers.length > LIMITS.providers.max) {
    err(
      check.site.providers[LIMITS.providers.max]!.origin,
      `${check.subject}: ${providers.length} providers; the agent takes at most ${describeRange(LIMITS.providers)} per site`,
    );
  }
  return providers;
}

function gatewayRequired(label: string, hasIpv6: boolean): string {
  return `${label}: gateway is required; write an address (198.51.100.1), detect (DHCP) or point-to-point (PPP)${hasIpv6 ? ', or ipv4: false for an IPv6-only uplink' : ''}`;
}

export function lowestSetBit(mask: number): number {
  for (let i = 0; i < 32; i++) if ((mask >>> i) & 1) return i;
  return 0;
}
