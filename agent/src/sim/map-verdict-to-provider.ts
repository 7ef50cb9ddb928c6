/**
 * Names the uplink that carries a packet, for `uplink explain`/`plan` and the agent's
 * management-path guard.
 */
import type { Verdict, VerdictKind } from './simulate-packet.js';

/** A provider's name and interface (desired-state `Provider` fits). */
export interface ProviderRef {
  readonly name: string;
  readonly interface: string;
}

export type UplinkChoice =
  | { readonly kind: 'provider'; readonly provider: string; readonly dev: string }
  | {
      readonly kind: 'balanced';
      readonly shares: ReadonlyArray<{
        readonly provider: string | null;
        readonly dev: string;
        readonly weight: number;
      }>;
    }
  /** Leaves by an interface that is no uplink (LAN, VPN). */
  | { readonly kind: 'other-interface'; readonly dev: string }
  | { readonly kind: 'local' }
  | { readonly kind: 'dropped'; readonly verdict: VerdictKind };

export function mapVerdictToProvider(verdict: Verdict, providers: readonly ProviderRef[]): UplinkChoice {
  const byDev = (dev: string) => providers.find((p) => p.interface === dev)?.name ?? null;
  if (verdict.kind === 'local') return { kind: 'local' };
  // A subnet broadcast arriving is delivered here; one the router sends leaves by its interface.
  if (verdict.kind === 'broadcast' && verdict.dev === 'lo') return { kind: 'local' };
  if (verdict.kind !== 'forward' && verdict.kind !== 'broadcast')
    return { kind: 'dropped', verdict: verdict.kind };
  if (verdict.dev !== undefined) {
    const provider = byDev(verdict.dev);
    return provider === null
      ? { kind: 'other-interface', dev: verdict.dev }
      : { kind: 'provider', provider, dev: verdict.dev };
  }
  return {
    kind: 'balanced',
    shares: (verdict.candidates ?? []).map((c) => ({ provider: byDev(c.dev), dev: c.dev, weight: c.weight })),
  };
}

export function formatUplinkChoice(choice: UplinkChoice): string {
  switch (choice.kind) {
    case 'provider':
      return `${choice.provider} (${choice.dev})`;
    case 'balanced': {
      const total = choice.shares.reduce((s, x) => s + x.weight, 0);
      return `balanced: ${choice.shares.map((s) => `${s.provider ?? s.dev} ${Math.round((100 * s.weight) / total)}%`).join(', ')}`;
    }
    case 'other-interface':
      return `no uplink (${choice.dev})`;
    case 'local':
      return 'this router';
    default:
      return `dropped (${choice.verdict})`;
  }
}

/**
 * How a packet's path differs between two verdicts (kind, interface, gateway, source on
 * the wire, multipath set); empty when it leaves the same way. The management-path guard
 * refuses a change when this is non-empty for the controller's connection.
 */
export function diffVerdicts(before: Verdict, after: Verdict): string[] {
  const out: string[] = [];
  const field = (name: string, a: string | undefined, b: string | undefined) => {
    if (a !== b) out.push(`${name}: ${a ?? '(none)'} → ${b ?? '(none)'}`);
  };
  field('verdict', before.kind, after.kind);
  field('dev', before.dev, after.dev);
  field('gateway', before.gateway, after.gateway);
  field('source', before.src, after.src);
  const paths = (v: Verdict) =>
    v.dev === undefined && v.candidates
      ? v.candidates
          .map((c) => `${c.dev}${c.gateway ? ` via ${c.gateway}` : ''} weight ${c.weight}`)
          .join(', ')
      : undefined;
  field('multipath', paths(before), paths(after));
  return out;
}
