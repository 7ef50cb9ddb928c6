/**
 * `uplink rollout`: one rollout of a commit, then exit — 0 done, 1 halted (or the commit is
 * invalid/refused), 2 usage. The repository is a local clone (`--repo`, read in place, no
 * fetch) or the configured remote (`--config`, fetched into the state dir's mirror). With
 * `--state-dir` (or a config) the controller state is persisted and a rollout of the same
 * commit interrupted earlier is resumed from what the agents report. On a TTY a progress
 * line is redrawn; otherwise one plain line per event. Logs (pino JSON) go to stderr with
 * `--log`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { type ControllerConfig, loadControllerConfig } from '../config/index.js';
import { ExitCode, UsageError } from '../errors.js';
import { GitSource } from '../git/index.js';
import { isTerminal, type RolloutState } from '../rollout/index.js';
import { compileCommit } from '../run/compile-commit.js';
import { prepareRollout } from '../run/prepare-rollout.js';
import { findPreviousDesired } from '../run/previous-desired.js';
import { queryStatuses } from '../run/query-statuses.js';
import { captureHealthBaseline, healthBeforeOf } from '../run/rollout-baseline.js';
import { type RunLog, type RunNotice, resumeRolloutRun, runRollout } from '../run/run-rollout.js';
import { siteRecordOf } from '../run/site-record.js';
import type { SiteReport } from '../run/site-report.js';
import { createSshSiteTransport } from '../run/site-transport.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import {
  CONTROLLER_STATE_FILE,
  ControllerStateStore,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  withHealthBaseline,
  withRollout,
} from '../state/index.js';
import { readSshIdentity } from './read-ssh-identity.js';

export interface RolloutOptions {
  repo?: string;
  rev?: string;
  config?: string;
  stateDir?: string;
  identity?: string;
  knownHosts?: string;
  concurrency?: string;
  allowManagementChange?: boolean;
  log?: boolean;
  format: 'text' | 'json';
}

export async function rolloutCommand(opts: RolloutOptions): Promise<void> {
  const config: ControllerConfig | undefined = opts.config
    ? await loadControllerConfig(opts.config)
    : undefined;
  if (!opts.repo && !config)
    throw new UsageError('rollout: pass --repo DIR (a clone of the fleet repository) or --config FILE');
  const stateDir = opts.stateDir ? resolve(opts.stateDir) : config?.stateDir;
  const git = opts.repo
    ? await GitSource.open(opts.repo)
    : await GitSource.mirror({
        url: config!.repo.url,
        branch: config!.repo.branch,
        dir: join(stateDir!, 'fleet.git'),
        ...(config!.repo.sshCommand ? { env: { GIT_SSH_COMMAND: config!.repo.sshCommand } } : {}),
      });
  const head = await git.fetch();
  const commit = opts.rev ? await git.resolveRev(opts.rev) : head;
  const logger = opts.log ? pino({ level: config?.logLevel ?? 'info' }, pino.destination(2)) : undefined;
  const log: RunLog = logger ?? { info() {}, warn() {}, error() {} };
  if (stateDir) await mkdir(stateDir, { recursive: true });
  const store = stateDir ? await ControllerStateStore.open(join(stateDir, CONTROLLER_STATE_FILE)) : undefined;

  const signatures = config?.signatures.enabled
    ? {
        ...(config.signatures.keyring ? { gpgHome: config.signatures.keyring } : {}),
        allowedFingerprints: config.signatures.allowedKeys,
      }
    : null;
  const compiled = await compileCommit(git, commit, signatures);
  if (!compiled.ok) {
    for (const d of compiled.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.stderr.write(`uplink: ${compiled.message}\n`);
    store?.update((s) =>
      recordInvalidCommit(s, {
        commit,
        at: Date.now(),
        reason: compiled.reason,
        message: compiled.message,
        diagnostics: compiled.diagnostics,
      }),
    );
    await store?.flush();
    throw new ExitCode(1);
  }

  const privateKey = await readSshIdentity(opts.identity ?? config?.ssh.identity);
  const knownHostsFile = opts.knownHosts ?? config?.ssh.knownHosts;
  const knownHosts = knownHostsFile ? await readFile(knownHostsFile, 'utf8') : undefined;
  const concurrency = Number(opts.concurrency ?? config?.concurrency ?? 32);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--concurrency ${opts.concurrency}: write a whole number ≥ 1`);
  const transport = createSshSiteTransport({
    privateKey,
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    ...(config ? { connect: { connectTimeoutMs: config.ssh.connectTimeoutMs } } : {}),
    ...(logger ? { log: logger } : {}),
    allowManagementChange: opts.allowManagementChange === true || config?.allowManagementChange === true,
    // One rollout, then exit: a changed site's apply reuses its status connection.
    keepStatusConnectionsMs: 120_000,
  });
  try {
    // With --format json stdout carries only the final document; the event lines go to stderr.
    const progress =
      opts.format === 'json'
        ? new ProgressDisplay(false, process.stderr)
        : new ProgressDisplay(process.stdout.isTTY === true, process.stdout);
    // Filled with the agents' answers before the run starts; rollbackOnFailure compiles from them.
    const known = new Map<string, SiteReport>();
    const base = {
      sites: compiled.sites,
      previousDesired: (site: string, hash: string) =>
        findPreviousDesired(git, site, hash, store?.state, known.get(site)),
      desired: compiled.desired,
      transport,
      log,
      concurrency,
      onState: (s: RolloutState) => {
        store?.update((st) => withRollout(st, s));
        progress.state(s);
      },
      onNotice: (n: RunNotice) => {
        const record = siteRecordOf(n, commit, compiled.desired, Date.now());
        if (record) store?.update((st) => recordSiteOutcome(st, record.site, record.record));
        progress.notice(n);
      },
    };
    store?.update((s) => recordGoodCommit(s, commit));
    const saved = store?.state.rollout;
    let run: ReturnType<typeof runRollout>;
    if (saved && !isTerminal(saved) && saved.plan.commit === commit) {
      // Resume: the agents' reports win over the persisted state.
      const sites = saved.perSite.map((p) => compiled.sites.get(p.site)).filter((s) => s !== undefined);
      const { reports } = await queryStatuses({
        sites,
        transport,
        concurrency,
        previous: new Map(),
        now: Date.now,
      });
      for (const [site, report] of reports) known.set(site, report);
      progress.line(`resuming the rollout of ${commit.slice(0, 12)}`);
      const healthBefore = healthBeforeOf(saved, store?.state.healthBaseline);
      if (!healthBefore)
        progress.line(
          'no health baseline persisted for this rollout (an older state file, or a stop before the first apply): the bake check compares with the health reported now',
        );
      run = resumeRolloutRun(saved, { ...base, reports, ...(healthBefore ? { healthBefore } : {}) });
    } else {
      const prepared = await prepareRollout({
        compiled,
        transport,
        concurrency,
        reports: new Map(),
        freshForMs: 0,
        now: Date.now,
      });
      for (const [site, report] of prepared.reports) known.set(site, report);
      const planned = prepared.plan.waves.reduce((n, w) => n + w.sites.length, 0);
      progress.line(
        `rollout of ${commit.slice(0, 12)}: ${planned} site(s) to change in ${prepared.plan.waves.length} wave(s), ${prepared.plan.unchanged.length} unchanged`,
      );
      if (store && planned > 0) {
        // On disk before the first apply: after it the agents report the health the change left (D86).
        store.update((st) => withHealthBaseline(st, captureHealthBaseline(prepared.plan, prepared.reports)));
        await store.flush();
      }
      run = runRollout(prepared.plan, { ...base, reports: prepared.reports });
    }
    const final = await run.done;
    await store?.flush();
    progress.end();
    if (opts.format === 'json') process.stdout.write(`${JSON.stringify(final, null, 2)}\n`);
    else {
      const confirmed = final.perSite.filter((p) => p.status === 'confirmed').length;
      process.stdout.write(
        `rollout ${final.phase}: ${confirmed}/${final.perSite.length} confirmed, ${final.plan.unchanged.length} unchanged${final.halt ? `; ${final.halt.reason}` : ''}\n`,
      );
    }
    if (final.phase !== 'done') throw new ExitCode(1);
  } finally {
    transport.close?.();
  }
}

/** One line per event, or a redrawn progress line on a TTY (events still printed above it). */
class ProgressDisplay {
  #last = '';
  constructor(
    readonly tty: boolean,
    readonly out: NodeJS.WriteStream,
  ) {}

