/**
 * Commit-confirmed applies (DESIGN.md "Safety: commit-confirmed"): snapshot → apply →
 * verify → a persisted deadline; `confirm(generation)` before the deadline makes the
 * generation applied, no confirm reverts to the snapshot through the engine.
 *
 * One writer: apply, confirm, revert and the revert timer run through one SerialQueue, so
 * they never interleave; reads (status, plan) do not queue. The journal (commit.json) is
 * written before the reply that depends on it: a pending apply is on disk before the first
 * kernel change (phase `applying`) and again, with its final deadline, before `apply`
 * answers (phase `armed`). A restart finds it there and reverts at once (interrupted apply,
 * or deadline passed) or re-arms the rest.
 */
import { assemblePlan, type Plan } from '../core/assemble-plan.js';
import type { ChangeSet } from '../core/diff.js';
import type { OwnershipScope } from '../core/owned.js';
import { resolve } from '../core/resolve.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { CurrentState } from '../engine/read-current.js';
import { readCurrent, scopeFor } from '../engine/read-current.js';
import { reconcile } from '../engine/reconcile.js';
import { revert } from '../engine/revert.js';
import { show } from '../engine/show.js';
import { StateStore } from '../engine/state-store.js';
import { isAgentError } from '../errors.js';
import type { DesiredState } from '../model/desired-state.js';
import {
  type ApplyResult,
  type ChangeSummary,
  type ConfirmResult,
  type DriftReport,
  type GenerationInfo,
  type ManagementPathCheck,
  type PendingInfo,
  type PlanResult,
  PROTOCOL_VERSION,
  type RevertInfo,
  type RevertReason,
  type RevertResult,
  type StatusResult,
} from '../model/protocol.js';
import { AGENT_NAME } from './agent-version.js';
import { checkManagementPath, type SshConnection } from './check-management-path.js';
import {
  type CommitRecord,
  type PendingRecord,
  readCommitRecord,
  writeCommitRecord,
} from './commit-journal.js';
import { type HealthSource, staticHealth } from './health-source.js';
import { SerialQueue } from './serial-queue.js';
import { WireError } from './wire-error.js';

export interface CommitOptions {
  readonly stateDir: string;
  /** The kernel; `markMask` lets the linux dataplane recognise Uplink's track rules. */
  readonly dataplane: (markMask: number | undefined) => Dataplane;
  /** Milliseconds since the epoch (injected for tests). */
  readonly now?: () => number;
  readonly log: (line: string) => void;
  /** A failed revert is retried after this long (default 10 s). */
  readonly revertRetryMs?: number;
  /** Provider health (probes); default: no probing, every provider up. */
  readonly health?: HealthSource;
}

/**
 * What just happened to the state in force: `applied` (nothing changed, applied at once),
 * `pending` (in the kernel, awaiting confirm), `confirmed`, `reverted`, `rolled-back` (a
 * failed apply undone by the engine), `open` (the daemon started, recovery done).
 */
export type StateChange = 'open' | 'applied' | 'pending' | 'confirmed' | 'reverted' | 'rolled-back';

export interface ApplyInput {
  readonly desired: DesiredState;
  readonly generation: string;
  readonly confirmWithinMs: number;
  readonly allowManagementChange?: boolean | undefined;
}

export class CommitConfirmed {
  readonly #store: StateStore;
  readonly #options: CommitOptions;
  readonly #now: () => number;
  readonly #queue = new SerialQueue();
  readonly #health: HealthSource;
  #record: CommitRecord;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #listeners = new Set<(event: StateChange) => void>();
  #drift: () => DriftReport | null = () => null;

  private constructor(options: CommitOptions, record: CommitRecord) {
    this.#options = options;
    this.#store = new StateStore(options.stateDir);
    this.#now = options.now ?? Date.now;
    this.#health = options.health ?? staticHealth();
    this.#record = record;
  }

