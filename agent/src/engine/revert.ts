/** Put back what Uplink owned before the last apply that changed something. */
import type { ChangeSet } from '../core/diff.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { StateError } from '../errors.js';
import type { Step } from '../model/steps.js';
import type { EngineOptions } from './reconcile.js';
import { restoreSnapshot } from './restore-snapshot.js';
import { StateStore } from './state-store.js';

export interface RevertReport {
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
  /** Snapshot time of the state now in the kernel. */
  readonly restoredTo: string;
}

export async function revert(dataplane: Dataplane, options: EngineOptions): Promise<RevertReport> {
  const store = new StateStore(options.stateDir);
  const now = options.now ?? (() => new Date());
  return store.withLock(async () => {
    const snapshot = await store.readSnapshot();
    if (snapshot === undefined) {
      throw new StateError(`nothing to revert: no snapshot in ${store.dir}`);
    }
    const result = await restoreSnapshot(dataplane, snapshot);
    if (snapshot.previous === null) await store.removeApplied();
    else await store.writeApplied(snapshot.previous);
    await store.removeSnapshot();
    await store.appendJournal({
      at: now().toISOString(),
      op: 'revert',
      to: snapshot.createdAt,
      changes: result.changes.length,
      result: 'ok',
    });
    return { changes: result.changes, steps: result.steps, restoredTo: snapshot.createdAt };
  });
}
