/**
 * Putting the kernel back to a snapshot: the ordinary diff → order → apply, with the
 * snapshot as the effective state. Used by `revert`, by the daemon's revert timer and by
 * the automatic rollback after a failed apply or verify.
 *
 * A restore converges rather than stopping at the first refusal (D101):
 * 1. objects of interfaces that no longer exist are left out — the kernel removed them with
 *    the interface, and cannot take them back until it returns — and reported as `skipped`;
 * 2. everything else is applied in one go (the fast path: one `ip -batch`, one `nft -f`);
 * 3. if that fails or the kernel reads back differently, what still differs is applied one
 *    change at a time, so one refused step does not hold the others back, for a few passes
 *    while each pass gets closer;
 * 4. what still differs is reported as `failed`, each object with the kernel's last word.
 * Only reading the kernel can make it throw (without a kernel to read there is nothing to compare).
 */
import { type Change, type ChangeSet, diff } from '../core/diff.js';
import { changeSubject, orderChanges, orderedChanges, stepOf } from '../core/order-changes.js';
import { owned } from '../core/owned.js';
import { type SkippedObject, withoutVanishedInterfaces } from '../core/vanished-interfaces.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { RevertOutcome } from '../errors.js';
import type { Step } from '../model/steps.js';
import { readCurrent } from './read-current.js';
import type { SnapshotRecord } from './state-store.js';

export interface UnrestoredObject {
  /** e.g. `rule priority 2000 from 198.51.100.2/32 lookup 101 proto 252`, `sysctl net.ipv4.conf.isp1.rp_filter`. */
  readonly object: string;
  /** The kernel's last word about it, or why it still differs. */
  readonly error: string;
}

export interface RestoreResult {
  /** What differed from the snapshot when the restore began (minus skipped objects). */
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
  /** Snapshot objects not restored because their interface is gone (they went with it). */
  readonly skipped: readonly SkippedObject[];
  /** Objects that still differ from the snapshot after every pass. Empty: the restore is complete. */
  readonly failed: readonly UnrestoredObject[];
}

export interface RestoreOptions {
  /** One-change-at-a-time passes after the fast path (default 3). */
  readonly passes?: number;
}

export async function restoreSnapshot(
  dataplane: Dataplane,
  snapshot: SnapshotRecord,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const read = async () => {
    const { facts, kernel } = await readCurrent(dataplane, snapshot.scope);
    const target = withoutVanishedInterfaces(snapshot.state, facts);
    const current = owned(kernel, snapshot.scope);
    return { skipped: target.skipped, remaining: diff(target.state, current) };
  };
  const markMask = { markMask: snapshot.markMask };
  const first = await read();
  const changes = first.remaining;
  const steps = orderChanges(changes, markMask);
  if (steps.length === 0) return { changes, steps, skipped: first.skipped, failed: [] };

  const errors = new Map<string, string>();
  let lastError: string | undefined;
  try {
    await dataplane.apply(steps);
  } catch (error) {
    lastError = message(error);
  }
  let state = await read();
  for (let pass = 0; pass < (options.passes ?? 3) && state.remaining.length > 0; pass++) {
    const before = fingerprint(state.remaining);
    for (const change of orderedChanges(state.remaining)) {
      try {
        await dataplane.apply([stepOf(change, markMask)]);
        errors.delete(identity(change));
      } catch (error) {
        errors.set(identity(change), message(error));
      }
    }
    state = await read();
    if (fingerprint(state.remaining) === before) break;
  }
  return {
    changes,
    steps,
    skipped: state.skipped,
    failed: state.remaining.map((change) => ({
      object: changeSubject(change),
      error: errors.get(identity(change)) ?? lastError ?? 'still differs after the restore',
    })),
  };
}

/** Rollback after a failed apply: never throws, says how it went. */
export async function rollBack(
  dataplane: Dataplane,
  snapshot: SnapshotRecord,
): Promise<{ outcome: RevertOutcome; detail?: string; result?: RestoreResult }> {
  try {
    const result = await restoreSnapshot(dataplane, snapshot);
    if (result.failed.length === 0) return { outcome: 'reverted', result };
    return { outcome: 'revert-failed', detail: describeUnrestored(result.failed), result };
  } catch (error) {
    return { outcome: 'revert-failed', detail: message(error) };
  }
}

/** `N object(s) not restored: OBJECT (ERROR); …`, at most 10 named. */
export function describeUnrestored(failed: readonly UnrestoredObject[]): string {
  const named = failed.slice(0, 10).map((f) => `${f.object} (${f.error})`);
  return `${failed.length} object(s) not restored: ${named.join('; ')}${failed.length > 10 ? '; …' : ''}`;
}

/** `N object(s) skipped, their interface is gone: …`. */
export function describeSkipped(skipped: readonly SkippedObject[]): string {
  const interfaces = [...new Set(skipped.map((s) => s.interface))].join(', ');
  return `${skipped.length} object(s) of vanished interface ${interfaces} not restored (gone with it)`;
}

function identity(change: Change): string {
  return `${change.kind} ${change.action} ${change.key}`;
}

function fingerprint(changes: ChangeSet): string {
  return changes.map(identity).sort().join('\n');
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}