  /** Reads the journal and recovers a pending apply: revert now, or re-arm the rest. */
  static async open(options: CommitOptions): Promise<CommitConfirmed> {
    const commit = new CommitConfirmed(options, await readCommitRecord(new StateStore(options.stateDir)));
    await commit.#queue.run(async () => {
      await commit.#recover();
      await commit.#changed('open');
    });
    return commit;
  }

  /**
   * Called (inside the one-writer queue) after every change of what is in force: apply,
   * confirm, revert, recovery. The drift watch re-follows and re-checks from here.
   */
  onStateChange(listener: (event: StateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs `task` as the one writer, after queued applies, confirms and reverts. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(task);
  }

  get health(): HealthSource {
    return this.#health;
  }

  /** Where `status` takes its drift report from (the daemon's drift watch). */
  reportDriftFrom(source: () => DriftReport | null): void {
    this.#drift = source;
  }

  /** The journal as it is now (for status and tests). */
  get record(): CommitRecord {
    return this.#record;
  }

  apply(input: ApplyInput, connection: SshConnection | undefined): Promise<ApplyResult> {
    return this.#queue.run(() => this.#apply(input, connection));
  }

  confirm(generation: string): Promise<ConfirmResult> {
    return this.#queue.run(() => this.#confirm(generation));
  }

  revert(): Promise<RevertResult> {
    return this.#queue.run(async () => {
      if (this.#record.pending === null) {
        throw new WireError(
          'not-pending',
          'nothing is pending confirmation; to go back to an earlier generation, apply it',
        );
      }
      const { info, changes } = await this.#revertPending('requested');
      if (info.result === 'failed')
        throw new WireError('kernel', `the revert failed: ${info.message ?? ''}`, true);
      return { reverted: info, changes: summariseChanges(changes), applied: this.#record.applied };
    });
  }

  /** What an apply would do now, with the management-path check; changes nothing. */
  async plan(desired: DesiredState, connection: SshConnection | undefined): Promise<PlanResult> {
    const applied = await this.#store.readApplied();
    const scope = scopeFor(desired, applied?.desired);
    const current = await readCurrent(this.#dataplane(desired, applied?.desired), scope);
    const plan = assemblePlan({
      desired,
      facts: current.facts,
      health: this.#health.current(),
      current: current.kernel,
      scope,
    });
    return {
      changes: summariseChanges(plan.changes),
      steps: plan.steps.length,
      unavailable: [...plan.unavailable],
      problems: [...plan.problems],
      conflicts: plan.conflicts.map((c) => c.message),
      managementPath:
        connection === undefined || plan.steps.length === 0
          ? null
          : guard(connection, desired, plan, current, scope),
    };
  }

  async status(): Promise<StatusResult> {
    const applied = await this.#store.readApplied();
    const shown = await show(this.#options.dataplane(applied?.desired.settings.markMask), {
      stateDir: this.#options.stateDir,
    });
    const unavailable = new Map(
      applied === undefined
        ? []
        : resolve(applied.desired, shown.facts, this.#health.current()).unavailable.map((u) => [
            u.provider,
            u.reason,
          ]),
    );
    const record = this.#record;
    return {
      agent: AGENT_NAME,
      protocol: PROTOCOL_VERSION,
      site: applied?.desired.site ?? null,
      applied: record.applied,
      pending: record.pending === null ? null : toPendingInfo(record.pending),
      lastRevert: record.lastRevert,
      owned: {
        rules: shown.owned.rules.length,
        routes: shown.owned.routes.length,
        nftRules: shown.owned.nft === null ? null : shown.owned.nft.length,
        sysctls: Object.keys(shown.owned.sysctls).length,
      },
      facts: {
        interfaces: Object.values(shown.facts.interfaces).filter((f) => f.exists).length,
        providers: (applied?.desired.providers ?? []).map((p) => {
          const reason = unavailable.get(p.name);
          return {
            name: p.name,
            interface: p.interface,
            available: reason === undefined,
            ...(reason === undefined ? {} : { reason }),
          };
        }),
      },
      health: this.#health.report(),
      drift: this.#drift(),
      now: this.#now(),
    };
  }

  /** The site of the applied desired state, if any (for hello). */
  async site(): Promise<string | null> {
    return (await this.#store.readApplied())?.desired.site ?? null;
  }

  /** Stops the timer and waits for queued work; a pending apply stays on disk for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    await this.#queue.idle();
    this.#clearTimer();
  }

  async #apply(input: ApplyInput, connection: SshConnection | undefined): Promise<ApplyResult> {
    const pending = this.#record.pending;
    if (pending !== null) {
      throw new WireError(
        'busy',
        `generation ${pending.generation} is pending confirmation until ${iso(pending.deadline)}; confirm or revert it before applying ${input.generation}`,
      );
    }
    const { desired, generation } = input;
    const applied = await this.#store.readApplied();
    const startedAt = this.#now();
    let managementPath: ManagementPathCheck | null = null;
    let pendingWritten = false;
    try {
      const report = await reconcile(
        this.#dataplane(desired, applied?.desired),
        desired,
        this.#health.current(),
        { stateDir: this.#options.stateDir, now: () => new Date(this.#now()) },
        {
          check: (plan, current, scope) => {
            if (connection === undefined) return;
            managementPath = guard(connection, desired, plan, current, scope);
            if (!managementPath.unchanged && input.allowManagementChange !== true) {
              throw new WireError('management-path', managementPath.message ?? 'the management path changes');
            }
          },
          beforeApply: async (snapshot) => {
            await this.#write({
              ...this.#record,
              pending: {
                generation,
                hash: desired.hash,
                site: desired.site,
                at: startedAt,
                deadline: this.#now() + input.confirmWithinMs,
                phase: 'applying',
                snapshotAt: snapshot.createdAt,
                confirmWithinMs: input.confirmWithinMs,
              },
            });
            pendingWritten = true;
          },
        },
      );
      const base = {
        generation,
        changes: summariseChanges(report.changes),
        steps: report.steps.length,
        unavailable: [...report.unavailable],
        managementPath,
      };
      if (!pendingWritten) {
        // Nothing changed in the kernel: nothing could cut the management path, nothing to confirm.
        const info: GenerationInfo = { generation, hash: desired.hash, site: desired.site, at: this.#now() };
        await this.#write({ ...this.#record, applied: info });
        await this.#journal({ op: 'commit-apply', generation, changes: 0, result: 'applied-unchanged' });
        await this.#changed('applied');
        return { ...base, pending: null, applied: info };
      }
      const armed: PendingRecord = {
        ...this.#record.pending!,
        phase: 'armed',
        deadline: this.#now() + input.confirmWithinMs,
      };
      await this.#write({ ...this.#record, pending: armed });
      await this.#journal({
        op: 'commit-apply',
        generation,
        changes: report.changes.length,
        deadline: iso(armed.deadline),
        result: 'pending',
      });
      this.#arm();
      this.#options.log(
        `applied generation ${generation} (${report.changes.length} change(s)); reverting at ${iso(armed.deadline)} unless confirmed`,
      );
      await this.#changed('pending');
      return { ...base, pending: toPendingInfo(armed), applied: null };
    } catch (error) {
      if (pendingWritten) {
        // The engine rolled back already; if that failed too, the revert timer retries now.
        const rolledBack = !isAgentError(error) || !('revert' in error) || error.revert !== 'revert-failed';
        if (rolledBack) await this.#write({ ...this.#record, pending: null });
        else {
          await this.#write({
            ...this.#record,
            pending: { ...this.#record.pending!, deadline: this.#now() },
          });
          this.#arm();
        }
        await this.#changed('rolled-back');
      }
      throw error;
    }
  }

  async #confirm(generation: string): Promise<ConfirmResult> {
    const pending = this.#record.pending;
    if (pending === null) {
      const applied = this.#record.applied;
      if (applied?.generation === generation) return { generation, applied, alreadyConfirmed: true };
      const reverted = this.#record.lastRevert;
      throw new WireError(
        'not-pending',
        reverted?.generation === generation
          ? `generation ${generation} is not pending: it was reverted at ${iso(reverted.at)} (${reverted.reason})`
          : `generation ${generation} is not pending: nothing is`,
      );
    }
    if (pending.generation !== generation) {
      throw new WireError(
        'not-pending',
        `generation ${generation} is not pending; ${pending.generation} is, until ${iso(pending.deadline)}`,
      );
    }
    if (this.#now() >= pending.deadline) {
      await this.#revertPending('confirm-timeout');
      throw new WireError(
        'not-pending',
        `generation ${generation} is not pending: its deadline ${iso(pending.deadline)} passed and it was reverted`,
      );
    }
    const applied: GenerationInfo = {
      generation,
      hash: pending.hash,
      site: pending.site,
      at: pending.at,
    };
    await this.#write({ ...this.#record, applied, pending: null });
    this.#clearTimer();
    await this.#journal({ op: 'commit-confirm', generation, result: 'applied' });
    this.#options.log(`generation ${generation} confirmed`);
    await this.#changed('confirmed');
    return { generation, applied, alreadyConfirmed: false };
  }

  async #recover(): Promise<void> {
    const pending = this.#record.pending;
    if (pending === null) return;
    if (pending.phase === 'applying') {
      this.#options.log(`generation ${pending.generation}: the agent stopped during its apply; reverting`);
      await this.#revertPending('interrupted-apply');
    } else if (this.#now() >= pending.deadline) {
      this.#options.log(
        `generation ${pending.generation}: its confirm deadline ${iso(pending.deadline)} passed while the agent was down; reverting`,
      );
      await this.#revertPending('deadline-passed-at-start');
    } else {
      this.#options.log(
        `generation ${pending.generation} is pending confirmation; reverting at ${iso(pending.deadline)} unless confirmed`,
      );
      this.#arm();
    }
  }

  /** Reverts the pending apply to its snapshot. Never throws for a failed revert: records it and retries. */
  async #revertPending(reason: RevertReason): Promise<{ info: RevertInfo; changes: ChangeSet }> {
    const pending = this.#record.pending!;
    this.#clearTimer();
    const base = { generation: pending.generation, hash: pending.hash, reason };
    const snapshot = await this.#store.readSnapshot();
    let info: RevertInfo;
    let changes: ChangeSet = [];
    if (snapshot === undefined) {
      // The engine removes the snapshot when a revert completes: one ran before a restart.
      info = { ...base, at: this.#now(), result: 'ok', message: 'the revert had completed before a restart' };
    } else if (snapshot.createdAt !== pending.snapshotAt) {
      info = {
        ...base,
        at: this.#now(),
        result: 'failed',
        message: `the snapshot was replaced (${snapshot.createdAt}, expected ${pending.snapshotAt}) by an apply outside the daemon; not reverting`,
      };
    } else {
      try {
        const report = await revert(this.#options.dataplane(snapshot.markMask), {
          stateDir: this.#options.stateDir,
          now: () => new Date(this.#now()),
        });
        changes = report.changes;
        info = { ...base, at: this.#now(), result: 'ok' };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        info = { ...base, at: this.#now(), result: 'failed', message };
        await this.#write({ ...this.#record, lastRevert: info });
        await this.#journal({ op: 'commit-revert', ...base, result: 'failed', message });
        this.#options.log(`reverting generation ${pending.generation} FAILED (${message}); retrying`);
        this.#arm(this.#options.revertRetryMs ?? 10_000);
        return { info, changes };
      }
    }
    const stillPending =
      info.result === 'failed' && snapshot !== undefined && snapshot.createdAt === pending.snapshotAt;
    await this.#write({ ...this.#record, pending: stillPending ? pending : null, lastRevert: info });
    await this.#journal({
      op: 'commit-revert',
      ...base,
      changes: changes.length,
      result: info.result,
      ...(info.message === undefined ? {} : { message: info.message }),
    });
    this.#options.log(
      `generation ${pending.generation} reverted (${reason}): ${info.result}${info.message ? `, ${info.message}` : ''}`,
    );
    await this.#changed('reverted');
    return { info, changes };
  }

  /** Arms the revert timer for the pending apply (or retries a failed revert after `delayMs`). */
  #arm(delayMs?: number): void {
    this.#clearTimer();
    const pending = this.#record.pending;
    if (pending === null || this.#closed) return;
    const delay = delayMs ?? Math.max(0, pending.deadline - this.#now());
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#queue
          .run(async () => {
            const current = this.#record.pending;
            if (current === null || current.generation !== pending.generation) return;
            if (this.#now() < current.deadline) return this.#arm();
            await this.#revertPending('confirm-timeout');
          })
          .catch((error: unknown) => {
            this.#options.log(`revert timer: ${error instanceof Error ? error.message : String(error)}`);
            this.#arm(this.#options.revertRetryMs ?? 10_000);
          });
      },
      Math.min(delay, 2_147_000_000),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The desired state in force changed: tell the health source (probes) and the listeners. */
  async #changed(event: StateChange): Promise<void> {
    const applied = await this.#store.readApplied();
    this.#health.configure(applied?.desired ?? null);
    for (const listener of this.#listeners) listener(event);
  }

  async #write(record: CommitRecord): Promise<void> {
    await writeCommitRecord(this.#store, record);
    this.#record = record;
  }

  #journal(entry: Record<string, unknown>): Promise<void> {
    return this.#store.appendJournal({ at: iso(this.#now()), ...entry });
  }

  #dataplane(desired: DesiredState, previous: DesiredState | undefined): Dataplane {
    return this.#options.dataplane(previous?.settings.markMask ?? desired.settings.markMask);
  }
}

function guard(
  connection: SshConnection,
  desired: DesiredState,
  plan: Plan,
  current: CurrentState,
  scope: OwnershipScope,
): ManagementPathCheck {
  return checkManagementPath({
    connection,
    facts: current.facts,
    current: current.kernel,
    scope,
    effective: plan.effective,
    markMask: desired.settings.markMask,
  });
}

function toPendingInfo(pending: PendingRecord): PendingInfo {
  return {
    generation: pending.generation,
    hash: pending.hash,
    site: pending.site,
    at: pending.at,
    deadline: pending.deadline,
  };
}

export function summariseChanges(changes: ChangeSet): ChangeSummary[] {
  return changes.map((c) => ({ action: c.action, kind: c.kind, key: c.key }));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
