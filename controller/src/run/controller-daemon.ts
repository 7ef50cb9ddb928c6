/**
 * The GitOps loop (`uplink run`): fetch the fleet repository on an interval and when the
 * webhook fires, check and compile each new commit, roll it out in waves, and poll every
 * site's status on an interval (drift, health, generation). One rollout at a time; a newer
 * good commit supersedes the running one at its next wave boundary.
 *
 * - An invalid or wrongly signed commit changes nothing; it is recorded (status, logs,
 *   metrics) and the last good commit stays in force.
 * - A halted rollout is not retried by itself: the next commit, or `uplink retry`, starts a
 *   new one.
 * - Reconciliation (D125, choose-reconcile.ts): after the commit's rollout finished `done`,
 *   every status poll finds the sites that answer and do not run the commit in force —
 *   missed by the rollout (always), or moved away from it by a manual apply, a restore, a
 *   failed attempt (with `rollout.reconcile: auto`, each failure backing off) — and rolls
 *   the commit out to them (trigger `reconcile`, commit-confirmed, the same guard).
 * - `uplink suspend` (control.json, D126): no rollout starts and nothing is reconciled; a
 *   running rollout stops at its next wave boundary. `uplink resume` continues it (a new
 *   rollout of the sites still behind); `uplink retry` rolls a halted commit out again.
 * - Timelines (D127): every outcome, and every revert, health transition, drift change,
 *   override and reachability change the agents report, goes to the site's timeline; fleet
 *   events go to the fleet's. Both are persisted and bounded.
 * - Every queued step (fetch, compile, rollout start) catches its own failure, logs it with
 *   its commit and records it in the status: one failure never stops the loop (D78).
 * - One rollout at a time: a new one starts only once the previous one has settled (its
 *   rollback applies included); a run that is no longer current never writes the state.
 * - On start, a persisted rollout that was still running is resumed from what the agents
 *   report (rollout/resume-rollout.ts): confirmed sites are not applied again, none is skipped.
 *   Its bake check compares with the health persisted before the applies (D86), not with
 *   what the agents report after the restart.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DesiredState } from '#agent/model';
import { GitSource, type VerifyCommitOptions } from '../git/index.js';
import type { ApiEvent, ApiSiteDetail, ApiStatus } from '../http/api-status.js';
import { buildApiStatus } from '../http/build-api-status.js';
import { ControllerMetrics } from '../metrics/controller-metrics.js';
import { type TimelineEntry, timelineFromReport } from '../report/site-timeline.js';
import { isTerminal } from '../rollout/index.js';
import { FleetCache } from '../spec/fleet-cache.js';
import {
  CONTROL_FILE,
  type Control,
  emptyControl,
  readControl,
  takeRetryRequest,
} from '../state/control-file.js';
import {
  CONTROLLER_STATE_FILE,
  ControllerStateStore,
  recordFinishedRollout,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  withReconcileBackoff,
  withRollout,
  writeFileAtomic,
} from '../state/index.js';
import { FACTS_DIR, writeSiteFacts } from '../state/site-facts-store.js';
import { FLEET_TIMELINE, TimelineStore } from '../state/timeline-store.js';
import { beginRollout } from './begin-rollout.js';
import { backoffAfter, chooseReconcile } from './choose-reconcile.js';
import { type CompiledCommit, compileCommit } from './compile-commit.js';
import { EventLog } from './event-log.js';
import { noticeEffects } from './notice-effects.js';
import type { PrepareRolloutOptions } from './prepare-rollout.js';
import { findPreviousDesired } from './previous-desired.js';
import { queryStatuses } from './query-statuses.js';
import type { RolloutRun, RunNotice, RunRolloutOptions } from './run-rollout.js';
import { siteRecordOf } from './site-record.js';
import type { SiteReport } from './site-report.js';
import type { SiteTransport } from './site-transport.js';

export interface ControllerDaemonOptions {
  readonly repo: { readonly url: string; readonly branch: string; readonly env?: Record<string, string> };
  readonly stateDir: string;
  readonly transport: SiteTransport;
  readonly log: Logger;
  readonly pollIntervalMs: number;
  readonly statusPollIntervalMs: number;
  readonly freshForMs: number;
  readonly concurrency: number;
  readonly signatures: VerifyCommitOptions | null;
  readonly version: string;
  readonly now?: () => number;
  /** Reconciliation's first backoff after a failed attempt (doubling); default 1 min. */
  readonly reconcileBackoffMs?: number;
  /** Its longest backoff; default 1 h. */
  readonly reconcileMaxBackoffMs?: number;
  /** How often control.json and retry requests are looked for; default 1 s. */
  readonly controlPollMs?: number;
  /** Called with every event (the outgoing webhook, notify.ts). */
  readonly onEvent?: (event: ApiEvent) => void;
}

