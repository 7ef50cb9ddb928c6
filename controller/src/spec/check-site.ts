/**
 * Semantic rules for one merged site, and its normalisation into a ValidSite: defaults
 * applied, tables and marks assigned deterministically, policy rule priorities laid out.
 * Collects every diagnostic; returns a site only when there is no error.
 */
import type { HealthSettings, SnatMode } from '#agent/model';
import { checkAddress, checkInterfaceAddress, checkNetwork, contains, networkOf } from './addresses.js';
import type { Diagnostic } from './diagnostic.js';
import { parseDuration } from './duration.js';
import type { Merged, MergedSite, Origin } from './merge-groups.js';
import { diagnosticAt } from './parse-yaml-file.js';
import type { HealthSpec, PolicySpec, ProviderSpec } from './spec-schema.js';
import type { FleetDefaults, ValidPolicy, ValidProvider, ValidSite } from './valid-site.js';

const RESERVED_TABLES = new Map([
  [253, 'default'],
  [254, 'main'],
  [255, 'local'],
]);
/** Policy blocks start on multiples of this, so editing one policy rarely renumbers the next. */
const POLICY_STRIDE = 10;

export function checkSite(
  site: MergedSite,
  defaults: FleetDefaults,
): { site?: ValidSite; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const subject = `site ${site.spec.name}`;
  const report = (origin: Origin | undefined, severity: Diagnostic['severity'], message: string) => {
    const o = origin ?? { parsed: site.parsed, path: [] };
    // Name the site when the finding sits in a shared group file.
    const text = o.parsed === site.parsed ? message : `${subject}: ${message}`;
    diagnostics.push(diagnosticAt(o.parsed, o.path, severity, text, { key: o.key === true }));
  };
  const err = (origin: Origin | undefined, message: string) => report(origin, 'error', message);
  const field = <T>(item: Merged<T>, name: string): Origin => item.fields[name] ?? item.origin;

  // Settings
  const s = site.settings.value;
  const settingsField = (name: string) => site.settings.fields[name];
  const protocol = s.protocol ?? defaults.protocol;
  if (protocol < 1 || protocol > 255 || [0, 1, 2, 3, 4].includes(protocol)) {
    err(
      settingsField('protocol'),
      `settings.protocol: ${protocol} is reserved or out of range; write a value 5–255 (default 252)`,
    );
  }
  const markMask = s.markMask ?? defaults.markMask;
  if (markMask === 0 || markMask > 0xffffffff) {
    err(
      settingsField('markMask'),
      `settings.markMask: 0x${markMask.toString(16)} must be a non-zero 32-bit mask, e.g. 0xff00`,
    );
  }
  const balanceTableSetting = s.balanceTable ?? defaults.balanceTable;
  const balanceTable = balanceTableSetting === 'default' ? 253 : balanceTableSetting;
  const adoptTables = s.adoptTables ?? [];

  // LAN
  const lan = site.lan.map((l) => {
    const subnets: string[] = [];
    (l.value.subnets ?? []).forEach((text, i) => {
      const c = checkNetwork(text);
      if (c.ok) subnets.push(c.value);
      else
        err(
          { parsed: field(l, 'subnets').parsed, path: [...field(l, 'subnets').path, i] },
          `lan ${l.value.interface}: subnet ${c.message}`,
        );
    });
    return { interface: l.value.interface, subnets };
  });

  // Providers
  const usedTables = new Map<number, string>();
  const usedMarks = new Map<number, string>();
  const usedInterfaces = new Map<string, string>();
  for (const p of site.providers) {
    if (p.value.table !== undefined) claim(usedTables, p.value.table, p.value.name, () => {});
    if (p.value.mark !== undefined) claim(usedMarks, p.value.mark, p.value.name, () => {});
  }
  const markShift = lowestSetBit(markMask);
  let nextTable = defaults.tables[0];
  let nextMarkIndex = 1;
  const providers: ValidProvider[] = [];
  const seenTables = new Map<number, string>();
  const seenMarks = new Map<number, string>();
  let fallbackAuto = 1;

  for (const item of site.providers) {
    const p = item.value;
    const at = (name: string) => field(item, name);
    const label = `providers ${p.name}`;
    if (!p.interface) {
      err(item.origin, `${label}: interface is required; add interface: <uplink device, e.g. eth1 or ppp0>`);
      if (p.gateway === undefined) err(item.origin, gatewayRequired(label));
      continue;
    }
    const lanClash = lan.find((l) => l.interface === p.interface);
    if (lanClash)
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

    let gateway: ValidProvider['gateway'] = { kind: 'detect' };
    if (p.gateway === undefined) {
      err(item.origin, gatewayRequired(label));
    } else if (p.gateway === 'detect') {
      gateway = { kind: 'detect' };
    } else if (p.gateway === 'point-to-point' || p.gateway === 'ppp') {
      gateway = { kind: 'point-to-point' };
    } else {
      const c = checkAddress(p.gateway);
      if (!c.ok) {
        err(at('gateway'), `${label}: gateway ${c.message}${c.ipv6 ? '' : ', or detect, or point-to-point'}`);
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

    if (p.balance !== undefined && (p.balance < 1 || p.balance > 256)) {
      err(at('balance'), `${label}: balance ${p.balance} must be a weight from 1 to 256`);
    }
    let fallback: number | null = null;
    if (p.fallback === true) fallback = fallbackAuto++;
    else if (typeof p.fallback === 'number') {
      if (p.fallback < 1 || p.fallback > 99)
        err(at('fallback'), `${label}: fallback ${p.fallback} must be true or an order from 1 to 99`);
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

    let snat: SnatMode = { kind: 'masquerade' };
    if (p.snat === 'none') snat = { kind: 'none' };
    else if (p.snat !== undefined && p.snat !== 'auto') {
      const c = checkAddress(p.snat);
      if (c.ok) snat = { kind: 'address', address: c.value };
      else err(at('snat'), `${label}: snat ${c.message}${c.ipv6 ? '' : ', or auto, or none'}`);
    }

    const health = checkHealth({ ...defaults.health }, p.health, (path, message) =>
      err(
        { parsed: at('health').parsed, path: [...at('health').path, ...path] },
        `${label}: health.${message}`,
      ),
    );

    providers.push({
      name: p.name,
      interface: p.interface,
      address,
      gateway,
      table,
      mark,
      balance: p.balance ?? null,
      fallback,
      track: p.track ?? true,
      snat,
      rpFilter: p.rpFilter ?? 'loose',
      health,
    });
  }
  if (providers.length === 0) {
    err(
      { parsed: site.parsed, path: ['name'] },
      `${subject}: no providers; add at least one under providers: (or inherit them with extends:)`,
    );
  } else if (!providers.some((p) => p.balance !== null || p.fallback !== null)) {
    report(
      { parsed: site.parsed, path: ['name'] },
      'warning',
      `${subject}: no provider has balance or fallback, so no uplink carries default traffic and main's default route is used; set balance: 1 on the primary uplink`,
    );
  }

  // Policies
  const providerNames = new Set(providers.map((p) => p.name));
  const [bandStart, bandEnd] = defaults.priorities.policy;
  let cursor = bandStart;
  const blocks: { name: string; start: number; end: number; explicit: boolean }[] = [];
  const policies: ValidPolicy[] = [];
  for (const item of site.policies) {
    const policy = checkPolicy(item, providerNames, lan, markMask, (o, m) => err(o, m));
    if (!policy) continue;
    const start = item.value.priority ?? cursor;
    const end = start + policy.ruleCount - 1;
    if (start < bandStart || end > bandEnd) {
      err(
        field(item, 'priority'),
        item.value.priority !== undefined
          ? `policies ${policy.name}: priority ${start}${end > start ? `–${end}` : ''} is outside the policy band ${bandStart}–${bandEnd} (fleet.yaml defaults.priorities.policy); choose a priority inside it`
          : blocks.at(-1)?.explicit
            ? `policies ${policy.name}: follows policy ${blocks.at(-1)!.name} (priority ${blocks.at(-1)!.start}), which leaves no room after it in the band ${bandStart}–${bandEnd}; give ${policy.name} a priority: or move it before ${blocks.at(-1)!.name}`
            : `policies ${policy.name}: the policies need more rule priorities than the band ${bandStart}–${bandEnd} holds; widen defaults.priorities.policy in fleet.yaml`,
      );
    }
    for (const b of blocks) {
      if (start <= b.end && end >= b.start) {
        err(
          field(item, 'priority'),
          `policies ${policy.name}: ${span(start, end)} collide${start === end ? 's' : ''} with policy ${b.name} (${span(b.start, b.end)}); choose a priority after ${b.end}`,
        );
      }
    }
    blocks.push({ name: policy.name, start, end, explicit: item.value.priority !== undefined });
    cursor = Math.ceil((end + 1) / POLICY_STRIDE) * POLICY_STRIDE;
    policies.push({ ...policy, priority: start });
  }

  // Sysctls
  const sysctls: Record<string, string> = {};
  for (const [key, value] of Object.entries(site.sysctls.value)) {
    const origin = site.sysctls.fields[key];
    if (!/^net\.ipv4\.[a-z0-9_./@-]+$/.test(key)) {
      err(
        origin && { ...origin, key: true },
        `sysctls: "${key}" is not managed by Uplink; only net.ipv4.* keys are allowed (the agent owns routing sysctls only)`,
      );
      continue;
    }
    const text = String(value);
    if (!/^\d{1,10}$/.test(text)) {
      err(origin, `sysctls.${key}: "${text}" must be a non-negative integer`);
      continue;
    }
    sysctls[key] = text;
  }

  // Management
  const m = site.spec.management;
  const mgmt = checkAddress(m.address);
  if (!mgmt.ok)
    err({ parsed: site.parsed, path: ['management', 'address'] }, `management.address: ${mgmt.message}`);
  if (m.hostKey === undefined)
    report(
      { parsed: site.parsed, path: ['management'] },
      'warning',
      `management: no hostKey, so the controller trusts only a known_hosts entry for ${m.address} (ssh.knownHosts, --known-hosts) and refuses to connect without one; pin it with hostKey: "ssh-ed25519 AAAA…" (ssh-keyscan -t ed25519 ${m.address})`,
    );

  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  return {
    diagnostics,
    site: {
      name: site.spec.name,
      file: site.parsed.file,
      labels: site.labels,
      management: {
        address: mgmt.ok ? mgmt.value : m.address,
        port: m.port ?? 22,
        user: m.user ?? 'uplink',
        ...(m.hostKey === undefined ? {} : { hostKey: m.hostKey }),
      },
      lan,
      providers,
      policies,
      sysctls,
      settings: {
        protocol,
        markMask,
        balanceTable,
        adoptTables,
        drift: s.drift ?? defaults.drift,
        priorities: defaults.priorities,
      },
    },
  };
}

function gatewayRequired(label: string): string {
  return `${label}: gateway is required; write an address (198.51.100.1), detect (DHCP) or point-to-point (PPP)`;
}

function span(start: number, end: number): string {
  return start === end ? `priority ${start}` : `priorities ${start}–${end}`;
}

function claim(map: Map<number, string>, key: number, owner: string, onClash: () => void): void {
  if (map.has(key)) onClash();
  else map.set(key, owner);
}

/** The low byte's bits outside Uplink's mask (or all bits outside it): a mask to suggest for policy marks. */
function lowByteOutside(markMask: number): number {
  const outside = ~markMask >>> 0;
  return outside & 0xff || outside;
}

function lowestSetBit(mask: number): number {
  for (let i = 0; i < 32; i++) if ((mask >>> i) & 1) return i;
  return 0;
}

export function checkHealth(
  base: HealthSettings,
  spec: HealthSpec | undefined,
  err: (path: (string | number)[], message: string) => void,
): HealthSettings {
  if (!spec) return base;
  const out = { ...base, targets: [...base.targets] };
  if (spec.enabled !== undefined) out.enabled = spec.enabled;
  if (spec.method !== undefined) out.method = spec.method;
  if (spec.tcpPort !== undefined) out.tcpPort = spec.tcpPort;
  if (spec.interval !== undefined) out.intervalMs = parseDuration(spec.interval);
  if (spec.timeout !== undefined) out.timeoutMs = parseDuration(spec.timeout);
  if (spec.failAfter !== undefined) out.failAfter = spec.failAfter;
  if (spec.recoverAfter !== undefined) out.recoverAfter = spec.recoverAfter;
  if (spec.minTargetsUp !== undefined) out.minTargetsUp = spec.minTargetsUp;
  if (spec.targets !== undefined) {
    out.targets = [];
    spec.targets.forEach((t, i) => {
      const c = checkAddress(t);
      if (c.ok) out.targets.push(c.value);
      else err(['targets', i], `targets: ${c.message}`);
    });
  }
  if (out.intervalMs < 100)
    err(['interval'], `interval: ${out.intervalMs}ms is too short; write 100ms or more`);
  if (out.timeoutMs < 50) err(['timeout'], `timeout: ${out.timeoutMs}ms is too short; write 50ms or more`);
  if (out.timeoutMs > out.intervalMs) {
    err(
      ['timeout'],
      `timeout: ${out.timeoutMs}ms is longer than the interval (${out.intervalMs}ms); a probe must time out before the next round`,
    );
  }
  if (out.method === 'tcp' && out.tcpPort === undefined)
    err(['method'], 'method: tcp needs tcpPort: <port>, e.g. 443');
  if (out.targets.length > 0 && out.minTargetsUp > out.targets.length) {
    err(
      ['minTargetsUp'],
      `minTargetsUp: ${out.minTargetsUp} is more than the ${out.targets.length} targets listed`,
    );
  }
  return out;
}

function checkPolicy(
  item: Merged<PolicySpec>,
  providers: ReadonlySet<string>,
  lan: readonly { interface: string }[],
  markMask: number,
  err: (origin: Origin, message: string) => void,
): Omit<ValidPolicy, 'priority'> | undefined {
  const p = item.value;
  const label = `policies ${p.name}`;
  const at = (name: string, ...rest: (string | number)[]): Origin => {
    const o = item.fields[name] ?? item.origin;
    return { parsed: o.parsed, path: [...o.path, ...rest] };
  };
  let ok = true;
  const fail = (origin: Origin, message: string) => {
    ok = false;
    err(origin, message);
  };
  const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

  const nets = (key: 'from' | 'to') =>
    list(p[key]).flatMap((text, i) => {
      const c = checkNetwork(text);
      if (c.ok) return [c.value];
      fail(at(key, ...(Array.isArray(p[key]) ? [i] : [])), `${label}: ${key} ${c.message}`);
      return [];
    });
  const from = nets('from');
  const to = nets('to');

  const ports = (key: 'dport' | 'sport') =>
    list(p[key]).flatMap((v, i) => {
      const origin = at(key, ...(Array.isArray(p[key]) ? [i] : []));
      const [a, b] = String(v).split('-').map(Number) as [number, number | undefined];
      const range = { start: a, end: b ?? a };
      if (!(range.start >= 1 && range.end <= 65535 && range.start <= range.end)) {
        fail(origin, `${label}: ${key} ${v} is not a port 1–65535 or a range low-high`);
        return [];
      }
      return [range];
    });
  const dport = ports('dport');
  const sport = ports('sport');
  if ((dport.length > 0 || sport.length > 0) && p.proto !== 'tcp' && p.proto !== 'udp') {
    fail(
      at(dport.length > 0 ? 'dport' : 'sport'),
      `${label}: ports need a protocol; add proto: tcp or proto: udp`,
    );
  }

  let uid: ValidPolicy['uid'] = null;
  if (p.uid !== undefined) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(String(p.uid));
    const start = m ? Number(m[1]) : Number.NaN;
    const end = m?.[2] !== undefined ? Number(m[2]) : start;
    if (!m || start > end || end > 0xffffffff)
      fail(at('uid'), `${label}: uid ${p.uid} must be a uid (108) or a range ("1000-1999")`);
    else uid = { start, end };
    if (p.traffic === 'forwarded')
      fail(
        at('uid'),
        `${label}: uid only matches traffic the router itself sends; remove uid or use traffic: local`,
      );
  }

  let mark: ValidPolicy['mark'] = null;
  if (p.mark !== undefined) {
    const m = /^(0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))?$/i.exec(String(p.mark));
    if (!m) fail(at('mark'), `${label}: mark ${p.mark} must be a number or value/mask, e.g. 0x1/0xff`);
    else {
      const value = Number(m[1]);
      const mask = m[2] !== undefined ? Number(m[2]) : ~markMask >>> 0;
      // Bitwise operators truncate to 32 bits; refuse what they would silently wrap.
      if (value > 0xffffffff || mask > 0xffffffff) {
        fail(at('mark'), `${label}: mark ${p.mark} does not fit in 32 bits; a fwmark is 0–0xffffffff`);
      } else if ((mask & markMask) >>> 0 !== 0) {
        fail(
          at('mark'),
          `${label}: mark mask 0x${mask.toString(16)} overlaps Uplink's mark mask 0x${markMask.toString(16)}; match only bits outside it (0x${(~markMask >>> 0).toString(16)}), e.g. mark: 0x1/0x${lowByteOutside(markMask).toString(16)}`,
        );
      } else if ((value & ~mask) >>> 0 !== 0) {
        fail(at('mark'), `${label}: mark value ${m[1]} has bits outside its mask 0x${mask.toString(16)}`);
      } else mark = { value, mask };
    }
  }

  if (p.tos !== undefined && (p.tos < 0 || p.tos > 255 || (p.tos & 3) !== 0)) {
    fail(
      at('tos'),
      `${label}: tos ${p.tos} must be a DS field byte 0–252 with the two ECN bits clear (e.g. 0x10)`,
    );
  }

  const action = p.action ?? 'route';
  const via = p.via ?? [];
  if (action === 'route') {
    if (via.length === 0)
      fail(
        item.origin,
        `${label}: via is required; list the providers in order of preference, e.g. via: [isp1, isp2]`,
      );
    via.forEach((name, i) => {
      if (!providers.has(name)) {
        fail(
          at('via', i),
          `${label}: via names unknown provider "${name}"; known providers: ${[...providers].join(', ')}`,
        );
      }
    });
    if (new Set(via).size !== via.length)
      fail(at('via'), `${label}: via lists a provider twice; list each once`);
  } else if (via.length > 0) {
    fail(
      at('via'),
      `${label}: action ${action} does not route via providers; remove via or use action: route`,
    );
  }

  let iif: string[] = p.iif !== undefined ? [p.iif] : [];
  const traffic = p.traffic ?? 'all';
  if (traffic === 'local') {
    if (p.iif !== undefined)
      fail(at('iif'), `${label}: traffic: local means the router's own traffic (iif lo); remove iif`);
    iif = ['lo'];
  } else if (traffic === 'forwarded' && p.iif === undefined) {
    if (lan.length === 0)
      fail(at('traffic'), `${label}: traffic: forwarded needs LAN interfaces; declare lan: or set iif:`);
    iif = lan.map((l) => l.interface);
  }

  if (!ok) return undefined;
  const combos =
    Math.max(1, from.length) *
    Math.max(1, to.length) *
    Math.max(1, iif.length) *
    Math.max(1, dport.length) *
    Math.max(1, sport.length);
  const ruleCount = combos * (action === 'route' ? via.length : 1);
  if (ruleCount > 1000) {
    err(
      item.origin,
      `${label}: expands to ${ruleCount} ip rules; split it or use wider prefixes (at most 1000 per policy)`,
    );
    return undefined;
  }
  return {
    name: p.name,
    from,
    to,
    iif,
    uid,
    proto: p.proto ?? null,
    dport,
    sport,
    tos: p.tos ?? null,
    mark,
    via,
    action,
    ruleCount,
  };
}

export type { ProviderSpec };
