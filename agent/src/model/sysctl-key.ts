/**
 * Sysctl keys, the one owner of their grammar (D89). A desired state names a key the way
 * `/proc/sys` paths are built from it, with the interface name written as it is — dots
 * included: `net.ipv4.conf.enp1s0.100.rp_filter` is the file
 * `/proc/sys/net/ipv4/conf/enp1s0.100/rp_filter`, and sysctl(8) spells it
 * `net.ipv4.conf.enp1s0/100.rp_filter`. Every place that turns a key into a path, a sysctl(8)
 * argument or an interface (the compiler, validation, the resolver, both dataplanes, the
 * simulator) goes through here, so a VLAN uplink is one key everywhere.
 *
 * The keys Uplink may manage:
 * - `net.ipv4.<leaf>`                    e.g. net.ipv4.ip_forward
 * - `net.ipv4.conf.<dev>.<leaf>`         dev: an interface name, `all` or `default`
 * - `net.ipv4.neigh.<dev>.<leaf>`
 * - `net.ipv4.route.<leaf>`
 * and the same four under `net.ipv6` (forwarding, accept_ra on uplinks; D180),
 * where a leaf is lower-case letters, digits and `_`. Nothing else: no `..`, no `/`.
 */
import { INTERFACE_NAME_PATTERN } from './names.js';

export const SYSCTL_FAMILIES = ['ipv4', 'ipv6'] as const;
export type SysctlFamily = (typeof SYSCTL_FAMILIES)[number];

/** The forms above, for messages. */
export const SYSCTL_KEY_FORMS =
  'net.ipv4.<name>, net.ipv4.conf.<interface|all|default>.<name>, net.ipv4.neigh.<interface|all|default>.<name>, net.ipv4.route.<name> or the same under net.ipv6';

const LEAF = /^[a-z0-9_]+$/;
const PER_DEVICE = /^net\.(ipv4|ipv6)\.(conf|neigh)\.(.+)\.([a-z0-9_]+)$/;
const ROUTE = /^net\.(ipv4|ipv6)\.route\.([a-z0-9_]+)$/;
const TOP = /^net\.(ipv4|ipv6)\.([a-z0-9_]+)$/;

export type SysctlKey =
  | {
      readonly family: SysctlFamily;
      readonly section: 'conf' | 'neigh';
      /** An interface name, or `all` / `default`. */
      readonly device: string;
      readonly leaf: string;
    }
  | { readonly family: SysctlFamily; readonly section: 'route' | 'top'; readonly leaf: string };

/** The key's parts, or undefined when it is not one Uplink may manage. */
export function parseSysctlKey(key: string): SysctlKey | undefined {
  const perDevice = PER_DEVICE.exec(key);
  if (perDevice !== null) {
    const device = perDevice[3]!;
    if (device !== 'all' && device !== 'default' && !INTERFACE_NAME_PATTERN.test(device)) return undefined;
    return {
      family: perDevice[1] as SysctlFamily,
      section: perDevice[2] as 'conf' | 'neigh',
      device,
      leaf: perDevice[4]!,
    };
  }
  // `net.ipv4.conf.x` with no leaf, or a section name used as a leaf, is not a key.
  if (/^net\.ipv[46]\.(conf|neigh)(\.|$)/.test(key)) return undefined;
  const route = ROUTE.exec(key);
  if (route !== null) return { family: route[1] as SysctlFamily, section: 'route', leaf: route[2]! };
  const top = TOP.exec(key);
  if (top !== null && top[2] !== 'route') {
    return { family: top[1] as SysctlFamily, section: 'top', leaf: top[2]! };
  }
  return undefined;
}

export function isSysctlKey(key: string): boolean {
  return parseSysctlKey(key) !== undefined;
}

/** `net.ipv4.conf.<interface>.<leaf>` for an interface (dots in its name kept). */
export function interfaceSysctlKey(iface: string, leaf: string, family: SysctlFamily = 'ipv4'): string {
  if (!INTERFACE_NAME_PATTERN.test(iface)) throw new Error(`${iface}: not an interface name`);
  if (!LEAF.test(leaf)) throw new Error(`${leaf}: not a sysctl name`);
  return `net.${family}.conf.${iface}.${leaf}`;
}

/** The interface a per-device key is about; undefined for `all`, `default` and other keys. */
export function sysctlInterface(key: string): string | undefined {
  const parsed = parseSysctlKey(key);
  if (parsed === undefined || (parsed.section !== 'conf' && parsed.section !== 'neigh')) return undefined;
  return parsed.device === 'all' || parsed.device === 'default' ? undefined : parsed.device;
}

/** The path below /proc/sys: `net/ipv4/conf/enp1s0.100/rp_filter`. Throws for a key that is not one. */
export function sysctlPath(key: string): string {
  const parsed = mustParse(key);
  if (parsed.section === 'conf' || parsed.section === 'neigh') {
    return `net/${parsed.family}/${parsed.section}/${parsed.device}/${parsed.leaf}`;
  }
  return parsed.section === 'route'
    ? `net/${parsed.family}/route/${parsed.leaf}`
    : `net/${parsed.family}/${parsed.leaf}`;
}

/** The name sysctl(8) takes: dots inside an interface name written as `/`. */
export function sysctlToolKey(key: string): string {
  const parsed = mustParse(key);
  if (parsed.section !== 'conf' && parsed.section !== 'neigh') return key;
  return `net.${parsed.family}.${parsed.section}.${parsed.device.replaceAll('.', '/')}.${parsed.leaf}`;
}

/**
 * What to write instead of a key that is not one Uplink manages, when there is an obvious
 * fix: sysctl(8)'s `/` spelling of a dotted interface name.
 */
export function suggestSysctlKey(key: string): string | undefined {
  const toolForm = /^net\.(ipv4)\.(conf|neigh)\.([A-Za-z0-9_@/-]+)\.([a-z0-9_]+)$/.exec(key);
  if (toolForm === null || !toolForm[3]!.includes('/')) return undefined;
  const candidate = `net.${toolForm[1]}.${toolForm[2]}.${toolForm[3]!.replaceAll('/', '.')}.${toolForm[4]}`;
  return isSysctlKey(candidate) ? candidate : undefined;
}

function mustParse(key: string): SysctlKey {
  const parsed = parseSysctlKey(key);
  if (parsed === undefined) throw new Error(`${key}: not a sysctl key Uplink manages (${SYSCTL_KEY_FORMS})`);
  return parsed;
}