type Good = Extract<CompiledCommit, { ok: true }>;

/** File the daemon keeps the latest /api/status document in, for `uplink status --state-dir`. */
export const STATUS_FILE = 'status.json';

export class ControllerDaemon {
  readonly metrics = new ControllerMetrics();
  readonly events = new EventLog();
  readonly reports = new Map<string, SiteReport>();
  #git!: GitSource;
  #store!: ControllerStateStore;
  #timeline!: TimelineStore;
  #control: Control = emptyControl();
  #controlStamp = '';
  #controlError: string | null = null;
  #good: Good | undefined;
  /** Reused by every commit compiled, so a one-file commit re-checks one file (D151). */
  readonly #fleetCache = new FleetCache();
  #run: RolloutRun | undefined;
  #runCommit: string | undefined;
  #rolloutStartedAt: number | null = null;
  #lastFetchAt: number | null = null;
  #lastFetchError: string | null = null;
  /** Serialises fetch/compile/rollout-start work; never rejects (#enqueue catches). */
  #queue: Promise<void> = Promise.resolve();
  #fetchQueued = false;
  /** Bumped by every launch: only the newest run may write the persisted rollout. */
  #runSeq = 0;
  #polling = false;
  #lastError: { at: number; commit: string | null; message: string } | null = null;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #statusWrite: NodeJS.Timeout | undefined;
  /** Per site, the hash of the facts file written last (D171): unchanged facts are not written again. */
  readonly #factsWritten = new Map<string, string>();
  readonly #now: () => number;

  constructor(readonly options: ControllerDaemonOptions) {
    this.#now = options.now ?? Date.now;
  }

  get state() {
    return this.#store.state;
  }

  /** The suspension in force (control.json as last read). */
  get control(): Control {
    return this.#control;
  }

  /** A site's timeline (or the fleet's: FLEET_TIMELINE), oldest first. */
  timeline(name: string): readonly TimelineEntry[] {
    return this.#timeline.list(name);
  }

  /** The rollout in progress (settles when it is finished), if any. */
  get currentRun(): RolloutRun | undefined {
    return this.#run;
  }

