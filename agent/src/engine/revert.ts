/**
 * Put back what Uplink owned before the last apply that changed something.
 *
 * The kernel comes first: the restore converges (restore-snapshot.ts) and needs nothing of
 * the state directory but reading the snapshot. Only a complete restore is recorded —
 * applied.json back to the snapshot's `previous` (skipped when it already is), then the
 * snapshot removed, in that order, so a crash in between leaves a snapshot to revert to
 * again rather than an applied.json that names the reverted state. A record that cannot be
 * written (a full disk) does not undo the restore: `recordError` says so and the caller
 * tries again later (D101).
 */
import { stableJson } from '../core/canonicalize-state.js';
import type { ChangeSet } from '../core/diff.js';
import type { SkippedObject } from '../core/vanished-interfaces.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { StateError } from '../errors.js';
import type { Step } from '../model/steps.js';
import type { EngineOptions } from './reconcile.js';
import { restoreSnapshot, type UnrestoredObject } from './restore-snapshot.js';
import { StateStore } from './state-store.js';

export interface RevertReport {
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
  /** Snapshot time of the state now in the kernel. */
  readonly restoredTo: string;
  /** Objects of vanished interfaces, not restored (gone with their interface). */
  readonly skipped: readonly SkippedObject[];
  /** Objects that could not be restored; the snapshot stays for another try. */
  readonly failed: readonly UnrestoredObject[];
  /** The kernel holds the snapshot (minus skipped objects). */
  readonly complete: boolean;
  /** A complete restore whose record could not be written (the snapshot stays); undefined when recorded. */
  readonly recordError?: Error;
}

export async function revert(dataplane: Dataplane, options: EngineOptions): Promise<RevertReport> {
  const store = new StateStore(options.stateDir, options);
  const now = options.now ?? (() => new Date());
  return store.withLock(
    async () => {
      const snapshot = await store.readSnapshot();
      if (snapshot === undefined) {
        throw new StateError(`nothing to revert: no snapshot in ${store.dir}`);
      }
      const result = await restoreSnapshot(dataplane, snapshot);
      const base = {
        changes: result.changes,
        steps: result.steps,
        restoredTo: snapshot.createdAt,
        skipped: result.skipped,
        failed: result.failed,
      };
      const complete = result.failed.length === 0;
      // The journal is for people: a full disk must not turn a restored kernel into a failure.
      await store
        .appendJournal({
          at: now().toISOString(),
          op: 'revert',
          to: snapshot.createdAt,
          changes: result.changes.length,
          result: complete ? 'ok' : 'incomplete',
          ...(result.skipped.length > 0 ? { skipped: result.skipped.map((s) => s.object) } : {}),
          ...(complete ? {} : { failed: result.failed.map((f) => `${f.object}: ${f.error}`) }),
        })
        .catch(() => {});
      if (!complete) return { ...base, complete };
      try {
        const applied = await store.readApplied();
        if (snapshot.previous === null) {
          if (applied !== undefined) await store.removeApplied();
        } else if (applied === undefined || stableJson(applied) !== stableJson(snapshot.previous)) {
          await store.writeApplied(snapshot.previous);
        }
        await store.removeSnapshot();
      } catch (error) {
        return { ...base, complete, recordError: error instanceof Error ? error : new Error(String(error)) };
      }
      return { ...base, complete };
    },
    { evenIfUnwritable: true },
  );
}
