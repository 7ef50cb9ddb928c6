/**
 * Putting the kernel back to a snapshot: the ordinary diff → order → apply, with the
 * snapshot as the effective state. Used by `revert` and by the automatic rollback after a
 * failed apply or verify.
 */
import { type ChangeSet, diff } from '../core/diff.js';
import { orderChanges } from '../core/order-changes.js';
import { owned } from '../core/owned.js';
import { type Dataplane, DataplaneError } from '../dataplane/dataplane.js';
import { KernelError, type RevertOutcome, VerifyFailedError } from '../errors.js';
import type { Step } from '../model/steps.js';
import type { SnapshotRecord } from './state-store.js';

export interface RestoreResult {
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
}

/** Throws KernelError or VerifyFailedError (with revert 'revert-failed') when it cannot. */
export async function restoreSnapshot(
  dataplane: Dataplane,
  snapshot: SnapshotRecord,
): Promise<RestoreResult> {
  try {
    const current = owned(await dataplane.readKernel({ sysctls: snapshot.scope.sysctls }), snapshot.scope);
    const changes = diff(snapshot.state, current);
    const steps = orderChanges(changes, { markMask: snapshot.markMask });
    if (steps.length > 0) await dataplane.apply(steps);
    const reread = owned(await dataplane.readKernel({ sysctls: snapshot.scope.sysctls }), snapshot.scope);
    const differences = diff(snapshot.state, reread);
    if (differences.length > 0) throw new VerifyFailedError(differences, 'revert-failed');
    return { changes, steps };
  } catch (error) {
    if (error instanceof DataplaneError) {
      throw new KernelError(`restoring the snapshot failed: ${error.message}`, error.detail, 'revert-failed');
    }
    throw error;
  }
}

/** Rollback after a failed apply: never throws, says how it went. */
export async function rollBack(
  dataplane: Dataplane,
  snapshot: SnapshotRecord,
): Promise<{ outcome: RevertOutcome; detail?: string }> {
  try {
    await restoreSnapshot(dataplane, snapshot);
    return { outcome: 'reverted' };
  } catch (error) {
    return { outcome: 'revert-failed', detail: error instanceof Error ? error.message : String(error) };
  }
}
