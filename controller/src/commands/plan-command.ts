/**
 * `uplink plan --base REV [--head REV]`: read both revisions from git (objects only, no
 * checkout), validate and compile each, and print what changes per site. Offline.
 * Exit 0 no change, 1 changes, 2 head invalid or usage error. A base that does not
 * resolve is a usage error (a typo must not read as "every site is new"); a base without
 * a fleet makes every site new.
 */
import { resolve } from 'node:path';
import { ExitCode } from '../errors.js';
import { GitSource } from '../git/index.js';
import {
  assembleFleetPlan,
  type PlannedRevision,
  planExitCode,
  renderPlanJson,
  renderPlanMarkdown,
  renderPlanText,
} from '../plan/index.js';
import { FleetCache } from '../spec/fleet-cache.js';
import { loadFleet } from '../spec/load-fleet.js';

export interface PlanOptions {
  repo: string;
  base: string;
  head: string;
  format: 'text' | 'markdown' | 'json';
}

export async function planCommand(opts: PlanOptions): Promise<void> {
  const git = await GitSource.open(resolve(opts.repo));
  // Base and head share what did not change between them: parsed, checked and compiled once (D151).
  const cache = new FleetCache();
  const read = async (rev: string): Promise<PlannedRevision> => {
    const commit = await git.resolveRev(rev);
    const files = await git.readFleetFilesAt(commit);
    return { rev, commit, load: loadFleet(files, cache), files: [...files.keys()] };
  };
  const base = await read(opts.base);
  const head = await read(opts.head);
  const plan = assembleFleetPlan(base, head, (site) => cache.compile(site));
  const render =
    opts.format === 'json'
      ? renderPlanJson
      : opts.format === 'markdown'
        ? renderPlanMarkdown
        : renderPlanText;
  process.stdout.write(render(plan));
  const code = planExitCode(plan);
  if (code !== 0) throw new ExitCode(code);
}
