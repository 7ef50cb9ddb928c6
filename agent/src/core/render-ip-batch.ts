/**
 * Renders route and rule steps as `ip -4 -batch -` input: one line per step, in step order.
 *
 * Every token comes from validated model data, and is asserted again here: a batch line is
 * split on whitespace by iproute2, so a value that is not one safe token could smuggle in
 * extra arguments. Anything unexpected throws a `RenderError` instead of being written.
 *
 * Syntax checked against iproute2 6.1 (`ip rule help`, `ip route help`):
 * - `tos` is parsed as hexadecimal by iproute2 (`tos 16` means 0x16), so it is written `0x..`.
 * - Deletes name the whole object (selectors, action, protocol): the kernel then refuses to
 *   delete anything that is not exactly it (e.g. an untagged route with the same prefix).
 */
import ipaddr from 'ipaddr.js';
import type { KernelNexthop, KernelRoute, KernelRule } from '../model/kernel-state.js';
import { INTERFACE_NAME_PATTERN } from '../model/names.js';
import type { Step } from '../model/steps.js';

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

/** Steps `ip -batch` can run. */
export type IpStep = Extract<Step, { op: 'route-replace' | 'route-delete' | 'rule-add' | 'rule-delete' }>;

export function isIpStep(step: Step): step is IpStep {
  return (
    step.op === 'route-replace' ||
    step.op === 'route-delete' ||
    step.op === 'rule-add' ||
    step.op === 'rule-delete'
  );
}

/** The batch text for `ip -4 -batch -`; line N (1-based) is `steps[N-1]`. */
export function renderIpBatch(steps: readonly IpStep[]): string {
  return steps.map((step) => `${renderIpBatchLine(step)}\n`).join('');
}

export function renderIpBatchLine(step: IpStep): string {
  switch (step.op) {
    case 'route-replace':
      return ['route', 'replace', ...renderRoute(step.route)].join(' ');
    case 'route-delete':
      return ['route', 'del', ...renderRoute(step.route)].join(' ');
    case 'rule-add':
      return ['rule', 'add', ...renderRule(step.rule)].join(' ');
    case 'rule-delete':
      return ['rule', 'del', ...renderRule(step.rule)].join(' ');
    default:
      throw new RenderError(`step ${JSON.stringify((step as { op: unknown }).op)}: not an ip -batch step`);
  }
}

function renderRule(rule: KernelRule): string[] {
  const out: string[] = ['priority', uint(rule.priority, 0, 32767, 'rule priority')];
  if (rule.from !== undefined) out.push('from', cidr(rule.from, 'rule from'));
  if (rule.to !== undefined) out.push('to', cidr(rule.to, 'rule to'));
  if (rule.iif !== undefined) out.push('iif', interfaceToken(rule.iif, 'rule iif'));
  if (rule.oif !== undefined) out.push('oif', interfaceToken(rule.oif, 'rule oif'));
  if (rule.fwmark !== undefined) {
    const mark = hex(rule.fwmark, 'rule fwmark');
    out.push('fwmark', rule.fwmask === undefined ? mark : `${mark}/${hex(rule.fwmask, 'rule fwmask')}`);
  } else if (rule.fwmask !== undefined) {
    throw new RenderError(`rule ${rule.priority}: fwmask without fwmark`);
  }
  if (rule.uidrange !== undefined) {
    const { start, end } = rule.uidrange;
    out.push(
      'uidrange',
      `${uint(start, 0, 0xffffffff, 'uidrange start')}-${uint(end, start, 0xffffffff, 'uidrange end')}`,
    );
  }
  if (rule.ipproto !== undefined) out.push('ipproto', oneOf(rule.ipproto, IP_PROTOS, 'rule ipproto'));
  if (rule.sport !== undefined) out.push('sport', portRange(rule.sport, 'rule sport'));
  if (rule.dport !== undefined) out.push('dport', portRange(rule.dport, 'rule dport'));
  if (rule.tos !== undefined) out.push('tos', `0x${uint(rule.tos, 0, 255, 'rule tos', 16)}`);
  switch (rule.action) {
    case 'lookup':
      if (rule.table === undefined)
        throw new RenderError(`rule ${rule.priority}: action lookup needs a table`);
      out.push('lookup', uint(rule.table, 1, 0xffffffff, 'rule table'));
      break;
    case 'blackhole':
    case 'unreachable':
    case 'prohibit':
      if (rule.table !== undefined)
        throw new RenderError(`rule ${rule.priority}: action ${rule.action} has no table`);
      out.push(rule.action);
      break;
    default:
      throw new RenderError(`rule ${rule.priority}: unknown action ${JSON.stringify(rule.action)}`);
  }
  if (rule.suppressPrefixlength !== undefined) {
    out.push('suppress_prefixlength', uint(rule.suppressPrefixlength, 0, 32, 'suppress_prefixlength'));
  }
  out.push('protocol', uint(rule.protocol, 0, 255, 'rule protocol'));
  return out;
}

