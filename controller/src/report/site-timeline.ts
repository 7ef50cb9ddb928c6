/**
 * A site's history, as entries of its timeline (D127): what the controller did to it
 * (applies, refusals, rollbacks, reconciliation) and what its agent reported (reverts,
 * uplink health transitions with their reason, loss and latency, drift found and cleared,
 * manual overrides, reachability). Entries derived from the agent's reports carry a `key`
 * naming the fact, so asking again — or a restarted controller asking for the first time —
 * never records one twice. Pure.
 */
import type { StatusResult } from '#agent/model';
import { describeGeneration } from './generation.js';

export type TimelineKind =
  | 'applied'
  | 'apply-failed'
  | 'unhealthy'
  | 'rolled-back'
  | 'reverted'
  | 'override'
  | 'applied-outside'
  | 'provider-down'
  | 'provider-up'
  | 'provider-unknown'
  | 'drift-found'
  | 'drift-cleared'
  | 'unreachable'
  | 'reachable'
  | 'suspended'
  | 'resumed';

export interface TimelineEntry {
  readonly at: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly kind: TimelineKind | string;
  readonly message: string;
  /** Identity of an agent-reported fact (dedupes it); absent on the controller's own entries. */
  readonly key?: string;
  readonly provider?: string;
  readonly generation?: string;
  readonly commit?: string;
  readonly loss?: number;
  readonly latencyMs?: number | null;
}

/** Entries kept per site (older ones are dropped). */
export const TIMELINE_LIMIT = 200;

/** A report, as far as the timeline reads it. */
export interface TimelineReport {
  readonly at: number;
  readonly reachable: boolean;
  readonly error?: string;
  readonly status?: StatusResult;
}

/**
 * The entries `report` adds to `timeline` (the site's entries so far, in any order): facts
 * not recorded yet. Generations of the controller's own rollouts (`<commit40>-…`) are not
 * recorded from reports — the rollout records its outcome itself.
 */
export function timelineFromReport(
  timeline: readonly TimelineEntry[],
  report: TimelineReport,
): TimelineEntry[] {
  const keys = new Set(timeline.flatMap((e) => (e.key === undefined ? [] : [e.key])));
  const out: TimelineEntry[] = [];
  const add = (entry: TimelineEntry) => {
    if (entry.key !== undefined) {
      if (keys.has(entry.key)) return;
      keys.add(entry.key);
    }
    out.push(entry);
  };
  const lastReach = [...timeline]
    .filter((e) => e.kind === 'unreachable' || e.kind === 'reachable')
    .sort((a, b) => a.at - b.at)
    .at(-1);
  if (!report.reachable) {
    if (lastReach?.kind !== 'unreachable')
      add({
        at: report.at,
        level: 'warn',
        kind: 'unreachable',
        message: `status call failed: ${report.error ?? 'no answer'}`,
      });
    return out;
  }
  if (lastReach?.kind === 'unreachable')
    add({ at: report.at, level: 'info', kind: 'reachable', message: 'answers again' });
  const status = report.status;
  if (!status) return out;

  const applied = status.applied;
  if (applied && !/^[0-9a-f]{40}-/.test(applied.generation)) {
    const override = describeGeneration(applied.generation).override;
    add(
      override
        ? {
            at: applied.at,
            level: 'warn',
            kind: 'override',
            key: `applied:${applied.generation}:${applied.at}`,
            generation: applied.generation,
            message: `manual override by ${override.by}: ${override.reason} (generation ${applied.generation})`,
          }
        : {
            at: applied.at,
            level: 'warn',
            kind: 'applied-outside',
            key: `applied:${applied.generation}:${applied.at}`,
            generation: applied.generation,
            message: `generation ${applied.generation} applied outside the controller (uplink apply)`,
          },
    );
  }
  const revert = status.lastRevert;
  if (revert)
    add({
      at: revert.at,
      level: 'warn',
      kind: 'reverted',
      key: `revert:${revert.generation}:${revert.at}`,
      generation: revert.generation,
      message: `the agent reverted generation ${revert.generation} (${revert.reason})${revert.result === 'failed' ? `: revert failed${revert.message ? `: ${revert.message}` : ''}` : ''}`,
    });

  for (const h of status.health) {
    const newest = h.transitions.at(-1);
    for (const t of h.transitions) {
      const measured = t === newest ? { loss: h.loss, latencyMs: h.latencyMs } : {};
      add({
        at: t.at,
        level: t.to === 'down' ? 'warn' : 'info',
        kind: `provider-${t.to}`,
        key: `health:${h.name}:${t.at}:${t.to}`,
        provider: h.name,
        ...measured,
        message: `${h.name} ${t.from} → ${t.to}: ${t.reason}${t === newest ? ` (loss ${Math.round(h.loss * 100)}%, latency ${h.latencyMs === null ? '—' : `${h.latencyMs.toFixed(1)} ms`})` : ''}`,
      });
    }
  }

  const drift = status.drift;
  if (drift) {
    const found = new Map<string, TimelineEntry>();
    const cleared = new Set<string>();
    for (const e of timeline) {
      if (e.key?.startsWith('drift-found:')) found.set(e.key.slice('drift-found:'.length), e);
      else if (e.key?.startsWith('drift-cleared:')) cleared.add(e.key.slice('drift-cleared:'.length));
    }
    const now = new Set<string>();
    for (const item of drift.items) {
      const id = `${item.kind}:${item.object}:${item.firstSeen}`;
      now.add(id);
      add({
        at: item.firstSeen,
        level: 'warn',
        kind: 'drift-found',
        key: `drift-found:${id}`,
        message: `drift: ${item.kind} ${item.object}${item.expected !== null ? `; expected ${item.expected}` : ''}${item.found !== null ? `; found ${item.found}` : ''}`,
      });
    }
    for (const [id, entry] of found) {
      if (now.has(id) || cleared.has(id) || drift.checkedAt === null) continue;
      add({
        at: Math.max(drift.checkedAt, entry.at),
        level: 'info',
        kind: 'drift-cleared',
        key: `drift-cleared:${id}`,
        message: `drift cleared: ${entry.message.replace(/^drift: /, '')}${drift.policy === 'heal' ? ' (healed by the agent)' : ''}`,
      });
    }
  }
  return out;
}

/** The newest `limit` entries, oldest first (stable for equal times). */
export function boundTimeline(entries: readonly TimelineEntry[], limit = TIMELINE_LIMIT): TimelineEntry[] {
  const sorted = entries.map((e, i) => [e, i] as const).sort((a, b) => a[0].at - b[0].at || a[1] - b[1]);
  return sorted.slice(Math.max(0, sorted.length - limit)).map(([e]) => e);
}
