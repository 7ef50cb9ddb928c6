/**
 * A site's spec → the routing view of its router, offline: compile, resolve against the
 * router's reported facts when there are some (D172) — else against synthesized stand-ins —
 * and the given health, and build the simulator's view. The one place `explain`,
 * `explainClasses` and the plan's management-path check get a router from.
 */
import { resolve } from '#agent/core';
import { type DesiredState, type FactsRecord, type Health, interfaceFactsOf } from '#agent/model';
import { buildViewFromState, type RoutingView } from '#agent/sim';
import { compileSite } from '../compile/compile-site.js';
import { isoTime } from '../report/iso-time.js';
import type { ValidSite } from '../spec/valid-site.js';
import { synthesizeFacts } from './synthesize-facts.js';

/** A site's reported facts and where they were read from. */
export interface KnownFacts {
  readonly record: FactsRecord;
  /** `--facts FILE`, or the controller's state dir: for the note. */
  readonly from: string;
}

/** What the view was computed from: the router's own facts, or the spec with stand-ins. */
export type FactsBasis =
  | {
      readonly kind: 'router';
      readonly hash: string;
      /** When the agent read them; when the controller last had them reported (if it did). */
      readonly readAt: number;
      readonly reportedAt: number | null;
      readonly from: string;
    }
  | {
      readonly kind: 'spec';
      /** Providers whose address only the router knows. */
      readonly standIns: readonly string[];
    };

export interface SiteView {
  readonly desired: DesiredState;
  readonly view: RoutingView;
  /** What the offline router assumes, in operator words. */
  readonly notes: readonly string[];
  /** What it assumes about the providers' IPv6 halves: said only with an IPv6 packet. */
  readonly notes6: readonly string[];
  readonly basis: FactsBasis;
}

export interface SiteViewOptions {
  /** The router's facts; without them the spec's stand-ins are used. */
  readonly facts?: KnownFacts;
  /** The time of the answer (ms), for the facts' age. */
  readonly now?: number;
  /** Why there are no facts (e.g. none in the state dir), said in the stand-in note. */
  readonly noFacts?: string;
}

export function buildSiteView(
  site: ValidSite,
  down: readonly string[] = [],
  options: SiteViewOptions = {},
): SiteView {
  const desired = compileSite(site);
  // `--down isp1` takes the whole provider down (both halves, as a dead link does); `isp1:ipv6`
  // only its IPv6 half, as its IPv6 probes do (D183, D185).
  const health: Health = Object.fromEntries(
    down.flatMap((name) => {
      const provider = site.providers.find((p) => p.name === name);
      return provider?.ipv6
        ? [
            [name, 'down' as const],
            [`${name}:ipv6`, 'down' as const],
          ]
        : [[name, 'down' as const]];
    }),
  );
  const known = options.facts;
  const notes: string[] = [];
  let view: RoutingView;
  let basis: FactsBasis;
  let result: ReturnType<typeof resolve>;
  if (known !== undefined) {
    const { record } = known;
    const facts = interfaceFactsOf(record.facts);
    result = resolve(desired, facts, health);
    view = buildViewFromState(
      { ...result.effective, sysctls: { ...record.facts.sysctls, ...result.effective.sysctls } },
      facts,
      { markMask: desired.settings.markMask, rules: record.facts.rules, routes: record.facts.routes },
    );
    basis = {
      kind: 'router',
      hash: record.hash,
      readAt: record.readAt,
      reportedAt: record.reportedAt ?? null,
      from: known.from,
    };
    notes.push(describeFacts(basis, options.now));
  } else {
    const synthesized = synthesizeFacts(site);
    result = resolve(desired, synthesized.facts, health);
    view = buildViewFromState(result.effective, synthesized.facts, { markMask: desired.settings.markMask });
    basis = { kind: 'spec', standIns: synthesized.standIns };
    notes.push(
      `no facts reported by the router${options.noFacts === undefined ? '' : ` (${options.noFacts})`}: computed from the spec alone, with stand-ins for what only the router knows`,
    );
    notes.push(...synthesized.notes);
  }
  const { unavailable, problems, lastResort } = result;
  for (const name of down)
    notes.push(`${name} is taken as down (--down): its default routes are gone, so its rules fall through`);
  if (lastResort)
    notes.push(
      'every provider is down: the agent keeps them all as a last resort (D32), so traffic still tries them',
    );
  for (const u of unavailable) notes.push(`${u.provider} is unavailable: ${u.reason}`);
  const notes6 = result.unavailable6.map(
    (u) => `${u.provider}'s IPv6 half is unavailable: ${u.reason}; its IPv6 rules and routes are left out`,
  );
  if (result.lastResort6)
    notes6.push("every provider's IPv6 half is down: the agent keeps them all as a last resort (D183)");
  // Delegated prefixes (D155): with facts they are resolved like any other; without, unknown.
  for (const p of desired.providers) {
    if (p.ipv6?.delegated === undefined) continue;
    if (basis.kind === 'spec')
      notes6.push(
        `${p.name}'s IPv6 prefix is delegated (DHCPv6-PD): only the router knows it, so its source rule and NPTv6 mappings are not in this answer; ask with the router's facts (--facts FILE or --state-dir DIR)`,
      );
    for (const r of result.refusedDelegated.filter((r) => r.provider === p.name))
      notes6.push(`${p.name}'s delegated prefix ${r.prefix} ${r.reason}; the agent does not route it`);
  }
  for (const p of problems) notes.push(`problem in the desired state: ${p}`);
  if (basis.kind === 'spec')
    notes.push(
      'main table has no default route here; on the router one from DHCP or PPP may exist, which only rule 32766 (main, last) would use',
    );
  return { desired, view, notes, notes6, basis };
}

/** `computed with facts reported by the router at 2026-12-04 10:42Z (12 min before this answer; …)`. */
function describeFacts(basis: Extract<FactsBasis, { kind: 'router' }>, now: number | undefined): string {
  const at = basis.reportedAt ?? basis.readAt;
  const age = now === undefined ? '' : `${formatAge(now - at)} before this answer; `;
  const read = basis.reportedAt === null ? '' : `, read on the router at ${formatTime(basis.readAt)}`;
  return `computed with facts reported by the router at ${formatTime(at)} (${age}${basis.from}${read}; hash ${basis.hash.slice(0, 12)})`;
}

/** `2026-12-04 10:42Z`. */
export function formatTime(ms: number): string {
  return `${isoTime(ms).slice(0, 16).replace('T', ' ')}Z`;
}

function formatAge(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / 60_000));
  if (minutes < 1) return 'less than a minute';
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}