  async start(): Promise<void> {
    const { stateDir, repo, log } = this.options;
    await mkdir(stateDir, { recursive: true });
    this.#store = await ControllerStateStore.open(join(stateDir, CONTROLLER_STATE_FILE));
    this.#timeline = await TimelineStore.open(join(stateDir, 'timeline'));
    for (const e of this.#timeline.list(FLEET_TIMELINE).slice(-this.events.limit))
      this.events.add(toEvent(e));
    await this.#readControl();
    this.#git = await GitSource.mirror({
      url: repo.url,
      branch: repo.branch,
      dir: join(stateDir, 'fleet.git'),
      ...(repo.env ? { env: repo.env } : {}),
    });
    log.info({ repo: redactUrl(repo.url), branch: repo.branch, stateDir }, 'controller starting');
    const good = this.#store.state.lastGoodCommit;
    if (good) {
      // The commit in force survives a restart without a fetch (the mirror keeps its objects).
      const compiled = await compileCommit(this.#git, good, null, this.#fleetCache).catch(() => undefined);
      if (compiled?.ok) this.#good = compiled;
    }
    await this.#resume().catch((e: unknown) =>
      this.#failed('resuming the rollout', this.#store.state.rollout?.plan.commit ?? null, e),
    );
    this.#startIfNeverStarted();
    this.triggerFetch();
    this.#every(this.options.pollIntervalMs, () => this.triggerFetch());
    this.#every(this.options.statusPollIntervalMs, () => void this.pollStatus());
    this.#every(this.options.controlPollMs ?? 1_000, () => void this.checkControl());
    void this.checkControl();
  }

  /**
   * Reads control.json if it changed (suspend/resume) and takes a retry request if there is
   * one. Called every second; also by tests.
   */
  async checkControl(): Promise<void> {
    if (this.#stopped) return;
    const before = this.#control;
    await this.#readControl();
    const after = this.#control;
    if (before !== after) this.#controlChanged(before, after);
    const retry = await takeRetryRequest(this.options.stateDir).catch(() => undefined);
    if (retry) {
      this.#event({
        level: 'info',
        kind: 'retry-requested',
        message: `${retry.by} asked to retry the commit in force`,
        ...(this.#good ? { commit: this.#good.commit } : {}),
      });
      const good = this.#good;
      void this.#enqueue('retrying the rollout', good?.commit ?? null, async () => {
        if (!good) throw new Error('nothing to retry: no commit has validated yet');
        if (this.#control.fleet) throw new Error('rollouts are suspended: `uplink resume` first');
        if (this.#run && !isTerminal(this.#run.state()))
          throw new Error('a rollout is running; retry it once it has finished');
        this.#store.update((s) => {
          let next = s;
          for (const site of Object.keys(s.sites)) next = withReconcileBackoff(next, site, undefined);
          return next;
        });
        await this.#startRollout(good, { trigger: 'retry' });
      });
    }
  }

  async #readControl(): Promise<void> {
    const file = join(this.options.stateDir, CONTROL_FILE);
    const st = await stat(file).catch(() => undefined);
    const stamp = st ? `${st.mtimeMs}:${st.size}:${st.ino}` : 'none';
    if (stamp === this.#controlStamp) return;
    this.#controlStamp = stamp;
    try {
      this.#control = await readControl(this.options.stateDir);
      this.#controlError = null;
    } catch (e) {
      // Unreadable: keep what was in force, and say so.
      const message = e instanceof Error ? e.message : String(e);
      if (message !== this.#controlError)
        this.options.log.error({ err: message }, 'cannot read control.json');
      this.#controlError = message;
    }
  }

  #controlChanged(before: Control, after: Control): void {
    const { log } = this.options;
    if (!before.fleet && after.fleet) {
      log.warn({ by: after.fleet.by, reason: after.fleet.reason }, 'rollouts and reconciliation suspended');
      this.#event({
        level: 'warn',
        kind: 'suspended',
        message: `rollouts and reconciliation suspended by ${after.fleet.by}: ${after.fleet.reason}`,
      });
      this.#run?.suspend();
    } else if (before.fleet && !after.fleet) {
      log.info({}, 'rollouts and reconciliation resumed');
      this.#event({ level: 'info', kind: 'resumed', message: 'rollouts and reconciliation resumed' });
      this.#run?.resume();
      this.#startIfNeverStarted();
      void this.#enqueue('resuming', this.#good?.commit ?? null, () => this.#reconcile());
    }
    for (const site of new Set([...Object.keys(before.sites), ...Object.keys(after.sites)])) {
      const was = before.sites[site];
      const now = after.sites[site];
      if (!was && now)
        this.#siteEntry(site, {
          level: 'warn',
          kind: 'suspended',
          message: `suspended by ${now.by}: ${now.reason}`,
        });
      else if (was && !now) this.#siteEntry(site, { level: 'info', kind: 'resumed', message: 'resumed' });
    }
    this.#statusChanged();
  }

  /** Fetch now (poll timer and webhook); coalesces triggers that arrive while one is queued. */
  triggerFetch(): Promise<void> {
    if (this.#fetchQueued) return this.#queue;
    this.#fetchQueued = true;
    return this.#enqueue('fetch', null, async () => {
      this.#fetchQueued = false;
      if (!this.#stopped) await this.#fetchAndRoll();
    });
  }

  /**
   * Run `step` after the queued work. Its failure is logged (with its commit), recorded in
   * the status and as an event, and swallowed: the queue stays resolved, so the next fetch
   * still runs and the process never dies of an unhandled rejection.
   */
  #enqueue(what: string, commit: string | null, step: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(step).catch((e: unknown) => this.#failed(what, commit, e));
    return this.#queue;
  }

  #failed(what: string, commit: string | null, e: unknown): void {
    const message = redactUrls(e instanceof Error ? e.message : String(e));
    this.#lastError = { at: this.#now(), commit, message: `${what}: ${message}` };
    this.options.log.error({ commit, err: message }, `${what} failed; the loop goes on`);
    this.events.add({
      at: this.#now(),
      level: 'error',
      kind: 'error',
      message: `${what} failed: ${message}`,
      ...(commit ? { commit } : {}),
    });
    this.#statusChanged();
  }

  /** The commit in force was recorded but its rollout never started (a crash or error in between). */
  #startIfNeverStarted(): void {
    const good = this.#good;
    if (!good) return;
    void this.#enqueue('starting the rollout', good.commit, async () => {
      // Checked when the step runs: something queued before it may have started one.
      if (this.#good !== good || this.#store.state.rollout?.plan.commit === good.commit) return;
      if (this.#run && !isTerminal(this.#run.state())) return;
      await this.#startRollout(good);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#statusWrite) clearTimeout(this.#statusWrite);
    await this.#queue.catch(() => {});
    await this.#store.flush().catch(() => {});
    await this.#timeline.flush();
  }

  status(): ApiStatus {
    return buildApiStatus({
      now: this.#now(),
      version: this.options.version,
      controller: {
        repo: redactUrl(this.options.repo.url),
        branch: this.options.repo.branch,
        pollIntervalMs: this.options.pollIntervalMs,
        lastFetchAt: this.#lastFetchAt,
        lastFetchError: this.#lastFetchError,
        signatureVerification: this.options.signatures !== null,
        lastError: this.#lastError,
      },
      state: this.#store.state,
      ...(this.#good
        ? {
            fleet: this.#good.fleet,
            desiredHashes: new Map([...this.#good.desired].map(([s, d]) => [s, d.hash] as const)),
          }
        : {}),
      reports: this.reports,
      rolloutStartedAt: this.#rolloutStartedAt,
      events: this.events.list(),
      suspension: { fleet: this.#control.fleet, sites: this.#control.sites },
    });
  }

  /** `GET /api/sites/SITE`: the site as in status(), with its timeline; undefined for an unknown site. */
  siteDetail(name: string, status = this.status()): ApiSiteDetail | undefined {
    const site = status.sites.find((s) => s.name === name);
    if (!site) return undefined;
    return { now: status.now, target: status.target, site, timeline: this.#timeline.list(name) };
  }

  /**
   * Ask every site of the commit in force for its status (drift, health, generation). A poll
   * that finds the previous one still running (slow or unreachable sites) is skipped.
   */
  async pollStatus(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      await this.#pollStatus();
    } catch (e) {
      this.#failed('status poll', this.#good?.commit ?? null, e);
    } finally {
      this.#polling = false;
    }
  }

  async #pollStatus(): Promise<void> {
    const good = this.#good;
    if (!good || this.#stopped) return;
    const { reports } = await queryStatuses({
      sites: good.fleet.sites,
      transport: this.options.transport,
      concurrency: this.options.concurrency,
      previous: this.reports,
      now: this.#now,
    });
    for (const [site, r] of reports) {
      this.reports.set(site, r);
      this.#recordReport(site, r);
    }
    this.#statusChanged();
    void this.#enqueue('reconciling', good.commit, () => this.#reconcile());
  }

  /** What a status answer adds to the site's timeline (reverts, failovers, drift, overrides, reachability). */
  #recordReport(site: string, report: SiteReport): void {
    const added = this.#timeline.append(site, timelineFromReport(this.#timeline.list(site), report));
    for (const e of added) {
      const shown = e.kind !== 'provider-unknown' && e.kind !== 'reachable';
      // Old transitions (from before the controller started) go to the timeline only.
      if (shown && this.#now() - e.at < 10 * 60_000)
        this.#event(
          {
            level: e.level,
            kind: e.kind,
            message: `${site}: ${e.message}`,
            site,
            ...(e.generation ? { generation: e.generation } : {}),
          },
          false,
        );
    }
  }

  /**
   * Bring the sites behind the commit in force back to it (choose-reconcile.ts), in one
   * rollout of just those sites; or continue a rollout that suspension stopped.
   */
  async #reconcile(): Promise<void> {
    const good = this.#good;
    if (!good || this.#stopped) return;
    const busy = this.#run !== undefined;
    const saved = this.#store.state.rollout;
    if (!busy && !this.#control.fleet && saved?.phase === 'suspended' && saved.plan.commit === good.commit) {
      this.options.log.info({ commit: good.commit }, 'continuing the rollout that suspension stopped');
      await this.#startRollout(good, { trigger: 'resume' });
      return;
    }
    const choice = chooseReconcile({
      mode: good.fleet.rollout.reconcile,
      commit: good.commit,
      desired: new Map([...good.desired].map(([site, d]) => [site, d.hash] as const)),
      reports: this.reports,
      history: this.#store.state.sites,
      rollout: saved,
      busy,
      fleetSuspended: this.#control.fleet !== null,
      suspendedSites: new Set(Object.keys(this.#control.sites)),
      now: this.#now(),
    });
    if (choice.sites.length === 0) return;
    this.options.log.info(
      { commit: good.commit, sites: choice.sites },
      'reconciling: rolling the commit in force out to the sites behind it',
    );
    await this.#startRollout(good, {
      only: new Set(choice.sites),
      trigger: 'reconcile',
      noFailureBudget: true,
    });
  }

  #every(ms: number, run: () => void): void {
    const t = setInterval(run, ms);
    t.unref?.();
    this.#timers.push(t);
  }

  /** An event: the status document's list, the fleet timeline (unless it is a site's own), the webhook. */
  #event(event: Omit<ApiEvent, 'at'> & { generation?: string }, fleetTimeline = true): void {
    const { generation: _, ...e } = event;
    const full: ApiEvent = { at: this.#now(), ...e };
    this.events.add(full);
    if (fleetTimeline && this.#timeline) this.#timeline.append(FLEET_TIMELINE, [fromEvent(full)]);
    try {
      this.options.onEvent?.(full);
    } catch (err) {
      this.options.log.warn({ err: String(err) }, 'event hook failed');
    }
    this.#statusChanged();
  }

  #siteEntry(site: string, entry: Omit<TimelineEntry, 'at'>): void {
    this.#timeline.append(site, [{ at: this.#now(), ...entry }]);
  }

  /** Write status.json soon (coalesced), so `uplink status --state-dir` sees the daemon's view. */
  #statusChanged(): void {
    if (this.#statusWrite || this.#stopped) return;
    this.#statusWrite = setTimeout(() => {
      this.#statusWrite = undefined;
      void this.#storeFacts();
      void writeFileAtomic(
        join(this.options.stateDir, STATUS_FILE),
        `${JSON.stringify(this.status())}\n`,
      ).catch((e: unknown) => this.options.log.warn({ err: String(e) }, 'cannot write status.json'));
    }, 200);
    this.#statusWrite.unref?.();
  }

  /** Each site's facts to `<state-dir>/facts/SITE.json` when they changed since the last write. */
  async #storeFacts(): Promise<void> {
    for (const [site, report] of this.reports) {
      const facts = report.facts;
      if (facts === undefined || this.#factsWritten.get(site) === facts.hash) continue;
      this.#factsWritten.set(site, facts.hash);
      try {
        await mkdir(join(this.options.stateDir, FACTS_DIR), { recursive: true });
        await writeSiteFacts(this.options.stateDir, {
          site,
          hash: facts.hash,
          readAt: facts.readAt,
          facts: facts.facts,
        });
      } catch (e) {
        this.#factsWritten.delete(site);
        this.options.log.warn({ err: String(e), site }, 'cannot write the site facts');
      }
    }
  }

  async #fetchAndRoll(): Promise<void> {
    const { log } = this.options;
    let head: string;
    try {
      head = await this.#git.fetch();
      this.#lastFetchAt = this.#now();
      this.#lastFetchError = null;
      this.metrics.fetches.inc({ result: 'ok' });
    } catch (e) {
      this.#lastFetchAt = this.#now();
      this.#lastFetchError = redactUrls(e instanceof Error ? e.message : String(e));
      this.metrics.fetches.inc({ result: 'error' });
      log.warn({ err: this.#lastFetchError }, 'fetch failed; the commit in force stays');
      this.#statusChanged();
      return;
    }
    const state = this.#store.state;
    const known =
      head === state.lastGoodCommit || head === state.lastInvalidCommit?.commit || head === this.#runCommit;
    if (known) {
      // A rollout of the commit in force that failed to start (an error) is tried again.
      if (head === this.#good?.commit) this.#startIfNeverStarted();
      return;
    }
    try {
      await this.#rollNewCommit(head);
    } catch (e) {
      this.#failed('checking and rolling out a new commit', head, e);
    }
  }

  /** A commit not seen before: compile it, record a refusal, or roll it out. */
  async #rollNewCommit(head: string): Promise<void> {
    const { log } = this.options;
    log.info({ commit: head }, 'new commit');
    this.#event({ level: 'info', kind: 'fetched', message: `new commit ${head.slice(0, 12)}`, commit: head });
    const compiled = await compileCommit(this.#git, head, this.options.signatures, this.#fleetCache);
    if (!compiled.ok) {
      this.metrics.refusedCommits.inc({ reason: compiled.reason });
      for (const d of compiled.diagnostics)
        log.error(
          { commit: head, file: d.file, line: d.line, col: d.col },
          `${d.file}:${d.line}:${d.col}: ${d.message}`,
        );
      log.error({ commit: head, reason: compiled.reason }, compiled.message);
      this.#store.update((s) =>
        recordInvalidCommit(s, {
          commit: head,
          at: this.#now(),
          reason: compiled.reason,
          message: compiled.message,
          diagnostics: compiled.diagnostics,
        }),
      );
      this.#event({
        level: 'error',
        kind: compiled.reason === 'signature' ? 'signature-refused' : 'invalid-commit',
        message: compiled.message,
        commit: head,
      });
      return;
    }
    this.#good = compiled;
    this.#store.update((s) => recordGoodCommit(s, head, this.#now()));
    if (this.#control.fleet) {
      this.#event({
        level: 'warn',
        kind: 'waiting',
        message: `commit ${head.slice(0, 12)} is in force but rollouts are suspended: it rolls out after \`uplink resume\``,
        commit: head,
      });
    }
    if (this.#run && !isTerminal(this.#run.state())) {
      log.info(
        { commit: head, superseding: this.#runCommit },
        'newer commit; it takes over at the next wave boundary',
      );
      this.#run.newCommit(head);
      return;
    }
    await this.#startRollout(compiled);
  }

  /** Start a rollout of `compiled` (of the sites in `plan.only`, for a reconciliation). */
  async #startRollout(
    compiled: Good,
    plan: Pick<PrepareRolloutOptions, 'only' | 'trigger' | 'noFailureBudget'> = {},
  ): Promise<void> {
    const previous = this.#run;
    if (this.#stopped || (previous && !isTerminal(previous.state()))) return;
    if (this.#control.fleet) {
      this.options.log.info({ commit: compiled.commit }, 'rollouts are suspended; not starting');
      return;
    }
    if (previous) {
      // Halted, but its rollback applies are still in flight: never overlap them.
      this.options.log.info(
        { commit: compiled.commit, previous: this.#runCommit },
        'waiting for the previous rollout to settle (rollbacks in flight)',
      );
      this.#event({
        level: 'info',
        kind: 'waiting',
        message: `rollout of ${compiled.commit.slice(0, 12)} waits for the previous rollout's rollbacks`,
        commit: compiled.commit,
      });
      await previous.done;
      if (this.#run === previous) this.#run = undefined;
      if (this.#stopped || this.#run) return;
    }
    const suspendedSites = Object.keys(this.#control.sites);
    const begun = await beginRollout({
      compiled,
      transport: this.options.transport,
      concurrency: this.options.concurrency,
      reports: this.reports,
      freshForMs: this.options.freshForMs,
      now: this.#now,
      store: this.#store,
      plan: { ...plan, ...(suspendedSites.length > 0 ? { exclude: new Set(suspendedSites) } : {}) },
      warn: (message) => this.options.log.warn({ commit: compiled.commit }, message),
    });
    for (const [site, r] of begun.reports) this.reports.set(site, r);
    const unchanged = begun.plan.unchanged.length;
    const trigger = plan.trigger ?? 'commit';
    if (trigger === 'reconcile' && begun.planned === 0) {
      // The sites caught up meanwhile (their reports were older than what they run now).
      this.options.log.debug({ commit: compiled.commit }, 'reconciling: nothing left to change');
      return;
    }
    this.options.log.info(
      { commit: compiled.commit, planned: begun.planned, unchanged, statusCalls: begun.asked, trigger },
      'rollout planned',
    );
    const what =
      trigger === 'reconcile'
        ? 'reconciling'
        : trigger === 'retry'
          ? 'retry of'
          : trigger === 'resume'
            ? 'resumed rollout of'
            : 'rollout of';
    this.#event({
      level: 'info',
      kind: 'rollout-started',
      message: `${what} ${compiled.commit.slice(0, 12)}: ${begun.planned} site(s) to change, ${unchanged} unchanged${begun.plan.suspended ? `, ${begun.plan.suspended.length} suspended` : ''}`,
      commit: compiled.commit,
    });
    this.#launch(compiled, begun.start);
  }

  #launch(
    compiled: Good,
    start: (options: Omit<RunRolloutOptions, 'reports' | 'healthBefore'>) => RolloutRun,
  ): void {
    const commit = compiled.commit;
    this.#runCommit = commit;
    this.#rolloutStartedAt = this.#now();
    const seq = ++this.#runSeq;
    const run = start({
      sites: compiled.sites,
      desired: compiled.desired,
      transport: this.options.transport,
      log: this.options.log,
      now: this.#now,
      concurrency: this.options.concurrency,
      // A run that is no longer the newest (its late rollbacks) must not overwrite the state.
      onState: (s) => {
        if (seq === this.#runSeq) this.#store.update((st) => withRollout(st, s));
      },
      onNotice: (n) => this.#notice(compiled, n),
      previousDesired: (site, hash) => this.#previousDesired(site, hash),
    });
    this.#run = run;
    if (this.#control.fleet) run.suspend();
    void run.done.then(async (final) => {
      if (seq === this.#runSeq && final.phase !== 'running' && final.phase !== 'baking')
        this.#store.update((s) =>
          recordFinishedRollout(s, {
            commit,
            phase: final.phase as 'done' | 'halted' | 'superseded' | 'suspended',
            trigger: final.plan.trigger ?? 'commit',
            at: this.#now(),
          }),
        );
      await this.#store.flush().catch(() => {});
      this.metrics.rollouts.inc({ result: final.phase });
      if (this.#run === run) this.#run = undefined;
      // Superseded, or a newer good commit arrived meanwhile: roll that out.
      if (!this.#stopped && this.#good && this.#good.commit !== commit) this.#startIfNeverStarted();
    });
  }

  #notice(compiled: Good, n: RunNotice): void {
    const commit = compiled.commit;
    const record = siteRecordOf(n, commit, compiled.desired, this.#now());
    if (record) {
      this.#store.update((s) => recordSiteOutcome(s, record.site, record.record));
      this.#backoff(record.site, record.record.hash, record.record.outcome);
    }
    const effects = noticeEffects(n, commit);
    if (effects.applyDuration)
      this.metrics.applyDuration.observe(
        { outcome: effects.applyDuration.outcome },
        effects.applyDuration.seconds,
      );
    if (effects.failure) this.metrics.failures.inc({ kind: effects.failure });
    if (effects.timeline) this.#siteEntry(effects.timeline.site, effects.timeline.entry);
    if (effects.event) this.#event(effects.event, effects.event.site === undefined);
  }

  /** Reconciliation's backoff after an attempt of `hash` (D125): a failure doubles it, a success clears it. */
  #backoff(site: string, hash: string, outcome: string): void {
    if (hash !== this.#good?.desired.get(site)?.hash) return;
    const prior = this.#store.state.sites[site]?.reconcile;
    if (outcome === 'applied' || outcome === 'unchanged') {
      if (prior) this.#store.update((s) => withReconcileBackoff(s, site, undefined));
      return;
    }
    if (outcome === 'unreachable' || outcome === 'rolled-back') return; // retried when it answers
    const failures = (prior?.hash === hash ? prior.failures : 0) + 1;
    const delay = backoffAfter(
      failures,
      this.options.reconcileBackoffMs ?? 60_000,
      this.options.reconcileMaxBackoffMs ?? 3_600_000,
    );
    this.#store.update((s) => withReconcileBackoff(s, site, { hash, failures, nextAt: this.#now() + delay }));
  }

  /** The desired state a site had before: compile the commit its last generation came from. */
  #previousDesired(site: string, hash: string): Promise<DesiredState | undefined> {
    return findPreviousDesired(this.#git, site, hash, this.#store.state, this.reports.get(site));
  }

  async #resume(): Promise<void> {
    const saved = this.#store.state.rollout;
    if (!saved || isTerminal(saved)) return;
    const compiled = await compileCommit(this.#git, saved.plan.commit, null, this.#fleetCache).catch(
      () => undefined,
    );
    if (!compiled?.ok) {
      this.options.log.error(
        { commit: saved.plan.commit },
        'cannot resume the persisted rollout: its commit does not compile',
      );
      return;
    }
    const begun = await beginRollout({
      compiled,
      transport: this.options.transport,
      concurrency: this.options.concurrency,
      reports: this.reports,
      freshForMs: this.options.freshForMs,
      now: this.#now,
      store: this.#store,
      resume: saved,
      warn: (message) => this.options.log.warn({ commit: saved.plan.commit }, message),
    });
    for (const [site, r] of begun.reports) this.reports.set(site, r);
    this.options.log.info(
      { commit: saved.plan.commit, phase: saved.phase, wave: saved.waveIndex },
      'resuming the rollout',
    );
    this.#event({
      level: 'info',
      kind: 'resumed',
      message: `resuming the rollout of ${saved.plan.commit.slice(0, 12)}`,
      commit: saved.plan.commit,
    });
    if (!this.#good) this.#good = compiled;
    this.#launch(compiled, begun.start);
  }
}

/** A fleet-timeline entry as an event of the status document. */
function toEvent(e: TimelineEntry): ApiEvent {
  const extra = e as TimelineEntry & { site?: string; wave?: string };
  return {
    at: e.at,
    level: e.level,
    kind: e.kind,
    message: e.message,
    ...(extra.site ? { site: extra.site } : {}),
    ...(extra.wave ? { wave: extra.wave } : {}),
    ...(e.commit ? { commit: e.commit } : {}),
  };
}

function fromEvent(e: ApiEvent): TimelineEntry {
  return e as TimelineEntry;
}

/** A repository URL without its userinfo (`https://user:TOKEN@host/…` → `https://host/…`), for status and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** Every `scheme://userinfo@` in a message (git's errors quote the URL) without the userinfo. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]*@/gi, '$1');
}
