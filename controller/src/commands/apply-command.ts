/**
 * `uplink apply SITE...`: compile and apply sites over SSH, commit-confirmed, by hand.
 *
 * Git is the truth (D120): the spec applied must be a commit on the fleet's branch — the
 * work tree's HEAD with no uncommitted change to the fleet files, or `--rev REV` — so what a
 * router runs is always something the controller can roll out too. Anything else (an
 * uncommitted edit, a commit not on the branch, a directory outside git) is refused unless
 * `--break-glass "REASON"`: then it is applied as a manual override, and who and why are
 * recorded on the router itself, in the generation (D121). The controller shows such a site
 * as `overridden` and, with `rollout.reconcile: auto`, brings it back to git.
 *
 * Progress goes to stderr as it happens (connecting, applying, confirming over a new
 * connection, retries); a site left unconfirmed says that its router reverts by itself, and
 * at what time.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { simpleGit } from 'simple-git';
import { compileSite } from '../compile/compile-site.js';
import { loadCliDefaults } from '../config/cli-defaults.js';
import { ExitCode, UsageError } from '../errors.js';
import { breakGlassGeneration } from '../report/generation.js';
import { siteSshTarget } from '../run/site-ssh-target.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';
import {
  type ApplyOutcome,
  applyAndConfirm,
  connectSsh,
  mapWithConcurrency,
  readKnownHosts,
} from '../transport/index.js';
import { parseCliDuration } from './cli-duration.js';
import { actor } from './control-commands.js';
import { findSites } from './find-sites.js';
import { readFleetSource } from './read-fleet-source.js';
import { readSshIdentity } from './read-ssh-identity.js';

export interface ApplyOptions {
  repo: string;
  /** Apply the spec as committed at this revision instead of the working directory. */
  rev?: string;
  identity?: string;
  knownHosts?: string;
  confirmWithin?: string;
  concurrency: string;
  allowManagementChange?: boolean;
  breakGlass?: string;
  branch?: string;
  format: 'text' | 'json';
}

/** Where the applied spec came from, and whether git's truth allows applying it. */
export interface SpecOrigin {
  /** `<sha12>` of the commit (with `+dirty` for uncommitted edits), or `local` outside git. */
  readonly base: string;
  /** Why this is not git's truth (empty: it is). */
  readonly problems: readonly string[];
}

