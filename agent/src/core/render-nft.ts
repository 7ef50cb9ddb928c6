/**
 * Renders table `inet uplink` as one `nft -f` transaction that replaces the table whole.
 *
 * nftables 1.0.6 has no `destroy`, so the file starts with `add table` (a no-op when the
 * table exists) followed by `delete table`: both run in the same transaction as the new
 * definition, so the kernel never sees a moment without the table, and a failure anywhere
 * leaves the old table untouched.
 *
 * Marks are written with constants only (decisions D4). nft folds `x & A | B` into
 * `x & (A|B) | B` when it stores the rule; `parse-nft-json` expects that form back.
 * Every rule matches one family (`meta nfproto ipv4` or `ipv6`): IPv4 rules must not
 * masquerade or re-mark IPv6 traffic that leaves by the same interface, and a provider's IPv6
 * half gets track rules of its own (D182); NPTv6 rules are IPv6 by construction (D181).
 */
import type { KernelNftRule } from '../model/kernel-state.js';
import { address, cidr6, hex, interfaceToken, RenderError, uint } from './render-ip-batch.js';

export const NFT_TABLE_FAMILY = 'inet';
export const NFT_TABLE_NAME = 'uplink';

/** Base chains in the order they are written and read back. */
export const NFT_CHAINS = {
  prerouting: 'type filter hook prerouting priority mangle; policy accept;',
  /** `type route`: changing the mark of a locally generated packet re-routes it. */
  output: 'type route hook output priority mangle; policy accept;',
  postrouting: 'type nat hook postrouting priority srcnat; policy accept;',
} as const;
export type NftChainName = keyof typeof NFT_CHAINS;

/** Comment on every rule Uplink writes: `uplink:<kind>`. */
export const NFT_COMMENT_PREFIX = 'uplink:';

/** The chain a rule lives in. */
export function nftChainOf(rule: KernelNftRule): string {
  switch (rule.kind) {
    case 'track-save':
      return 'prerouting';
    case 'track-restore':
      return rule.chain;
    case 'masquerade':
    case 'snat':
    case 'npt':
      return 'postrouting';
    case 'unknown':
      return rule.chain;
  }
}

/**
 * Orders rules the way `parseNftTable` returns them: by chain (prerouting, output,
 * postrouting), keeping the relative order within a chain (which is evaluation order).
 */
export function orderNftRulesByChain(rules: readonly KernelNftRule[]): KernelNftRule[] {
  const chains = Object.keys(NFT_CHAINS);
  return chains.flatMap((chain) => rules.filter((rule) => nftChainOf(rule) === chain));
}

/**
 * The `nft -f` text that makes table inet uplink hold exactly `rules` (null: no table).
 * Throws a RenderError for `unknown` rules, marks outside the mask and unsafe tokens.
 */
export function renderNftTable(rules: readonly KernelNftRule[] | null, markMask: number): string {
  const mask = uint(markMask, 1, 0xffffffff, 'mark mask');
  const table = `${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}`;
  const lines = [`add table ${table}`, `delete table ${table}`];
  if (rules === null) return `${lines.join('\n')}\n`;
  const bodies: Record<NftChainName, string[]> = { prerouting: [], output: [], postrouting: [] };
  for (const rule of rules) {
    const chain = nftChainOf(rule);
    if (!(chain in bodies))
      throw new RenderError(`nft rule ${rule.kind}: unknown chain ${JSON.stringify(chain)}`);
    bodies[chain as NftChainName].push(renderNftRule(rule, Number(mask)));
  }
  lines.push(`table ${table} {`);
  for (const chain of Object.keys(NFT_CHAINS) as NftChainName[]) {
    lines.push(`  chain ${chain} {`, `    ${NFT_CHAINS[chain]}`);
    for (const body of bodies[chain]) lines.push(`    ${body}`);
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function renderNftRule(rule: KernelNftRule, markMask: number): string {
  const comment = `comment "${NFT_COMMENT_PREFIX}${rule.kind}"`;
  switch (rule.kind) {
    case 'track-save': {
      const { keep, mark } = markConstants(rule.mark, markMask, 'track-save');
      const iif = interfaceToken(rule.iif, 'track-save iif');
      return `meta nfproto ${nfproto(rule.family)} iifname "${iif}" ct state new ct mark set ct mark and ${keep} or ${mark} ${comment}`;
    }
    case 'track-restore': {
      const { keep, mark } = markConstants(rule.mark, markMask, 'track-restore');
      return `meta nfproto ${nfproto(rule.family)} ct mark and ${hex(markMask, 'mark mask')} == ${mark} meta mark set meta mark and ${keep} or ${mark} ${comment}`;
    }
    case 'masquerade':
      return `meta nfproto ipv4 oifname "${interfaceToken(rule.oif, 'masquerade oif')}" masquerade ${comment}`;
    case 'snat':
      return `meta nfproto ipv4 oifname "${interfaceToken(rule.oif, 'snat oif')}" snat ip to ${address(rule.address, 'snat address')} ${comment}`;
    case 'npt':
      return `meta nfproto ipv6 oifname "${interfaceToken(rule.oif, 'npt oif')}" ip6 saddr ${cidr6(rule.from, 'npt from')} snat ip6 prefix to ${cidr6(rule.to, 'npt to')} ${comment}`;
    case 'unknown':
      throw new RenderError(`nft rule in chain ${rule.chain}: an unknown rule cannot be written back`);
    default:
      throw new RenderError(`nft rule: unknown kind ${JSON.stringify((rule as { kind: unknown }).kind)}`);
  }
}

function nfproto(family: 'ipv6' | undefined): string {
  if (family !== undefined && family !== 'ipv6')
    throw new RenderError(`nft rule family ${JSON.stringify(family)}`);
  return family ?? 'ipv4';
}

/** `keep` clears the mask bits, `mark` sets the provider's; bits outside the mask survive. */
function markConstants(mark: number, markMask: number, what: string): { keep: string; mark: string } {
  uint(mark, 1, 0xffffffff, `${what} mark`);
  if ((mark & ~markMask) >>> 0 !== 0) {
    throw new RenderError(
      `${what}: mark ${hex(mark, 'mark')} has bits outside the mask ${hex(markMask, 'mask')}`,
    );
  }
  return { keep: hex(~markMask >>> 0, 'keep mask'), mark: hex(mark, 'mark') };
}
