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
import { canonicalIpv6Cidr } from '../model/desired-state.js';
import type { KernelRoute, KernelRule } from '../model/kernel-state.js';
import { INTERFACE_NAME_PATTERN } from '../model/names.js';
import type { Step } from '../model/steps.js';
import { ADD_ORDER, type RouteStyle, type RuleStyle, routeWords, ruleWords } from './render-rule-words.js';

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

/** `inet6` for a step on an IPv6 rule or route (`ip -6 -batch`), else undefined (IPv4). */
export function ipStepFamily(step: IpStep): 'inet6' | undefined {
  return 'rule' in step ? step.rule.family : step.route.family;
}

/**
 * The batch text for `ip -4 -batch -` (or `ip -6`: every step of one batch has one family,
 * see `ipStepFamily`); line N (1-based) is `steps[N-1]`.
 */
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

/** `ip rule add` words, every value checked (see the file comment). */
const BATCH_RULE: RuleStyle<string> = {
  order: ADD_ORDER,
  priority: 'keyword',
  fromAll: false,
  tos: 'hex',
  zeroTos: true,
  fwmark: 'given',
  protocol: 'protocol',
  table: (table) => uint(table!, 1, 0xffffffff, 'rule table'),
  address: (value, field) => cidr(value, `rule ${field}`),
  interface: (value, field) => interfaceToken(value, `rule ${field}`),
  number: uint,
};

function renderRule(rule: KernelRule): string[] {
  if (rule.fwmask !== undefined && rule.fwmark === undefined) {
    throw new RenderError(`rule ${rule.priority}: fwmask without fwmark`);
  }
  if (rule.ipproto !== undefined) oneOf(rule.ipproto, IP_PROTOS, 'rule ipproto');
  switch (rule.action) {
    case 'lookup':
      if (rule.table === undefined)
        throw new RenderError(`rule ${rule.priority}: action lookup needs a table`);
      break;
    case 'blackhole':
    case 'unreachable':
    case 'prohibit':
      if (rule.table !== undefined)
        throw new RenderError(`rule ${rule.priority}: action ${rule.action} has no table`);
      break;
    default:
      throw new RenderError(`rule ${rule.priority}: unknown action ${JSON.stringify(rule.action)}`);
  }
  if (rule.family === 'inet6') return ruleWords(rule, BATCH_RULE6);
  if (rule.family !== undefined)
    throw new RenderError(`rule ${rule.priority}: family ${JSON.stringify(rule.family)}`);
  return ruleWords(rule, BATCH_RULE);
}

const BATCH_RULE6: RuleStyle<string> = {
  ...BATCH_RULE,
  address: (value, field) => cidr6(value, `rule ${field}`),
};

const ROUTE_TYPES = ['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw'] as const;
const IP_PROTOS = ['tcp', 'udp', 'icmp', 'ipv6-icmp'] as const;
const SCOPES = ['global', 'link', 'host'] as const;

/** `ip route replace|del` words, every value checked. */
const BATCH_ROUTE: RouteStyle<string> = {
  order: ['gateway', 'dev', 'src', 'scope', 'metric', 'table', 'protocol', 'nexthops'],
  dst: (value) => cidr(value, 'route dst'),
  address: (value, field) => address(value, `route ${field}`),
  interface: (value, field) => interfaceToken(value, field === 'dev' ? 'route dev' : field),
  table: (table) => uint(table, 1, 0xffffffff, 'route table'),
  protocolWord: 'proto',
  omitGlobalScope: false,
  omitZeroMetric: false,
  number: uint,
};

function renderRoute(route: KernelRoute): string[] {
  const type = oneOf(route.type, ROUTE_TYPES, 'route type');
  if (type !== 'unicast') {
    if (route.dev !== undefined || route.gateway !== undefined || route.nexthops !== undefined) {
      throw new RenderError(
        `route ${route.dst} table ${route.table}: a ${type} route has no dev, gateway or nexthops`,
      );
    }
  }
  const multipath = route.nexthops !== undefined && route.nexthops.length > 0;
  if (multipath && (route.dev !== undefined || route.gateway !== undefined)) {
    throw new RenderError(
      `route ${route.dst} table ${route.table}: either nexthops or dev/gateway, not both`,
    );
  }
  if (type === 'unicast' && !multipath && route.dev === undefined && route.gateway === undefined) {
    throw new RenderError(
      `route ${route.dst} table ${route.table}: a unicast route needs a dev, a gateway or nexthops`,
    );
  }
  if (route.scope !== undefined) oneOf(route.scope, SCOPES, 'route scope');
  if (route.family === 'inet6') return routeWords(route, BATCH_ROUTE6);
  if (route.family !== undefined)
    throw new RenderError(`route ${route.dst}: family ${JSON.stringify(route.family)}`);
  return routeWords(route, BATCH_ROUTE);
}

const BATCH_ROUTE6: RouteStyle<string> = {
  ...BATCH_ROUTE,
  dst: (value) => cidr6(value, 'route dst'),
  address: (value, field) => address6(value, `route ${field}`),
};

/** Linux interface names as the model accepts them (≤15 bytes, no whitespace, '/', ':'). */

export function interfaceToken(value: string, what: string): string {
  if (typeof value !== 'string' || !INTERFACE_NAME_PATTERN.test(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not a valid interface name`);
  }
  return value;
}

/** An IPv6 address in RFC 5952 form, returned as written. */
export function address6(value: string, what: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv6.isValid(value) || value.includes('%')) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not an IPv6 address`);
  }
  const canonical = ipaddr.IPv6.parse(value).toString();
  if (canonical !== value)
    throw new RenderError(`${what}: write ${canonical} instead of ${JSON.stringify(value)}`);
  return value;
}

/** An IPv6 CIDR in canonical form (host bits zero). */
export function cidr6(value: string, what: string): string {
  if (typeof value !== 'string' || !ipaddr.IPv6.isValidCIDR(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not an IPv6 CIDR`);
  }
  const [base, length] = value.split('/') as [string, string];
  address6(base, what);
  const canonical = canonicalIpv6Cidr(base, Number(length));
  if (canonical !== value)
    throw new RenderError(`${what}: write ${canonical} instead of ${JSON.stringify(value)}`);
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

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new RenderError(`${what}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}