const ROUTE_TYPES = ['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw'] as const;
const IP_PROTOS = ['tcp', 'udp', 'icmp'] as const;
const SCOPES = ['global', 'link', 'host'] as const;

function renderRoute(route: KernelRoute): string[] {
  const type = oneOf(route.type, ROUTE_TYPES, 'route type');
  const out: string[] = [];
  if (type !== 'unicast') {
    out.push(type);
    if (route.dev !== undefined || route.gateway !== undefined || route.nexthops !== undefined) {
      throw new RenderError(
        `route ${route.dst} table ${route.table}: a ${type} route has no dev, gateway or nexthops`,
      );
    }
  }
  out.push(cidr(route.dst, 'route dst'));
  const multipath = route.nexthops !== undefined && route.nexthops.length > 0;
  if (multipath && (route.dev !== undefined || route.gateway !== undefined)) {
    throw new RenderError(
      `route ${route.dst} table ${route.table}: either nexthops or dev/gateway, not both`,
    );
  }
  if (route.gateway !== undefined) out.push('via', address(route.gateway, 'route gateway'));
  if (route.dev !== undefined) out.push('dev', interfaceToken(route.dev, 'route dev'));
  if (type === 'unicast' && !multipath && route.dev === undefined && route.gateway === undefined) {
    throw new RenderError(
      `route ${route.dst} table ${route.table}: a unicast route needs a dev, a gateway or nexthops`,
    );
  }
  if (route.src !== undefined) out.push('src', address(route.src, 'route src'));
  if (route.scope !== undefined) out.push('scope', oneOf(route.scope, SCOPES, 'route scope'));
  if (route.metric !== undefined) out.push('metric', uint(route.metric, 0, 0xffffffff, 'route metric'));
  out.push('table', uint(route.table, 1, 0xffffffff, 'route table'));
  out.push('proto', uint(route.protocol, 0, 255, 'route protocol'));
  if (multipath) for (const nexthop of route.nexthops!) out.push(...renderNexthop(nexthop));
  return out;
}

function renderNexthop(nexthop: KernelNexthop): string[] {
  const out = ['nexthop'];
  if (nexthop.gateway !== undefined) out.push('via', address(nexthop.gateway, 'nexthop gateway'));
  out.push('dev', interfaceToken(nexthop.dev, 'nexthop dev'));
  out.push('weight', uint(nexthop.weight, 1, 256, 'nexthop weight'));
  return out;
}

/** Linux interface names as the model accepts them (≤15 bytes, no whitespace, '/', ':'). */

export function interfaceToken(value: string, what: string): string {
  if (typeof value !== 'string' || !INTERFACE_NAME_PATTERN.test(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not a valid interface name`);
  }
  return value;
}

/** A dotted-quad IPv4 address, returned as written (it must already be canonical). */
export function address(value: string, what: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not an IPv4 address`);
  }
  const canonical = ipaddr.IPv4.parse(value).toString();
  if (canonical !== value)
    throw new RenderError(`${what}: write ${canonical} instead of ${JSON.stringify(value)}`);
  return value;
}

/** An IPv4 CIDR in canonical form (host bits zero). */
export function cidr(value: string, what: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidCIDRFourPartDecimal(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not an IPv4 CIDR`);
  }
  const [, length] = ipaddr.IPv4.parseCIDR(value);
  const canonical = `${ipaddr.IPv4.networkAddressFromCIDR(value).toString()}/${length}`;
  if (canonical !== value)
    throw new RenderError(`${what}: write ${canonical} instead of ${JSON.stringify(value)}`);
  return value;
}

export function uint(value: number, min: number, max: number, what: string, radix = 10): string {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not an integer in ${min}..${max}`);
  }
  return value.toString(radix);
}

export function hex(value: number, what: string): string {
  return `0x${uint(value, 0, 0xffffffff, what, 16)}`;
}

function portRange(range: { start: number; end: number }, what: string): string {
  const start = uint(range.start, 1, 65535, `${what} start`);
  const end = uint(range.end, range.start, 65535, `${what} end`);
  return start === end ? start : `${start}-${end}`;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}