export async function applyCommand(siteNames: string[], opts: ApplyOptions): Promise<void> {
  const repo = resolve(opts.repo);
  const source = await readFleetSource(repo, opts.rev);
  const load = loadFleet(source.files);
  if (!load.fleet) {
    for (const d of load.diagnostics.filter((x) => x.severity === 'error'))
      process.stderr.write(`${formatDiagnostic(d)}\n`);
    throw new ExitCode(1);
  }
  const fleet = load.fleet;
  const sites = findSites(fleet, siteNames);
  const branch = opts.branch ?? (await loadCliDefaults()).values.branch ?? 'main';
  const originOf = specOrigin(repo, branch, source.commit);
  const keys = Promise.all([
    readSshIdentity(opts.identity),
    opts.knownHosts ? readKnownHosts(opts.knownHosts) : Promise.resolve(undefined),
  ]);
  keys.catch(() => {}); // awaited below, once git's truth allows the apply
  const origin = await originOf;
  const breakGlass = opts.breakGlass?.trim();
  if (opts.breakGlass !== undefined && !breakGlass)
    throw new UsageError(
      '--break-glass: give the reason, e.g. --break-glass "isp1 down, moving SMTP to isp2"',
    );
  if (origin.problems.length > 0 && breakGlass === undefined) {
    process.stderr.write(
      `uplink: apply refused: git is the truth, and ${origin.problems.join('; ')}.\n` +
        `  Commit the change and push it to ${branch} (the controller rolls it out), or apply it anyway as a\n` +
        `  recorded manual override: uplink apply ${siteNames.join(' ')} --break-glass "WHY"\n`,
    );
    throw new ExitCode(1);
  }
  const [privateKey, knownHosts] = await keys;
  const confirmWithinMs =
    opts.confirmWithin !== undefined
      ? parseCliDuration('--confirm-within', opts.confirmWithin, { min: 1_000, max: 3_600_000 })
      : fleet.rollout.confirmWithinMs;
  const who = breakGlass !== undefined ? await gitUser(repo) : undefined;
  const progress = opts.format === 'text' ? (line: string) => process.stderr.write(`${line}\n`) : () => {};
  if (breakGlass !== undefined) {
    const recorded = breakGlassGeneration(who!, breakGlass, `${origin.base}-000000000000`).recordedReason;
    progress(
      `break-glass by ${who}${origin.problems.length > 0 ? ` (${origin.problems.join('; ')})` : ''}: recorded on the router as "${recorded}"`,
    );
    progress(
      fleet.rollout.reconcile === 'auto'
        ? '  the controller shows the site as overridden and brings it back to git at its next status poll (rollout.reconcile: auto); `uplink suspend SITE --reason …` first keeps the override'
        : '  the controller shows the site as overridden until git is applied again (rollout.reconcile: report)',
    );
  }

  const outcomes = await mapWithConcurrency(sites, Number(opts.concurrency), async (site) => {
    const desired = compileSite(site);
    const base = `${origin.base}-${desired.hash.slice(0, 12)}`;
    const generation =
      breakGlass !== undefined ? breakGlassGeneration(who!, breakGlass, base).generation : base;
    const watch = watchApply(site.name, confirmWithinMs, progress);
    const outcome = await applyAndConfirm(
      siteSshTarget(site, privateKey, knownHosts),
      desired,
      generation,
      confirmWithinMs,
      {
        allowManagementChange: opts.allowManagementChange === true,
        connector: watch.connector,
        log: watch.log,
      },
    );
    return { ...outcome, ...watch.reverts(outcome) };
  });

  if (opts.format === 'json') process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  else for (const o of outcomes) process.stdout.write(`${formatOutcome(o)}\n`);
  if (outcomes.some((o) => o.outcome !== 'applied' && o.outcome !== 'unchanged')) throw new ExitCode(1);
}

type WatchedOutcome = ApplyOutcome & { revertsAt?: number; revertsAtMost?: boolean };

/**
 * Progress of one commit-confirmed apply, read from its connections: the first ones apply
 * (retried only before the apply was sent, each retry logged); the first connection after a
 * successful one with no retry between starts the confirm — the apply has answered and the
 * agent has armed its revert deadline. So the deadline is known to within a connection close.
 */
function watchApply(site: string, confirmWithinMs: number, progress: (line: string) => void) {
  let phase: 'apply' | 'confirm' = 'apply';
  let lastOk = false;
  let retried = false;
  let applyStarted: number | undefined;
  let confirmStarted: number | undefined;
  const clock = (ms: number) => new Date(ms).toTimeString().slice(0, 8);
  const connector: typeof connectSsh = async (target, options) => {
    if (phase === 'apply' && lastOk && !retried) {
      phase = 'confirm';
      confirmStarted = Date.now();
      progress(
        `${site}: applied; confirming over a new connection — the router reverts by itself at ${clock(confirmStarted + confirmWithinMs)} unless confirmed`,
      );
    } else if (phase === 'apply') {
      applyStarted ??= Date.now();
      progress(`${site}: connecting to ${target.host}:${target.port ?? 22} to apply`);
    }
    retried = false;
    lastOk = false;
    const connection = await connectSsh(target, options);
    lastOk = true;
    if (phase === 'apply') progress(`${site}: applying`);
    return connection;
  };
  const note = (obj: unknown, msg?: string) => {
    const o = obj as { attempt?: number; delayMs?: number; err?: { message?: string } };
    if (msg === 'transient failure; retrying') {
      retried = true;
      lastOk = false;
      progress(
        `${site}: ${phase} attempt ${o.attempt ?? '?'} failed (${o.err?.message ?? 'error'}); retrying in ${((o.delayMs ?? 0) / 1000).toFixed(1)} s`,
      );
    }
  };
  return {
    connector,
    log: { info: () => {}, debug: () => {}, warn: note as Pick<Logger, 'warn'>['warn'] },
    /** When an unconfirmed apply's router reverts: known once the confirm had started, else at most by then. */
    reverts(outcome: ApplyOutcome): Pick<WatchedOutcome, 'revertsAt' | 'revertsAtMost'> {
      if (outcome.outcome !== 'unconfirmed') return {};
      if (confirmStarted !== undefined) return { revertsAt: confirmStarted + confirmWithinMs };
      if (applyStarted !== undefined) return { revertsAt: Date.now() + confirmWithinMs, revertsAtMost: true };
      return {};
    },
  };
}

