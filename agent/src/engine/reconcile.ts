/**
 * Apply a desired state: read → plan → (refuse on problems/conflicts) → snapshot → apply →
 * re-read → verify. Any failure after the first kernel change rolls back to the snapshot.
 */
import { assemblePlan, type Plan } from '../core/assemble-plan.js';
import { stableJson } from '../core/canonicalize-state.js';
import type { ChangeSet } from '../core/diff.js';
import { diff } from '../core/diff.js';
import { type OwnershipScope, owned } from '../core/owned.js';
import type { UnavailableProvider } from '../core/resolve.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { ConflictError, InvalidInputError, KernelError, VerifyFailedError } from '../errors.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Health } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { asKernelError, type CurrentState, readCurrent, scopeFor } from './read-current.js';
import { rollBack } from './restore-snapshot.js';
import { type SnapshotRecord, StateStore } from './state-store.js';

export interface EngineOptions {
  readonly stateDir: string;
  /** Injected clock for timestamps in the state directory. */
  readonly now?: () => Date;
}

export interface ReconcileReport {
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
  readonly unavailable: readonly UnavailableProvider[];
  /** The kernel read back equal to the effective state. */
  readonly verified: boolean;
}

/** Points where a caller (the daemon's commit-confirmed apply) takes part in an apply. */
export interface ReconcileHooks {
  /**
   * After the plan passed the engine's own checks, before anything is written; throw to
   * refuse (the management-path guard). Not called when nothing would change.
   */
  readonly check?: (plan: Plan, current: CurrentState, scope: OwnershipScope) => void | Promise<void>;
  /** After the snapshot is durable, before the first kernel change (to persist a pending apply). */
  readonly beforeApply?: (snapshot: SnapshotRecord, plan: Plan) => Promise<void>;
}

export async function reconcile(
  dataplane: Dataplane,
  desired: DesiredState,
  health: Health,
  options: EngineOptions,
  hooks: ReconcileHooks = {},
): Promise<ReconcileReport> {
  const store = new StateStore(options.stateDir);
  const now = options.now ?? (() => new Date());
  return store.withLock(async () => {
    const applied = await store.readApplied();
    const scope = scopeFor(desired, applied?.desired);
    const current = await readCurrent(dataplane, scope);
    const { facts, kernel } = current;
    const plan = assemblePlan({ desired, facts, health, current: kernel, scope });
    refuseUnsafe(plan);
    if (plan.steps.length > 0) await hooks.check?.(plan, current, scope);
    const record = { version: 1 as const, appliedAt: now().toISOString(), desired };

    if (plan.steps.length === 0) {
      // Nothing moved in the kernel. Rewriting an unchanged desired state would only cost two
      // fsyncs and move appliedAt, which says when this state was applied, not last checked.
      if (applied === undefined || !sameJson(applied.desired, desired)) {
        await store.writeApplied(record);
      }
      return { changes: [], steps: [], unavailable: plan.unavailable, verified: true };
    }

    const snapshot: SnapshotRecord = {
      version: 1,
      createdAt: now().toISOString(),
      state: plan.owned,
      scope: {
        protocols: [...scope.protocols],
        tables: [...scope.tables],
        adoptTables: [...scope.adoptTables],
        sysctls: [...scope.sysctls],
      },
      markMask: applied?.desired.settings.markMask ?? desired.settings.markMask,
      previous: applied ?? null,
    };
    await store.writeSnapshot(snapshot);
    await hooks.beforeApply?.(snapshot, plan);
    const journal = { site: desired.site, hash: desired.hash, changes: plan.changes.length };

    try {
      await dataplane.apply(plan.steps);
    } catch (error) {
      const revert = await rollBack(dataplane, snapshot);
      await store.appendJournal({
        at: now().toISOString(),
        op: 'apply',
        ...journal,
        result: 'kernel-error',
        revert,
      });
      const failure = asKernelError(error, 'the kernel refused a step', revert.outcome);
      if (failure instanceof KernelError) {
        throw new KernelError(failure.message, failure.detail, revert.outcome, revert.detail);
      }
      throw failure;
    }

    let differences: ChangeSet;
    try {
      const reread = owned(await dataplane.readKernel({ sysctls: scope.sysctls }), scope);
      differences = diff(plan.effective, reread);
    } catch (error) {
      const revert = await rollBack(dataplane, snapshot);
      throw asKernelError(error, 're-reading the kernel after apply failed', revert.outcome);
    }
    if (differences.length > 0) {
      const revert = await rollBack(dataplane, snapshot);
      await store.appendJournal({
        at: now().toISOString(),
        op: 'apply',
        ...journal,
        result: 'verify-failed',
        revert,
      });
      throw new VerifyFailedError(differences, revert.outcome, revert.detail);
    }

    // Independent files, each durable on its own: write them side by side.
    await Promise.all([
      store.writeApplied(record),
      store.appendJournal({ at: now().toISOString(), op: 'apply', ...journal, result: 'ok' }),
    ]);
    return { changes: plan.changes, steps: plan.steps, unavailable: plan.unavailable, verified: true };
  });
}

/** Plain JSON first: both sides usually come out of the same schema, in the same key order. */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b) || stableJson(a) === stableJson(b);
}

export function refuseUnsafe(plan: Plan): void {
  if (plan.problems.length > 0) {
    throw new InvalidInputError('the desired state is inconsistent; nothing was changed', plan.problems);
  }
  if (plan.conflicts.length > 0) throw new ConflictError(plan.conflicts);
}
