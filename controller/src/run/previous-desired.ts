/**
 * The desired state a site had before this rollout, for `rollbackOnFailure`: compile the
 * commit it last applied (from the controller's history, or from the generation the agent
 * reports — `<commit>-<hash12>`) and keep the site's state if its hash is the one expected.
 */
import type { DesiredState } from '#agent/model';
import type { GitSource } from '../git/index.js';
import type { ControllerState } from '../state/index.js';
import { compileCommit } from './compile-commit.js';
import { commitOfGeneration, type SiteReport } from './site-report.js';

export async function findPreviousDesired(
  git: GitSource,
  site: string,
  hash: string,
  state: ControllerState | undefined,
  report: SiteReport | undefined,
): Promise<DesiredState | undefined> {
  const candidates = new Set<string>();
  const history = state?.sites[site];
  if (history?.lastApplied?.hash === hash) candidates.add(history.lastApplied.commit);
  const reported = report?.status?.applied;
  const fromGeneration = reported ? commitOfGeneration(reported.generation) : undefined;
  if (fromGeneration) candidates.add(fromGeneration);
  for (const commit of candidates) {
    const compiled = await compileCommit(git, commit).catch(() => undefined);
    const desired = compiled?.ok ? compiled.desired.get(site) : undefined;
    if (desired?.hash === hash) return desired;
  }
  return undefined;
}
