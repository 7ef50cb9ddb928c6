/**
 * The GitOps loop (`uplink run`): fetch the fleet repository on an interval and when the
 * webhook fires, check and compile each new commit, roll it out in waves, and poll every
 * site's status on an interval (drift, health, generation). One rollout at a time; a newer
 * good commit supersedes the running one at its next wave boundary.
 *
 * - An invalid or wrongly signed commit changes nothing; it is recorded (status, logs,
 *   metrics) and the last good commit stays in force.
 * - A halted rollout is not retried by itself: the next commit starts a new one.
 * - A rollout that finished `done` with sites it could not reach (unreachable, or no outcome
 *   within the site timeout) is rolled out again to those sites only, once a status poll
 *   finds one of them reachable and not on the commit's state. A site that refused, failed,
 *   was not confirmed, reverted or turned unhealthy is not retried for the same commit: a
 *   new commit, or an operator's `uplink rollout`, tries it again (D77).
 * - Every queued step (fetch, compile, rollout start) catches its own failure, logs it with
 *   its commit and records it in the status: one failure never stops the loop (D78).
 * - One rollout at a time: a new one starts only once the previous one has settled (its
 *   rollback applies included); a run that is no longer current never writes the state.
 * - On start, a persisted rollout that was still running is resumed from what the agents
 *   report (rollout/resume-rollout.ts): confirmed sites are not applied again, none is skipped.
 *   Its bake check compares with the health persisted before the applies (D86), not with
 *   what the agents report after the restart.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DesiredState } from '#agent/model';
import { GitSource, type VerifyCommitOptions } from '../git/index.js';
import type { ApiEvent, ApiStatus } from '../http/api-status.js';
import { buildApiStatus } from '../http/build-api-status.js';
import { ControllerMetrics } from '../metrics/controller-metrics.js';
import { isTerminal, type RolloutState } from '../rollout/index.js';
import {
  CONTROLLER_STATE_FILE,
  ControllerStateStore,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  withHealthBaseline,
  withRollout,
  writeFileAtomic,
} from '../state/index.js';
import { type CompiledCommit, compileCommit } from './compile-commit.js';
import { EventLog } from './event-log.js';
import { prepareRollout } from './prepare-rollout.js';
import { findPreviousDesired } from './previous-desired.js';
import { queryStatuses } from './query-statuses.js';
import { captureHealthBaseline, healthBeforeOf } from './rollout-baseline.js';
import { type RolloutRun, type RunNotice, resumeRolloutRun, runRollout } from './run-rollout.js';
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
  #good: Good | undefined;
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
  readonly #now: () => number;

  constructor(readonly options: ControllerDaemonOptions) {
    this.#now = options.now ?? Date.now;
  }

  get state() {
    return this.#store.state;
  }

  /** The rollout in progress (settles when it is finished), if any. */
  get currentRun(): RolloutRun | undefined {
    return this.#run;
  }

  async start(): Promise<void> {
    const { stateDir, repo, log } = this.options;
    await mkdir(stateDir, { recursive: true });
    this.#store = await ControllerStateStore.open(join(stateDir, CONTROLLER_STATE_FILE));
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
      const compiled = await compileCommit(this.#git, good).catch(() => undefined);
      if (compiled?.ok) this.#good = compiled;
    }
    await this.#resume().catch((e: unknown) =>
      this.#failed('resuming the rollout', this.#store.state.rollout?.plan.commit ?? null, e),
    );
    this.#startIfNeverStarted();
    this.triggerFetch();
    this.#every(this.options.pollIntervalMs, () => this.triggerFetch());
    this.#every(this.options.statusPollIntervalMs, () => void this.pollStatus());
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
    });
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
    for (const [site, r] of reports) this.reports.set(site, r);
    this.#statusChanged();
    const retry = this.#sitesToRetry(good, reports);
    if (retry.size > 0) {
      this.options.log.info(
        { commit: good.commit, sites: [...retry] },
        'retrying the sites the finished rollout could not reach',
      );
      void this.#enqueue('retrying unreachable sites', good.commit, () => this.#startRollout(good, retry));
    }
  }

  /**
   * After a rollout of the commit in force finished `done`: the sites whose last outcome
   * for this commit was `unreachable` (no answer, or no outcome within the site timeout) and
   * that now answer, are not on the commit's state and hold nothing pending. A site that
   * refused, failed, was not confirmed, reverted or turned unhealthy is left alone (D77).
   */
  #sitesToRetry(good: Good, reports: ReadonlyMap<string, SiteReport>): Set<string> {
    const last = this.#store.state.rollout;
    const retry = new Set<string>();
    if (this.#run || last?.phase !== 'done' || last.plan.commit !== good.commit) return retry;
    for (const s of good.fleet.sites) {
      const attempted = this.#store.state.sites[s.name]?.lastAttempted;
      if (attempted?.commit !== good.commit || attempted.outcome !== 'unreachable') continue;
      const r = reports.get(s.name);
      const behind =
        r?.reachable === true &&
        r.status?.applied?.hash !== good.desired.get(s.name)?.hash &&
        !r.status?.pending;
      if (behind) retry.add(s.name);
    }
    return retry;
  }

  #every(ms: number, run: () => void): void {
    const t = setInterval(run, ms);
    t.unref?.();
    this.#timers.push(t);
  }

  #event(event: Omit<ApiEvent, 'at'>): void {
    this.events.add({ at: this.#now(), ...event });
    this.#statusChanged();
  }

  /** Write status.json soon (coalesced), so `uplink status --state-dir` sees the daemon's view. */
  #statusChanged(): void {
    if (this.#statusWrite || this.#stopped) return;
    this.#statusWrite = setTimeout(() => {
      this.#statusWrite = undefined;
      void writeFileAtomic(
        join(this.options.stateDir, STATUS_FILE),
        `${JSON.stringify(this.status())}\n`,
      ).catch((e: unknown) => this.options.log.warn({ err: String(e) }, 'cannot write status.json'));
    }, 200);
    this.#statusWrite.unref?.();
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
    const compiled = await compileCommit(this.#git, head, this.options.signatures);
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
    this.#store.update((s) => recordGoodCommit(s, head));
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

  /** Start a rollout of `compiled` (of the sites in `only`, for a retry). */
  async #startRollout(compiled: Good, only?: ReadonlySet<string>): Promise<void> {
    const previous = this.#run;
    if (this.#stopped || (previous && !isTerminal(previous.state()))) return;
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
    const prepared = await prepareRollout({
      compiled,
      transport: this.options.transport,
      concurrency: this.options.concurrency,
      reports: this.reports,
      freshForMs: this.options.freshForMs,
      now: this.#now,
      ...(only ? { only } : {}),
    });
    for (const [site, r] of prepared.reports) this.reports.set(site, r);
    const planned = prepared.plan.waves.reduce((n, w) => n + w.sites.length, 0);
    this.options.log.info(
      {
        commit: compiled.commit,
        planned,
        unchanged: prepared.plan.unchanged.length,
        statusCalls: prepared.asked,
      },
      'rollout planned',
    );
    this.#event({
      level: 'info',
      kind: 'rollout-started',
      message: `rollout of ${compiled.commit.slice(0, 12)}: ${planned} site(s) to change, ${prepared.plan.unchanged.length} unchanged`,
      commit: compiled.commit,
    });
    if (planned > 0) {
      // On disk before the first apply: after it the agents report the health the change left.
      this.#store.update((s) =>
        withHealthBaseline(s, captureHealthBaseline(prepared.plan, prepared.reports)),
      );
      await this.#store
        .flush()
        .catch((e: unknown) =>
          this.options.log.warn(
            { commit: compiled.commit, err: e instanceof Error ? e.message : String(e) },
            'cannot persist the health baseline; a restart during this rollout would compare with later health',
          ),
        );
    }
    this.#launch(compiled, (options) => runRollout(prepared.plan, { ...options, reports: prepared.reports }));
  }

  #launch(
    compiled: Good,
    start: (options: Omit<Parameters<typeof runRollout>[1], 'reports'>) => RolloutRun,
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
    void run.done.then(async (final) => {
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
    if (record) this.#store.update((s) => recordSiteOutcome(s, record.site, record.record));
    switch (n.type) {
      case 'siteOutcome': {
        this.metrics.applyDuration.observe({ outcome: n.outcome }, n.durationMs / 1000);
        const ok = n.outcome === 'applied' || n.outcome === 'unchanged';
        if (!ok) this.metrics.failures.inc({ kind: n.outcome });
        this.#event({
          level: ok ? 'info' : 'warn',
          kind: ok ? 'site-applied' : 'site-failed',
          message: `${n.site}: ${n.outcome}${n.error ? `: ${n.error}` : ''}`,
          site: n.site,
          wave: n.wave,
          commit,
        });
        break;
      }
      case 'unhealthy': {
        this.metrics.failures.inc({ kind: 'unhealthy' });
        this.#event({
          level: 'warn',
          kind: 'site-unhealthy',
          message: `${n.site}: ${n.reason}`,
          site: n.site,
          wave: n.wave,
          commit,
        });
        break;
      }
      case 'rolledBack':
        this.#event({
          level: n.ok ? 'info' : 'error',
          kind: n.ok ? 'rolled-back' : 'rollback-failed',
          message: `${n.site}: ${n.ok ? 'rolled back' : `rollback failed: ${n.error}`}`,
          site: n.site,
          commit,
        });
        break;
      case 'action': {
        const a = n.action;
        if (a.type === 'wavePassed')
          this.#event({
            level: 'info',
            kind: 'wave-passed',
            message: `wave ${a.wave} passed`,
            wave: a.wave,
            commit,
          });
        else if (a.type === 'halt')
          this.#event({ level: 'error', kind: 'halted', message: a.halt.reason, wave: a.halt.wave, commit });
        else if (a.type === 'done')
          this.#event({
            level: 'info',
            kind: 'done',
            message: `rollout of ${commit.slice(0, 12)} done`,
            commit,
          });
        else if (a.type === 'superseded')
          this.#event({
            level: 'info',
            kind: 'superseded',
            message: `superseded by ${a.by.slice(0, 12)}`,
            commit,
          });
        else if (a.type === 'startBake')
          this.#event({
            level: 'info',
            kind: 'baking',
            message: `wave ${a.wave} baking for ${a.bakeMs} ms`,
            wave: a.wave,
            commit,
          });
        break;
      }
    }
  }

  /** The desired state a site had before: compile the commit its last generation came from. */
  #previousDesired(site: string, hash: string): Promise<DesiredState | undefined> {
    return findPreviousDesired(this.#git, site, hash, this.#store.state, this.reports.get(site));
  }

  async #resume(): Promise<void> {
    const saved = this.#store.state.rollout;
    if (!saved || isTerminal(saved)) return;
    const compiled = await compileCommit(this.#git, saved.plan.commit).catch(() => undefined);
    if (!compiled?.ok) {
      this.options.log.error(
        { commit: saved.plan.commit },
        'cannot resume the persisted rollout: its commit does not compile',
      );
      return;
    }
    const sites = saved.perSite.map((p) => compiled.sites.get(p.site)).filter((s) => s !== undefined);
    const { reports } = await queryStatuses({
      sites,
      transport: this.options.transport,
      concurrency: this.options.concurrency,
      previous: this.reports,
      now: this.#now,
    });
    for (const [site, r] of reports) this.reports.set(site, r);
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
    const healthBefore = healthBeforeOf(saved, this.#store.state.healthBaseline);
    if (!healthBefore)
      this.options.log.warn(
        { commit: saved.plan.commit },
        'no health baseline persisted for this rollout (an older state file, a failed write, or a stop before the first apply): the bake check compares with the health reported after the restart',
      );
    if (!this.#good) this.#good = compiled;
    this.#launch(compiled, (options) =>
      resumeRolloutRun(saved as RolloutState, {
        ...options,
        reports,
        ...(healthBefore ? { healthBefore } : {}),
      }),
    );
  }
}

/** A repository URL without its userinfo (`https://user:TOKEN@host/…` → `https://host/…`), for status and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** Every `scheme://userinfo@` in a message (git's errors quote the URL) without the userinfo. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]*@/gi, '$1');
}
