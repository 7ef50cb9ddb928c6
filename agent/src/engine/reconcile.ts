/**
 * Apply a desired state: read → plan → (refuse on problems/conflicts) → snapshot → apply →
 * re-read → verify → record. Any failure after the first kernel change — a refused step, a
 * verify difference, a record that cannot be written — rolls back to the snapshot, and the
 * error says how that went (`revert`). A failure caused by an interface that vanished while
 * the apply ran is an InterfaceMissingError, not a kernel refusal.
 */
import { assemblePlan, type Plan } from '../core/assemble-plan.js';
import { stableJson } from '../core/canonicalize-state.js';
import type { ChangeSet } from '../core/diff.js';
import { diff } from '../core/diff.js';
import { type OwnershipScope, owned } from '../core/owned.js';
import type { UnavailableProvider } from '../core/resolve.js';
import { stateInterfaces } from '../core/vanished-interfaces.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import {
  ConflictError,
  InterfaceMissingError,
  InvalidInputError,
  KernelError,
  recordRollback,
  VerifyFailedError,
} from '../errors.js';
import type { Failpoints } from '../faults/failpoints.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, Health } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { asKernelError, type CurrentState, readCurrent, scopeFor } from './read-current.js';
import { rollBack } from './restore-snapshot.js';
import { type SnapshotRecord, StateStore, type WriteOutcome } from './state-store.js';

export interface EngineOptions {
  readonly stateDir: string;
  /** Injected clock for timestamps in the state directory. */
  readonly now?: () => Date;
  /** Fault injection at every state write (D102); none by default. */
  readonly failpoints?: Failpoints | undefined;
  /** Told after every state write whether it worked (the daemon's fault report). */
  readonly onWrite?: ((outcome: WriteOutcome) => void) | undefined;
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
  const store = new StateStore(options.stateDir, options);
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

    // From here the kernel may change: whatever fails, the snapshot is put back.
    try {
      await dataplane.apply(plan.steps);
      let differences: ChangeSet;
      try {
        const reread = owned(await dataplane.readKernel({ sysctls: scope.sysctls }), scope);
        differences = diff(plan.effective, reread);
      } catch (error) {
        throw asKernelError(error, 're-reading the kernel after apply failed', 'not-needed');
      }
      if (differences.length > 0) throw new VerifyFailedError(differences, 'not-needed');
      await store.writeApplied(record);
    } catch (error) {
      const rollback = await rollBack(dataplane, snapshot);
      const failure = await explainFailure(dataplane, error, plan, desired, facts);
      recordRollback(failure, rollback.outcome, rollback.detail);
      await store
        .appendJournal({
          at: now().toISOString(),
          op: 'apply',
          ...journal,
          result: resultWord(failure),
          revert: { outcome: rollback.outcome, ...(rollback.detail ? { detail: rollback.detail } : {}) },
        })
        .catch(() => {});
      throw failure;
    }
    // The journal is for people; the record above is what counts.
    await store
      .appendJournal({ at: now().toISOString(), op: 'apply', ...journal, result: 'ok' })
      .catch(() => {});
    return { changes: plan.changes, steps: plan.steps, unavailable: plan.unavailable, verified: true };
  });
}

/**
 * The error an apply failure is reported as: a kernel refusal or a verify difference is an
 * InterfaceMissingError when interfaces the apply used existed when it was planned and are
 * gone now; a dataplane error is a KernelError; everything else stays what it is.
 */
async function explainFailure(
  dataplane: Dataplane,
  error: unknown,
  plan: Plan,
  desired: DesiredState,
  before: Facts,
): Promise<unknown> {
  const failure = asKernelError(error, 'the kernel refused a step', 'not-needed');
  if (!(failure instanceof KernelError) && !(failure instanceof VerifyFailedError)) return failure;
  const used = new Set([...stateInterfaces(plan.effective), ...desired.providers.map((p) => p.interface)]);
  const after = await dataplane.readFacts().catch(() => undefined);
  if (after === undefined) return failure;
  const vanished = [...used]
    .filter((name) => before.interfaces[name]?.exists === true && after.interfaces[name]?.exists !== true)
    .sort();
  if (vanished.length === 0) return failure;
  return new InterfaceMissingError(vanished, failure.message);
}

function resultWord(failure: unknown): string {
  if (failure instanceof VerifyFailedError) return 'verify-failed';
  if (failure instanceof KernelError) return 'kernel-error';
  return (failure as { kind?: string }).kind ?? 'failed';
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
