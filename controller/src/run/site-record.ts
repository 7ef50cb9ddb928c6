/**
 * The controller state's per-site record (`lastAttempted`/`lastApplied`) a rollout notice
 * makes: an apply's outcome, a site that confirmed and then failed its bake check, or a site
 * put back on its previous state by rollbackOnFailure (which it then runs). One
 * place, so `uplink run` and `uplink rollout --state-dir` write the same history.
 */
import type { DesiredState } from '#agent/model';
import type { SiteRecord } from '../state/index.js';
import type { RunNotice } from './run-rollout.js';
import { generationFor } from './site-report.js';

export function siteRecordOf(
  n: RunNotice,
  commit: string,
  desired: ReadonlyMap<string, DesiredState>,
  at: number,
): { readonly site: string; readonly record: SiteRecord } | undefined {
  if (n.type === 'rolledBack') {
    if (!n.ok || n.generation === undefined || n.hash === undefined) return undefined;
    return {
      site: n.site,
      record: { generation: n.generation, hash: n.hash, commit, at, outcome: 'rolled-back' },
    };
  }
  if (n.type !== 'siteOutcome' && n.type !== 'unhealthy') return undefined;
  const hash = desired.get(n.site)?.hash ?? '';
  if (n.type === 'unhealthy')
    return {
      site: n.site,
      record: {
        generation: generationFor(commit, hash),
        hash,
        commit,
        at,
        outcome: 'unhealthy',
        error: n.reason,
      },
    };
  return {
    site: n.site,
    record: {
      generation: n.generation,
      hash,
      commit,
      at,
      outcome: n.outcome === 'timeout' ? 'unreachable' : n.outcome,
      ...(n.error ? { error: n.error.slice(0, 4000) } : {}),
    },
  };
}
