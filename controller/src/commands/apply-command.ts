import { resolve } from 'node:path';
import { simpleGit } from 'simple-git';
import { compileSite } from '../compile/compile-site.js';
import { ExitCode, UsageError } from '../errors.js';
import { siteSshTarget } from '../run/site-ssh-target.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';
import {
  type ApplyOutcome,
  applyAndConfirm,
  mapWithConcurrency,
  readKnownHosts,
} from '../transport/index.js';
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
  format: 'text' | 'json';
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
  const privateKey = await readSshIdentity(opts.identity);
  const knownHosts = opts.knownHosts ? await readKnownHosts(opts.knownHosts) : undefined;
  const confirmWithinMs =
    opts.confirmWithin !== undefined ? Number(opts.confirmWithin) * 1000 : fleet.rollout.confirmWithinMs;
  if (!Number.isFinite(confirmWithinMs) || confirmWithinMs < 1000) {
    throw new UsageError(`--confirm-within ${opts.confirmWithin}: write a number of seconds ≥ 1`);
  }
  // At --rev the files are the commit's exactly (never dirty); otherwise the work tree's HEAD.
  const commit = source.commit !== undefined ? source.commit.slice(0, 12) : await currentCommit(repo);

  const outcomes: ApplyOutcome[] = await mapWithConcurrency(sites, Number(opts.concurrency), (site) => {
    const desired = compileSite(site);
    const generation = `${commit}-${desired.hash.slice(0, 12)}`;
    return applyAndConfirm(
      siteSshTarget(site, privateKey, knownHosts),
      desired,
      generation,
      confirmWithinMs,
      { allowManagementChange: opts.allowManagementChange === true },
    );
  });

  if (opts.format === 'json') process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  else for (const o of outcomes) process.stdout.write(`${formatOutcome(o)}\n`);
  if (outcomes.some((o) => o.outcome !== 'applied' && o.outcome !== 'unchanged')) throw new ExitCode(1);
}

function formatOutcome(o: ApplyOutcome): string {
  const changes = o.changes !== undefined ? ` (${o.changes} change${o.changes === 1 ? '' : 's'})` : '';
  const error = o.error ? `: ${o.error.message}` : '';
  return `${o.site}: ${o.outcome}${changes} generation ${o.generation}${error}`;
}

/** Short commit of the fleet repo's HEAD, marked dirty when the work tree has changes; `local` outside git. */
async function currentCommit(dir: string): Promise<string> {
  try {
    const git = simpleGit(dir);
    if (!(await git.checkIsRepo())) return 'local';
    const sha = (await git.revparse(['--short=12', 'HEAD'])).trim();
    const status = await git.status();
    return status.isClean() ? sha : `${sha}+dirty`;
  } catch {
    return 'local';
  }
}
