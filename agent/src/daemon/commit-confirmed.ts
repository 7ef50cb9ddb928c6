/**
 * Commit-confirmed applies (DESIGN.md "Safety: commit-confirmed"): snapshot → apply →
 * verify → a persisted deadline; `confirm(generation)` before the deadline makes the
 * generation applied, no confirm reverts to the snapshot through the engine.
 *
 * The invariant (D100): from the moment the kernel may change until a confirm or a
 * completed revert, a persisted pending record with a deadline exists, and every way out of
 * an apply ends in a recorded confirm or a revert. How the code keeps it:
 * - the pending record (phase `applying`, with its deadline) is written and the revert
 *   timer armed in the engine's `beforeApply` hook — after the snapshot is durable, before
 *   the first kernel step; if that write fails, the kernel has not been touched;
 * - once it is written, any exception, from any layer, goes to `#failedApply`, which reverts
 *   to the snapshot now through the same converging revert the timer uses. It never assumes
 *   the engine's own rollback worked;
 * - a revert that is not complete — objects not restored, or a record that cannot be
 *   written — keeps the pending record (its deadline moved to now: nothing can confirm it
 *   any more) and retries with backoff until the kernel holds the snapshot and that is on
 *   disk; `status.lastRevert` says what is still missing (D101);
 * - a confirm is answered only after it is on disk: a confirm that cannot be recorded is
 *   refused, and the apply reverts at its deadline;
 * - kernel commands have deadlines (run-command.ts), so nothing holds the one-writer queue
 *   forever and the timer always gets its turn; a restart finds the record and reverts at
 *   once (interrupted apply, or deadline passed) or re-arms the rest.
 *
 * One writer: apply, confirm, revert and the revert timer run through one SerialQueue, so
 * they never interleave; reads (status, plan) do not queue.
 */
import { assemblePlan, type Plan } from '../core/assemble-plan.js';
import type { ChangeSet } from '../core/diff.js';
import type { OwnershipScope } from '../core/owned.js';
import { healthKey, resolve } from '../core/resolve.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { CurrentState } from '../engine/read-current.js';
import { readCurrent, scopeFor } from '../engine/read-current.js';
import { reconcile } from '../engine/reconcile.js';
import { describeSkipped, describeUnrestored } from '../engine/restore-snapshot.js';
import { revert } from '../engine/revert.js';
import { show } from '../engine/show.js';
import { StateStore } from '../engine/state-store.js';
import { isAgentError, recordRollback, StateDirError } from '../errors.js';
import { Failpoints } from '../faults/failpoints.js';
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
  type ReportedFacts,
  type RevertInfo,
  type RevertReason,
  type RevertResult,
  type StatusResult,
} from '../model/protocol.js';
import { type RouterFacts, routerFactsHash } from '../model/router-facts.js';
import { AgentFaults } from './agent-faults.js';
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
import { revertWords, WireError } from './wire-error.js';

export interface CommitOptions {
  readonly stateDir: string;
  /** The kernel; `markMask` lets the linux dataplane recognise Uplink's track rules. */
  readonly dataplane: (markMask: number | undefined) => Dataplane;
  /** Milliseconds since the epoch (injected for tests). */
  readonly now?: () => number;
  readonly log: (line: string) => void;
  /** A revert that is not complete is retried after this long, doubling (default 1 s). */
  readonly revertRetryMs?: number;
  /** …up to this long between attempts (default 60 s). */
  readonly revertRetryMaxMs?: number;
  /** Provider health (probes); default: no probing, every provider up. */
  readonly health?: HealthSource;
  /** Fault injection at every state write (D102); the dataplane factory wraps its own. */
  readonly failpoints?: Failpoints;
  /** Where the fault report looks tools up (default $PATH); null: it does not (a simulated router). */
  readonly toolPath?: string | null;
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
  readonly #faults: AgentFaults;
  #record: CommitRecord;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The in-memory record differs from commit.json (a write failed); written again when possible. */
  #unrecorded = false;
  /** The last line logged about an incomplete revert: logged again only when it changes. */
  #lastRevertLog: string | undefined;
  readonly #listeners = new Set<(event: StateChange) => void>();
  #drift: () => DriftReport | null = () => null;
  /** The interfaces of the last facts read, whose sysctls the next status's facts carry. */
  #factInterfaces: readonly string[] = [];