function formatOutcome(o: WatchedOutcome): string {
  const changes = o.changes !== undefined ? ` (${o.changes} change${o.changes === 1 ? '' : 's'})` : '';
  const error = o.error ? `: ${o.error.message}` : '';
  let reverts = '';
  if (o.revertsAt !== undefined) {
    const at = new Date(o.revertsAt).toTimeString().slice(0, 8);
    const inS = Math.max(0, Math.round((o.revertsAt - Date.now()) / 1000));
    reverts = o.revertsAtMost
      ? `; if the apply reached it, the router reverts by itself by ${at} (in at most ${inS} s)`
      : `; not confirmed: the router reverts by itself at ${at} (in ${inS} s)`;
  }
  return `${o.site}: ${o.outcome}${changes} generation ${o.generation}${error}${reverts}`;
}

/**
 * Whether the spec is git's truth: a commit on `branch` (as pushed, when the repository has
 * an `origin`), and — for the work tree — no uncommitted change to the fleet's files.
 */
export async function specOrigin(
  dir: string,
  branch: string,
  commit: string | undefined,
): Promise<SpecOrigin> {
  const git = simpleGit(dir);
  // Few git processes, and those that do not depend on each other at once: this runs before
  // every apply, and its time counts against the confirm window's slack.
  const head = await git.raw(['rev-parse', '--is-inside-work-tree', 'HEAD']).catch(() => '');
  const [inside, headSha] = head.trim().split('\n');
  if (inside !== 'true') {
    const bare = await git.raw(['rev-parse', '--is-bare-repository']).catch(() => '');
    if (bare.trim() !== 'true') return { base: 'local', problems: [`${dir} is not a git repository`] };
  }
  const sha = commit ?? headSha;
  if (sha === undefined || !/^[0-9a-f]{40}/.test(sha))
    return { base: 'local', problems: [`${dir} has no commit yet`] };
  const refs = [`refs/remotes/origin/${branch}`, `refs/heads/${branch}`];
  const [status, ...found] = await Promise.all([
    commit === undefined && inside === 'true'
      ? git.raw(['status', '--porcelain', '--', 'fleet.yaml', 'fleet.yml', 'groups', 'sites'])
      : Promise.resolve(''),
    // (simple-git reports a failed command only when it wrote to stderr: check the output.)
    ...refs.map((r) => git.raw(['rev-parse', '--verify', '--quiet', `${r}^{commit}`]).catch(() => '')),
  ]);
  const problems: string[] = [];
  const changed = status!
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.slice(3));
  if (changed.length > 0)
    problems.push(
      `the work tree has uncommitted changes (${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', …' : ''})`,
    );
  const at = found.findIndex((out) => /^[0-9a-f]{40}/.test(out.trim()));
  const ref = at === -1 ? undefined : refs[at]!;
  if (ref === undefined)
    problems.push(`there is no branch ${branch} here (set it with --branch or UPLINK_BRANCH)`);
  else {
    // (`merge-base --is-ancestor` answers by exit code alone, which simple-git does not report.)
    const base = await git.raw(['merge-base', sha, ref]).catch(() => '');
    if (base.trim() !== sha)
      problems.push(
        `commit ${sha.slice(0, 12)} is not on ${ref.startsWith('refs/remotes/') ? `origin/${branch} (not pushed?)` : branch}`,
      );
  }
  return { base: `${sha.slice(0, 12)}${changed.length > 0 ? '+dirty' : ''}`, problems };
}

/** Who applies: the repository's git user.email (else user.name), else user@host. */
async function gitUser(dir: string): Promise<string> {
  const git = simpleGit(dir);
  for (const key of ['user.email', 'user.name']) {
    try {
      const v = (await git.raw(['config', '--get', key])).trim();
      if (v) return v;
    } catch {
      // unset
    }
  }
  return actor();
}
