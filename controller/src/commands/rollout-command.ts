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
import { beginRollout } from '../run/begin-rollout.js';
import { compileCommit } from '../run/compile-commit.js';
import { noticeEffects } from '../run/notice-effects.js';
import { findPreviousDesired } from '../run/previous-desired.js';
import type { RunLog, RunNotice } from '../run/run-rollout.js';
import { siteRecordOf } from '../run/site-record.js';
import type { SiteReport } from '../run/site-report.js';
import { createSshSiteTransport } from '../run/site-transport.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { emptyControl, readControl } from '../state/control-file.js';
import {
  CONTROLLER_STATE_FILE,
  ControllerStateStore,
  recordFinishedRollout,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  withRollout,
} from '../state/index.js';
import { TimelineStore } from '../state/timeline-store.js';
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
  const timeline = stateDir ? await TimelineStore.open(join(stateDir, 'timeline')) : undefined;
  // `uplink suspend` holds for this command too when it shares the controller's state dir (D126).
  const control = stateDir ? await readControl(stateDir) : emptyControl();
  if (control.fleet) {
    process.stderr.write(
      `uplink: rollouts are suspended by ${control.fleet.by} (${control.fleet.reason}); run \`uplink resume\` first\n`,
    );
    throw new ExitCode(1);
  }

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
        // The same site timelines `uplink run` keeps, when the state dir is shared (D127).
        const entry = noticeEffects(n, commit).timeline;
        if (entry && timeline) timeline.append(entry.site, [{ at: Date.now(), ...entry.entry }]);
        progress.notice(n);
      },
    };
    store?.update((s) => recordGoodCommit(s, commit, Date.now()));
    const saved = store?.state.rollout;
    const resume = saved && !isTerminal(saved) && saved.plan.commit === commit ? saved : undefined;
    const suspendedSites = Object.keys(control.sites);
    const begun = await beginRollout({
      compiled,
      transport,
      concurrency,
      now: Date.now,
      reports: new Map(),
      freshForMs: 0,
      ...(store ? { store } : {}),
      ...(resume ? { resume } : {}),
      ...(suspendedSites.length > 0 ? { plan: { exclude: new Set(suspendedSites) } } : {}),
      warn: (message) => progress.line(message),
    });
    for (const [site, report] of begun.reports) known.set(site, report);
    if (begun.resumed) progress.line(`resuming the rollout of ${commit.slice(0, 12)}`);
    else {
      const waves = begun.plan.waves;
      progress.line(
        `rollout of ${commit.slice(0, 12)}: ${begun.planned} site(s) to change in ${waves.length} wave(s), ${begun.plan.unchanged.length} unchanged${begun.plan.suspended ? `, ${begun.plan.suspended.length} suspended (${begun.plan.suspended.join(', ')})` : ''}`,
      );
      const standIn = waves.find((w) => w.standInFrom !== undefined);
      if (standIn)
        progress.line(
          `${standIn.name}: no site of the canary wave changes; ${standIn.sites.map((s) => s.site).join(', ')} (from ${standIn.standInFrom}) go first in its place, with its concurrency, failure budget and bake`,
        );
    }
    const run = begun.start(base);
    const final = await run.done;
    if (final.phase !== 'running' && final.phase !== 'baking')
      store?.update((st) =>
        recordFinishedRollout(st, {
          commit,
          phase: final.phase as 'done' | 'halted' | 'superseded' | 'suspended',
          trigger: final.plan.trigger ?? 'commit',
          at: Date.now(),
        }),
      );
    await store?.flush();
    await timeline?.flush();
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