  line(text: string): void {
    this.#clear();
    this.out.write(`${text}\n`);
    this.#redraw();
  }

  notice(n: RunNotice): void {
    if (n.type === 'siteOutcome')
      this.line(
        `${n.wave}: ${n.site} ${n.outcome}${n.error ? `: ${n.error}` : ''} (${(n.durationMs / 1000).toFixed(1)} s)`,
      );
    else if (n.type === 'unhealthy') this.line(`${n.wave}: ${n.site} unhealthy after the bake: ${n.reason}`);
    else if (n.type === 'rolledBack')
      this.line(`${n.site}: ${n.ok ? 'rolled back' : `rollback failed: ${n.error}`}`);
    else {
      const a = n.action;
      if (a.type === 'start') this.line(`${a.wave}: applying ${a.sites.map((s) => s.site).join(', ')}`);
      else if (a.type === 'startBake') this.line(`${a.wave}: baking ${(a.bakeMs / 1000).toFixed(1)} s`);
      else if (a.type === 'wavePassed') this.line(`${a.wave}: passed`);
      else if (a.type === 'halt') this.line(`halted: ${a.halt.reason}`);
      else if (a.type === 'superseded') this.line(`superseded by ${a.by.slice(0, 12)}`);
    }
  }

  state(s: RolloutState): void {
    if (!this.tty) return;
    const done = s.perSite.filter((p) => p.status !== 'pending' && p.status !== 'applying').length;
    const inFlight = s.perSite.filter((p) => p.status === 'applying').length;
    const wave = s.plan.waves[s.waveIndex]?.name ?? '-';
    const width = 30;
    const filled = s.perSite.length === 0 ? width : Math.round((done / s.perSite.length) * width);
    this.#clear();
    this.#last = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${s.perSite.length} wave ${wave} ${s.phase}${inFlight ? `, ${inFlight} in flight` : ''}`;
    this.#redraw();
  }

  end(): void {
    this.#clear();
    this.#last = '';
  }

  #clear(): void {
    if (this.tty && this.#last) this.out.write('\r\x1b[2K');
  }

  #redraw(): void {
    if (this.tty && this.#last) this.out.write(this.#last);
  }
}
