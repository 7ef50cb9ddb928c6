/**
 * Parses `nft -j list table inet uplink` back into the rule kinds `render-nft` writes
 * (decisions D5). A rule is recognised only if it has exactly the shape Uplink writes,
 * including its `uplink:<kind>` comment and a mark that fits the configured mask; anything
 * else in the table (other rules, changed base chains, sets, extra chains) comes back as an
 * `unknown` entry, which the diff reports as drift.
 *
 * Shapes as nftables 1.0.6 stores and prints them (recorded in fixtures/nftables-1.0.6):
 * - `ct state new` is `{"match": {"op": "in", "right": "new"}}`;
 * - `x and A or B` is stored as `x & (A|B) | B` (nft folds B into A).
 */
import ipaddr from 'ipaddr.js';
import { canonicalIpv6Cidr } from '../model/desired-state.js';
import type { KernelNftRule } from '../model/kernel-state.js';
import { INTERFACE_NAME_PATTERN } from '../model/names.js';
import {
  NFT_CHAINS,
  NFT_COMMENT_PREFIX,
  NFT_TABLE_FAMILY,
  NFT_TABLE_NAME,
  type NftChainName,
} from './render-nft.js';

export class NftJsonError extends Error {
  override readonly name = 'NftJsonError';
}

export interface ParseNftOptions {
  /** The mark mask the rules were written with; a rule that implies another mask is unknown. */
  readonly markMask: number;
}

/** Expected base-chain definitions as `nft -j` reports them (priority names resolved). */
const BASE_CHAINS: Record<NftChainName, { type: string; hook: string; prio: number }> = {
  prerouting: { type: 'filter', hook: 'prerouting', prio: -150 },
  output: { type: 'route', hook: 'output', prio: -150 },
  postrouting: { type: 'nat', hook: 'postrouting', prio: 100 },
};

type Json = unknown;

/** `input`: the JSON text (or its parsed value) of `nft -j list table inet uplink`. */
export function parseNftTable(input: string | Json, options: ParseNftOptions): KernelNftRule[] {
  const document = typeof input === 'string' ? parseJsonText(input) : input;
  if (!isObject(document) || !Array.isArray(document.nftables)) {
    throw new NftJsonError('nft -j output: expected an object with an "nftables" array');
  }
  const rulesByChain = new Map<string, KernelNftRule[]>();
  const other: KernelNftRule[] = [];
  let sawTable = false;
  document.nftables.forEach((entry: Json, index: number) => {
    if (!isObject(entry)) throw new NftJsonError(`nft -j output: entry ${index} is not an object`);
    const [kind, ...extra] = Object.keys(entry);
    if (kind === undefined || extra.length > 0) {
      throw new NftJsonError(
        `nft -j output: entry ${index} must have exactly one key, has ${Object.keys(entry).length}`,
      );
    }
    const body = entry[kind];
    if (kind === 'metainfo') return;
    if (!isObject(body)) throw new NftJsonError(`nft -j output: entry ${index} (${kind}) is not an object`);
    if (kind !== 'table' && (body.family !== NFT_TABLE_FAMILY || body.table !== NFT_TABLE_NAME)) {
      throw new NftJsonError(
        `nft -j output: entry ${index} (${kind}) is not in table ${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}`,
      );
    }
    switch (kind) {
      case 'table':
        if (body.family !== NFT_TABLE_FAMILY || body.name !== NFT_TABLE_NAME) {
          throw new NftJsonError(
            `nft -j output: entry ${index} is table ${String(body.family)} ${String(body.name)}`,
          );
        }
        sawTable = true;
        if (Array.isArray(body.flags) && body.flags.length > 0) {
          other.push({ kind: 'unknown', chain: '', text: `table flags ${body.flags.join(',')}` });
        }
        return;
      case 'chain': {
        const name = String(body.name);
        if (!rulesByChain.has(name)) rulesByChain.set(name, []);
        const expected = BASE_CHAINS[name as NftChainName] as (typeof BASE_CHAINS)[NftChainName] | undefined;
        const matches =
          expected !== undefined &&
          Object.hasOwn(NFT_CHAINS, name) &&
          body.type === expected.type &&
          body.hook === expected.hook &&
          body.prio === expected.prio &&
          body.policy === 'accept';
        if (!matches) {
          rulesByChain
            .get(name)!
            .push({ kind: 'unknown', chain: name, text: `chain ${describeChain(body)}` });
        }
        return;
      }
      case 'rule': {
        const chain = String(body.chain);
        if (!rulesByChain.has(chain)) rulesByChain.set(chain, []);
        rulesByChain.get(chain)!.push(recogniseRule(chain, body, options.markMask));
        return;
      }
      default:
        other.push({ kind: 'unknown', chain: '', text: `${kind} ${String(body.name ?? '')}`.trim() });
    }
  });
  if (!sawTable) throw new NftJsonError(`nft -j output: no table ${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}`);
  const known = Object.keys(NFT_CHAINS);
  const ordered = [...known, ...[...rulesByChain.keys()].filter((chain) => !known.includes(chain))];
  return [...ordered.flatMap((chain) => rulesByChain.get(chain) ?? []), ...other];
}