  private constructor(options: CommitOptions, record: CommitRecord, faults: AgentFaults) {
    this.#options = options;
    this.#faults = faults;
    this.#store = new StateStore(options.stateDir, this.#storeOptions());
    this.#now = options.now ?? Date.now;
    this.#health = options.health ?? staticHealth();
    this.#record = record;
  }

  /** Reads the journal and recovers a pending apply: revert now, or re-arm the rest. */
  static async open(options: CommitOptions): Promise<CommitConfirmed> {
    const faults: AgentFaults = new AgentFaults({
      stateDir: options.stateDir,
      now: options.now ?? Date.now,
      log: options.log,
      path: options.toolPath,
      probeWrite: (bytes) => store.probeWrite(bytes),
    });
    const store = new StateStore(options.stateDir, {
      failpoints: options.failpoints,
      onWrite: (o) => faults.noteWrite(o),
    });
    const commit = new CommitConfirmed(options, await readCommitRecord(store), faults);
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

  /** The faults of the router's environment the daemon knows of (status.faults). */
  get faults(): AgentFaults {
    return this.#faults;
  }

  /** Engine options for everything that writes this state directory. */
  get engineOptions() {
    return {
      stateDir: this.#options.stateDir,
      now: () => new Date(this.#now()),
      ...this.#storeOptions(),
    };
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
        throw new WireError(
          'kernel',
          `the revert is not complete, the agent keeps trying: ${info.message ?? ''}`,
          true,
        );
      return { reverted: info, changes: summariseChanges(changes), applied: this.#record.applied };
    });
  }

  /** What an apply would do now, with the management-path check; changes nothing. */
  async plan(desired: DesiredState, connection: SshConnection | undefined): Promise<PlanResult> {
    const applied = await this.#store.readApplied();
    const scope = scopeFor(desired, applied?.desired);
    const current = await readCurrent(this.#dataplane(desired, applied?.desired), scope).catch(
      (error: unknown) => {
        this.#faults.noteError(error);
        throw error;
      },
    );
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

  /**
   * What is in force and how the router is. Answers even when the kernel cannot be read
   * (a tool missing): the counts are then zero and `faults` says why.
   */
  async status(
    params: { readonly factsHash?: string | undefined } = {},
    connection?: SshConnection,
  ): Promise<StatusResult> {
    const applied = await this.#store.readApplied();
    let shown: Awaited<ReturnType<typeof show>> | undefined;
    let unreadable: string | undefined;
    try {
      const dataplane = this.#options.dataplane(applied?.desired.settings.markMask);
      // The first status lists the interfaces first, so its facts carry every one's sysctls.
      if (this.#factInterfaces.length === 0)
        this.#factInterfaces = Object.keys((await dataplane.readFacts()).interfaces);
      shown = await show(dataplane, { stateDir: this.#options.stateDir }, this.#factInterfaces);
      this.#factInterfaces = Object.keys(shown.facts.interfaces);
    } catch (error) {
      this.#faults.noteError(error);
      unreadable = error instanceof Error ? error.message : String(error);
    }
    await this.#faults.refresh(applied?.desired, shown?.facts);
    if (this.#unrecorded && !this.#closed) void this.exclusive(() => this.#rewriteRecord());
    const resolved =
      applied === undefined || shown === undefined
        ? undefined
        : resolve(applied.desired, shown.facts, this.#health.current());
    // A provider's IPv6 half is listed as `<provider>:ipv6`, as its health is (D183).
    const unavailable = new Map([
      ...(resolved?.unavailable ?? []).map((u) => [u.provider, u.reason] as const),
      ...(resolved?.unavailable6 ?? []).map((u) => [healthKey(u.provider, 'inet6'), u.reason] as const),
    ]);
    const record = this.#record;
    const faults = this.#faults.list();
    return {
      agent: AGENT_NAME,
      protocol: PROTOCOL_VERSION,
      site: applied?.desired.site ?? null,
      applied: record.applied,
      pending: record.pending === null ? null : toPendingInfo(record.pending),
      lastRevert: record.lastRevert,
      owned: {
        rules: shown?.owned.rules.length ?? 0,
        routes: shown?.owned.routes.length ?? 0,
        nftRules: shown === undefined || shown.owned.nft === null ? null : shown.owned.nft.length,
        sysctls: shown === undefined ? 0 : Object.keys(shown.owned.sysctls).length,
      },
      facts: {
        interfaces:
          shown === undefined ? 0 : Object.values(shown.facts.interfaces).filter((f) => f.exists).length,
        providers: (applied?.desired.providers ?? [])
          .flatMap((p) => [
            // An IPv6-only uplink (D165) is listed by its IPv6 half alone.
            ...(p.gateway.kind === 'none' ? [] : [{ name: p.name, interface: p.interface }]),
            ...(p.ipv6 === undefined ? [] : [{ name: healthKey(p.name, 'inet6'), interface: p.interface }]),
          ])
          .map((p) => {
            const reason =
              unreadable !== undefined ? `the kernel cannot be read: ${unreadable}` : unavailable.get(p.name);
            const refused = (resolved?.refusedDelegated ?? [])
              .filter((r) => healthKey(r.provider, 'inet6') === p.name)
              .map((r) => `delegated prefix ${r.prefix} ${r.reason}`);
            return {
              name: p.name,
              interface: p.interface,
              available: reason === undefined,
              ...(reason === undefined ? {} : { reason }),
              ...(refused.length === 0 ? {} : { refused }),
            };
          }),
      },
      health: this.#health.report(),
      drift: this.#drift(),
      now: this.#now(),
      ...(faults.length > 0 ? { faults } : {}),
      ...(shown === undefined
        ? {}
        : { routerFacts: this.#reportedFacts(shown.routerFacts, params, connection) }),
    };
  }

  /** The facts with their hash; the hash alone when the controller holds them already (D170). */
  #reportedFacts(
    facts: RouterFacts,
    params: { readonly factsHash?: string | undefined },
    connection: SshConnection | undefined,
  ): ReportedFacts {
    const full: RouterFacts =
      connection === undefined
        ? facts
        : {
            ...facts,
            connection: {
              controller: connection.clientIp,
              router: connection.serverIp,
              routerPort: connection.serverPort,
            },
          };
    const hash = routerFactsHash(full);
    return { hash, readAt: this.#now(), ...(params.factsHash === hash ? {} : { facts: full }) };
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
        this.engineOptions,
        {
          check: (plan, current, scope) => {
            if (connection === undefined) return;
            managementPath = guard(connection, desired, plan, current, scope);
            if (!managementPath.unchanged && input.allowManagementChange !== true) {
              throw new WireError('management-path', managementPath.message ?? 'the management path changes');
            }
          },
          beforeApply: async (snapshot) => {
            // D100: the deadline exists — on disk, and armed — before the kernel may change.
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
            this.#arm();
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
      this.#arm();
      await this.#journal({
        op: 'commit-apply',
        generation,
        changes: report.changes.length,
        deadline: iso(armed.deadline),
        result: 'pending',
      });
      this.#options.log(
        `applied generation ${generation} (${report.changes.length} change(s)); reverting at ${iso(armed.deadline)} unless confirmed`,
      );
      await this.#changed('pending');
      return { ...base, pending: toPendingInfo(armed), applied: null };
    } catch (error) {
      if (!pendingWritten) {
        // The kernel was not touched (refused, or the pending record could not be written).
        this.#faults.noteError(error);
        throw error;
      }
      return this.#failedApply(error);
    }
  }

  /**
   * An apply failed after its pending record was written, so the kernel may have changed —
   * whatever failed, and whatever the engine's own rollback managed. Revert to the snapshot
   * now (a no-op when the kernel already holds it); the error then says how that went.
   */
  async #failedApply(error: unknown): Promise<never> {
    this.#faults.noteError(error);
    const { info } = await this.#revertPending('apply-failed');
    const outcome = info.result === 'ok' ? 'reverted' : 'revert-failed';
    const detail =
      info.result === 'ok' ? undefined : `${info.message ?? 'incomplete'}; the agent keeps trying`;
    if (error instanceof WireError) {
      throw new WireError(error.code, `${error.message} (${revertWords(outcome, detail)})`, error.retryable);
    }
    if (isAgentError(error)) {
      recordRollback(error, outcome, detail);
      throw error;
    }
    this.#options.log(
      `apply: unexpected error (a bug): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    throw new WireError(
      'internal',
      `internal error in uplink-agent (this is a bug; see the agent log); ${revertWords(outcome, detail)}`,
    );
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
      await this.#revertPending(this.#retryReason(pending) ?? 'confirm-timeout');
      throw new WireError(
        'not-pending',
        `generation ${generation} is not pending: its deadline ${iso(pending.deadline)} passed and it is being reverted`,
      );
    }
    const applied: GenerationInfo = {
      generation,
      hash: pending.hash,
      site: pending.site,
      at: pending.at,
    };
    try {
      await this.#write({ ...this.#record, applied, pending: null });
    } catch (error) {
      // Not on disk, not confirmed: a restart would revert it, so the timer must too.
      if (error instanceof StateDirError) {
        throw new WireError(
          `state-dir-${error.fault}`,
          `${error.message}; generation ${generation} is NOT confirmed: it stays pending and is reverted at ${iso(pending.deadline)} unless a confirm can be recorded before then`,
        );
      }
      throw error;
    }
    this.#clearTimer();
    await this.#journal({ op: 'commit-confirm', generation, result: 'applied' });
    this.#options.log(`generation ${generation} confirmed`);
    await this.#changed('confirmed');
    return { generation, applied, alreadyConfirmed: false };
  }

  async #recover(): Promise<void> {
    const pending = this.#record.pending;
    if (pending === null) return;
    const retry = this.#retryReason(pending);
    const snapshot = await this.#store.readSnapshot().catch(() => undefined);
    if (snapshot === undefined && pending.phase === 'armed' && this.#now() < pending.deadline) {
      // Its snapshot is gone: a revert completed before the stop — one asked for, the only
      // kind that runs before the deadline of an armed apply — but commit.json could not say
      // so (a full disk). Never let a confirm take it now: record the revert.
      this.#options.log(`generation ${pending.generation}: its revert had completed before a restart`);
      await this.#revertPending('requested');
    } else if (retry !== undefined) {
      this.#options.log(
        `generation ${pending.generation}: its revert (${retry}) was not complete; reverting`,
      );
      await this.#revertPending(retry);
    } else if (pending.phase === 'applying') {
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

  /** The reason of a revert of `pending` that began and is not complete yet, if one did. */
  #retryReason(pending: PendingRecord): RevertReason | undefined {
    const last = this.#record.lastRevert;
    return last !== null && last.generation === pending.generation && last.result === 'failed'
      ? last.reason
      : undefined;
  }

  /**
   * Reverts the pending apply to its snapshot. Never throws: a revert that is not complete
   * (objects not restored, or not recorded) is recorded as `failed`, keeps the pending
   * record with its deadline moved to now, and is tried again with backoff (D101).
   */
  async #revertPending(reason: RevertReason): Promise<{ info: RevertInfo; changes: ChangeSet }> {
    const pending = this.#record.pending!;
    this.#clearTimer();
    const base = { generation: pending.generation, hash: pending.hash, reason };
    const previous = this.#record.lastRevert;
    const attempts =
      previous !== null && previous.generation === pending.generation && previous.result === 'failed'
        ? (previous.attempts ?? 1) + 1
        : 1;
    let info: RevertInfo;
    let changes: ChangeSet = [];
    let done = true;
    try {
      const snapshot = await this.#store.readSnapshot();
      if (snapshot === undefined) {
        // The engine removes the snapshot when a revert completes: one ran before a restart.
        info = {
          ...base,
          at: this.#now(),
          result: 'ok',
          message: 'the revert had completed before a restart',
        };
      } else if (snapshot.createdAt !== pending.snapshotAt) {
        info = {
          ...base,
          at: this.#now(),
          result: 'failed',
          message: `the snapshot was replaced (${snapshot.createdAt}, expected ${pending.snapshotAt}) by an apply outside the daemon; not reverting`,
        };
      } else {
        const report = await revert(this.#options.dataplane(snapshot.markMask), this.engineOptions);
        changes = report.changes;
        const skipped = report.skipped.map((s) => s.object);
        const notes = skipped.length > 0 ? describeSkipped(report.skipped) : undefined;
        if (!report.complete) {
          done = false;
          info = {
            ...base,
            at: this.#now(),
            result: 'failed',
            message: `${describeUnrestored(report.failed)}${notes === undefined ? '' : `; ${notes}`}`,
            unrestored: report.failed.map((f) => `${f.object}: ${f.error}`),
            ...(skipped.length > 0 ? { skipped } : {}),
          };
        } else if (report.recordError !== undefined) {
          done = false;
          this.#faults.noteError(report.recordError);
          info = {
            ...base,
            at: this.#now(),
            result: 'failed',
            message: `the kernel is back to the snapshot, but recording that failed: ${report.recordError.message}`,
            ...(skipped.length > 0 ? { skipped } : {}),
          };
        } else {
          info = {
            ...base,
            at: this.#now(),
            result: 'ok',
            ...(notes === undefined ? {} : { message: notes, skipped }),
          };
        }
      }
    } catch (error) {
      // Reading the snapshot or the kernel failed (an unreadable state directory, a missing tool).
      this.#faults.noteError(error);
      done = false;
      info = {
        ...base,
        at: this.#now(),
        result: 'failed',
        message: error instanceof Error ? error.message : String(error),
      };
    }
    if (!done) return { info: await this.#revertLater(pending, info, attempts), changes };

    this.#lastRevertLog = undefined;
    await this.#writeOrHold({ ...this.#record, pending: null, lastRevert: info });
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

  /** Records an incomplete revert, keeps the apply pending (no confirm can take it now) and retries. */
  async #revertLater(pending: PendingRecord, failed: RevertInfo, attempts: number): Promise<RevertInfo> {
    const base = this.#options.revertRetryMs ?? 1_000;
    const delay = Math.min(base * 2 ** (attempts - 1), this.#options.revertRetryMaxMs ?? 60_000);
    const info: RevertInfo = { ...failed, attempts, nextAttemptAt: this.#now() + delay };
    const still: PendingRecord = { ...pending, deadline: Math.min(pending.deadline, this.#now()) };
    await this.#writeOrHold({ ...this.#record, pending: still, lastRevert: info });
    const line = `reverting generation ${pending.generation} (${info.reason}) is not complete: ${info.message ?? ''}; retrying with backoff`;
    if (line !== this.#lastRevertLog) {
      this.#options.log(`${line} (attempt ${attempts}, next in ${delay} ms)`);
      await this.#journal({ op: 'commit-revert', ...failed, result: 'failed', attempts });
    }
    this.#lastRevertLog = line;
    this.#arm(delay);
    return info;
  }

  /** Arms the revert timer for the pending apply (or retries a revert after `delayMs`). */
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
            await this.#revertPending(this.#retryReason(current) ?? 'confirm-timeout');
          })
          .catch((error: unknown) => {
            // #revertPending never throws; anything else here is a bug, and the revert still must happen.
            this.#options.log(`revert timer: ${error instanceof Error ? error.message : String(error)}`);
            this.#arm(this.#options.revertRetryMs ?? 1_000);
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
    let desired: DesiredState | null = null;
    try {
      desired = (await this.#store.readApplied())?.desired ?? null;
    } catch (error) {
      this.#options.log(
        `reading the applied state failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    this.#health.configure(desired);
    for (const listener of this.#listeners) listener(event);
  }

  async #write(record: CommitRecord): Promise<void> {
    await writeCommitRecord(this.#store, record);
    this.#record = record;
    this.#unrecorded = false;
  }

  /**
   * For a revert's records: the record is taken in memory even when commit.json cannot be
   * written — the kernel already holds what it says, and a restart that reads the older file
   * reverts again, which finds nothing to do. Written again when the directory allows.
   */
  async #writeOrHold(record: CommitRecord): Promise<void> {
    try {
      await this.#write(record);
    } catch (error) {
      this.#faults.noteError(error);
      this.#record = record;
      this.#unrecorded = true;
    }
  }

  async #rewriteRecord(): Promise<void> {
    if (!this.#unrecorded) return;
    await this.#write(this.#record).catch((error: unknown) => this.#faults.noteError(error));
  }

  /** The journal is for people: a failed append is a fault to report, not a failed operation. */
  async #journal(entry: Record<string, unknown>): Promise<void> {
    await this.#store
      .appendJournal({ at: iso(this.#now()), ...entry })
      .catch((error: unknown) => this.#faults.noteError(error));
  }

  #dataplane(desired: DesiredState, previous: DesiredState | undefined): Dataplane {
    return this.#options.dataplane(previous?.settings.markMask ?? desired.settings.markMask);
  }

  #storeOptions() {
    return {
      failpoints: this.#options.failpoints ?? Failpoints.none,
      onWrite: (outcome: Parameters<AgentFaults['noteWrite']>[0]) => this.#faults.noteWrite(outcome),
    };
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
