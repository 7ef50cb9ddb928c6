/**
 * Stage: netfilter. Uplink's table inet uplink as the kernel runs it: the mark rules of
 * each hook (track save/restore), and SNAT/masquerade in postrouting.
 */
import type { KernelNftRule } from '../model/kernel-state.js';
import type { CompiledView } from './compile-view.js';
import type { Tracer } from './flow.js';
import { formatIpv4, hex, parseIpv4Fast } from './ipv4.js';
import { type PathOutcome, selectSourceAddress } from './route-packet.js';
import type { Snat } from './simulate-packet.js';

export interface CtState {
  ctMark: number;
  readonly isNew: boolean;
  readonly reply: boolean;
}

export function describeNft(rule: KernelNftRule, mask: number): string {
  switch (rule.kind) {
    case 'track-save':
      return `iifname ${rule.iif} ct state new ct mark set ct mark & ${hex(~mask >>> 0)} | ${hex(rule.mark)}`;
    case 'track-restore':
      return `ct mark & ${hex(mask)} == ${hex(rule.mark)} meta mark set meta mark & ${hex(~mask >>> 0)} | ${hex(rule.mark)}`;
    case 'masquerade':
      return `oifname ${rule.oif} masquerade`;
    case 'snat':
      return `oifname ${rule.oif} snat to ${rule.address}`;
    case 'npt':
      return `oifname ${rule.oif} ip6 saddr ${rule.from} snat ip6 prefix to ${rule.to}`;
    default:
      return rule.text;
  }
}

/** Uplink's mark rules of one hook; returns the new packet mark (ct.ctMark is updated in place). */
export function runMarkRules(
  cv: Pick<CompiledView, 'markMask'>,
  rules: readonly KernelNftRule[],
  hook: 'prerouting' | 'output',
  iif: string,
  mark: number,
  ct: CtState,
  t: Tracer | null,
  family: 'ipv4' | 'ipv6' = 'ipv4',
): number {
  const mask = cv.markMask;
  for (const rule of rules) {
    // Each track rule matches one family (`meta nfproto`): an IPv4 packet only the rules
    // without `family`, an IPv6 packet only their `family: ipv6` twins.
    if (
      (rule.kind === 'track-save' || rule.kind === 'track-restore') &&
      (rule.family === 'ipv6') !== (family === 'ipv6')
    )
      continue;
    if (rule.kind === 'track-save') {
      const applies = rule.iif === iif && ct.isNew;
      if (applies) ct.ctMark = ((ct.ctMark & ~mask) | (rule.mark & mask)) >>> 0;
      if (t) {
        t.push({
          step: 'nft',
          hook,
          rule,
          applied: applies,
          text: `${hook}: ${describeNft(rule, mask)} — ${applies ? `ct mark := ${hex(ct.ctMark)}` : rule.iif !== iif ? `no: arrived on ${iif}` : 'no: connection is not new'}`,
        });
      }
    } else if (rule.kind === 'track-restore') {
      const applies = (ct.ctMark & mask) >>> 0 === (rule.mark & mask) >>> 0;
      if (applies) mark = ((mark & ~mask) | (rule.mark & mask)) >>> 0;
      if (t) {
        t.push({
          step: 'nft',
          hook,
          rule,
          applied: applies,
          text: `${hook}: ${describeNft(rule, mask)} — ${applies ? `mark := ${hex(mark)}` : `no: ct mark ${hex(ct.ctMark)}`}`,
        });
      }
    }
  }
  return mark;
}

/**
 * Postrouting NAT: snat/masquerade apply to the first packet of a new connection leaving
 * by their oif (later packets and replies follow the conntrack entry); masquerade uses
 * inet_select_addr(oif, nexthop, universe).
 */
export function runNat(
  cv: CompiledView,
  path: PathOutcome,
  src: number,
  dst: number,
  ct: CtState,
  replyNatSrc: number,
  t: Tracer | null,
): { src: number; snat?: Snat } {
  if (ct.reply) {
    if (replyNatSrc !== 0 && replyNatSrc !== src) {
      const snat: Snat = { from: formatIpv4(src), to: formatIpv4(replyNatSrc), reason: 'conntrack-reply' };
      if (t) {
        t.push({
          step: 'nat',
          kind: 'conntrack-reply',
          from: snat.from,
          to: snat.to,
          text: `postrouting: reply of a DNAT'd connection; conntrack rewrites source ${snat.from} → ${snat.to}`,
        });
      }
      return { src: replyNatSrc, snat };
    }
    return { src };
  }
  if (!ct.isNew || path.dev === undefined) return { src };
  const mask = cv.markMask;
  for (const rule of cv.nft.postrouting) {
    if (rule.kind !== 'masquerade' && rule.kind !== 'snat') continue;
    if (rule.oif !== path.dev) {
      if (t)
        t.push({
          step: 'nft',
          hook: 'postrouting',
          rule,
          applied: false,
          text: `postrouting: ${describeNft(rule, mask)} — no: leaves by ${path.dev}`,
        });
      continue;
    }
    let to: number;
    if (rule.kind === 'snat') {
      to = parseIpv4Fast(rule.address);
    } else {
      const nexthop = path.gateway ? path.gateway : dst;
      to = selectSourceAddress(cv, rule.oif, nexthop, 0).address;
    }
    const snat: Snat = { from: formatIpv4(src), to: formatIpv4(to), reason: rule.kind, rule };
    if (t) {
      t.push({
        step: 'nft',
        hook: 'postrouting',
        rule,
        applied: true,
        text: `postrouting: ${describeNft(rule, mask)} — source ${snat.from} → ${snat.to}`,
      });
    }
    return { src: to, snat };
  }
  return { src };
}