function recogniseRule(chain: string, rule: Record<string, Json>, markMask: number): KernelNftRule {
  const recognised = recogniseKnownRule(chain, rule, markMask >>> 0);
  if (recognised !== undefined) return recognised;
  const comment = typeof rule.comment === 'string' ? ` comment ${JSON.stringify(rule.comment)}` : '';
  return { kind: 'unknown', chain, text: `${JSON.stringify(rule.expr ?? null)}${comment}` };
}

function recogniseKnownRule(
  chain: string,
  rule: Record<string, Json>,
  markMask: number,
): KernelNftRule | undefined {
  const expr = rule.expr;
  if (!Array.isArray(expr) || typeof rule.comment !== 'string') return undefined;
  if (!rule.comment.startsWith(NFT_COMMENT_PREFIX)) return undefined;
  const kind = rule.comment.slice(NFT_COMMENT_PREFIX.length);
  // nft drops `meta nfproto ipv6` in front of an `ip6 saddr` match, which implies it (NPTv6).
  const nfprotoFree = kind === 'npt' && !isMatch(expr[0], { meta: { key: 'nfproto' } }, 'ipv6');
  const [nfproto, ...rest] = nfprotoFree
    ? [{ match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv6' } }, ...expr]
    : expr;
  const ipv6 = isMatch(nfproto, { meta: { key: 'nfproto' } }, 'ipv6');
  if (!ipv6 && !isMatch(nfproto, { meta: { key: 'nfproto' } }, 'ipv4')) return undefined;
  // Track rules exist for both families (D182); the rest for the one they were written for.
  const family = ipv6 ? { family: 'ipv6' as const } : {};
  if (ipv6 !== (kind === 'npt') && kind !== 'track-save' && kind !== 'track-restore') return undefined;
  switch (kind) {
    case 'track-save': {
      if (chain !== 'prerouting' || rest.length !== 3) return undefined;
      const [iif, state, set] = rest;
      const name = matchedString(iif, 'iifname');
      if (name === undefined || !isCtStateNew(state)) return undefined;
      const mark = setMark(set, 'ct', markMask);
      return mark === undefined || !isInterfaceName(name) ? undefined : { kind, iif: name, mark, ...family };
    }
    case 'track-restore': {
      if ((chain !== 'prerouting' && chain !== 'output') || rest.length !== 2) return undefined;
      const [test, set] = rest;
      const mark = setMark(set, 'meta', markMask);
      if (mark === undefined) return undefined;
      const tested = { '&': [{ ct: { key: 'mark' } }, markMask] };
      return isMatch(test, tested, mark) ? { kind, chain, mark, ...family } : undefined;
    }
    case 'npt': {
      if (chain !== 'postrouting' || rest.length !== 3) return undefined;
      const [oif, saddr, action] = rest;
      const name = matchedString(oif, 'oifname');
      if (name === undefined || !isInterfaceName(name) || !isObject(saddr) || !isObject(saddr.match))
        return undefined;
      const { op, left, right } = saddr.match;
      if (op !== '==' || !deepEqual(left, { payload: { protocol: 'ip6', field: 'saddr' } })) return undefined;
      const from = prefixOf(right);
      if (from === undefined || !isObject(action) || Object.keys(action).length !== 1) return undefined;
      const snat = action.snat;
      if (!isObject(snat) || snat.family !== 'ip6' || snat.flags !== 'netmap' || snat.type_flags !== 'prefix')
        return undefined;
      if (Object.keys(snat).length !== 4 || !isObject(snat.addr)) return undefined;
      const to = prefixOf(snat.addr);
      return to === undefined ? undefined : { kind, oif: name, from, to };
    }
    case 'masquerade': {
      if (chain !== 'postrouting' || rest.length !== 2) return undefined;
      const [oif, action] = rest;
      const name = matchedString(oif, 'oifname');
      if (name === undefined || !isInterfaceName(name)) return undefined;
      return isObject(action) && Object.keys(action).length === 1 && action.masquerade === null
        ? { kind, oif: name }
        : undefined;
    }
    case 'snat': {
      if (chain !== 'postrouting' || rest.length !== 2) return undefined;
      const [oif, action] = rest;
      const name = matchedString(oif, 'oifname');
      if (
        name === undefined ||
        !isInterfaceName(name) ||
        !isObject(action) ||
        Object.keys(action).length !== 1
      ) {
        return undefined;
      }
      const snat = action.snat;
      if (!isObject(snat) || Object.keys(snat).length !== 2 || snat.family !== 'ip') return undefined;
      const addr = snat.addr;
      if (typeof addr !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(addr)) return undefined;
      return { kind, oif: name, address: addr };
    }
    default:
      return undefined;
  }
}

/** `KEY mark set KEY mark and KEEP or MARK`, stored by nft as `& (KEEP|MARK) | MARK`. */
function setMark(value: Json, key: 'ct' | 'meta', markMask: number): number | undefined {
  if (!isObject(value) || Object.keys(value).length !== 1 || !isObject(value.mangle)) return undefined;
  const mangle = value.mangle;
  if (!deepEqual(mangle.key, { [key]: { key: 'mark' } })) return undefined;
  const expression = mangle.value;
  if (!isObject(expression) || Object.keys(expression).length !== 1) return undefined;
  const or = expression['|'];
  if (!Array.isArray(or) || or.length !== 2) return undefined;
  const [and, mark] = or;
  if (typeof mark !== 'number' || mark <= 0 || (mark & ~markMask) >>> 0 !== 0) return undefined;
  const keep = (~markMask | mark) >>> 0;
  return deepEqual(and, { '&': [{ [key]: { key: 'mark' } }, keep] }) ? mark : undefined;
}

/** `{"prefix": {"addr": "2001:db8::", "len": 48}}` in canonical form, or undefined. */
function prefixOf(value: Json): string | undefined {
  if (!isObject(value) || Object.keys(value).length !== 1 || !isObject(value.prefix)) return undefined;
  const { addr, len } = value.prefix;
  if (typeof addr !== 'string' || typeof len !== 'number' || !ipaddr.IPv6.isValid(addr)) return undefined;
  if (!Number.isInteger(len) || len < 0 || len > 128) return undefined;
  const cidr = canonicalIpv6Cidr(addr, len);
  return cidr === `${ipaddr.IPv6.parse(addr).toString()}/${len}` ? cidr : undefined;
}

function isCtStateNew(value: Json): boolean {
  return (
    isMatch(value, { ct: { key: 'state' } }, 'new', 'in') ||
    isMatch(value, { ct: { key: 'state' } }, ['new'], 'in')
  );
}

function matchedString(value: Json, metaKey: 'iifname' | 'oifname'): string | undefined {
  if (!isObject(value) || Object.keys(value).length !== 1 || !isObject(value.match)) return undefined;
  const { op, left, right } = value.match;
  if (op !== '==' || !deepEqual(left, { meta: { key: metaKey } }) || typeof right !== 'string')
    return undefined;
  return right;
}

function isMatch(value: Json, left: Json, right: Json, op = '=='): boolean {
  return isObject(value) && Object.keys(value).length === 1 && deepEqual(value.match, { op, left, right });
}

function isInterfaceName(name: string): boolean {
  return INTERFACE_NAME_PATTERN.test(name);
}

function describeChain(chain: Record<string, Json>): string {
  const parts = [String(chain.name)];
  for (const key of ['type', 'hook', 'prio', 'policy', 'dev']) {
    if (chain[key] !== undefined) parts.push(`${key} ${JSON.stringify(chain[key])}`);
  }
  return parts.join(' ');
}

function parseJsonText(text: string): Json {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new NftJsonError(`nft -j output is not JSON: ${(error as Error).message}`);
  }
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]))
    );
  }
  return false;
}
