/**
 * What the daemon makes of one rollout notice: the event for /api/status (and the
 * webhook), the entry for the site's timeline, and the metrics to count. Pure; the daemon
 * (controller-daemon.ts) applies the effects.
 */
import type { ApiEvent } from '../http/api-status.js';
import type { TimelineEntry } from '../report/site-timeline.js';
import type { RunNotice } from './run-rollout.js';

export interface NoticeEffects {
  readonly event?: Omit<ApiEvent, 'at'>;
  readonly timeline?: { readonly site: string; readonly entry: Omit<TimelineEntry, 'at'> };
  /** Observe an apply's duration (seconds) by outcome. */
  readonly applyDuration?: { readonly outcome: string; readonly seconds: number };
  /** Count a site failure of this kind. */
  readonly failure?: string;
}

const short = (commit: string) => commit.slice(0, 12);

export function noticeEffects(n: RunNotice, commit: string): NoticeEffects {
  switch (n.type) {
    case 'siteOutcome': {
      const ok = n.outcome === 'applied' || n.outcome === 'unchanged';
      const message = `${n.site}: ${n.outcome}${n.error ? `: ${n.error}` : ''}`;
      return {
        applyDuration: { outcome: n.outcome, seconds: n.durationMs / 1000 },
        ...(ok ? {} : { failure: n.outcome }),
        event: {
          level: ok ? 'info' : 'warn',
          kind: ok ? 'site-applied' : 'site-failed',
          message,
          site: n.site,
          wave: n.wave,
          commit,
        },
        timeline: {
          site: n.site,
          entry: {
            level: ok ? 'info' : n.outcome === 'unreachable' || n.outcome === 'timeout' ? 'warn' : 'error',
            kind: ok ? 'applied' : 'apply-failed',
            generation: n.generation,
            commit,
            message: ok
              ? `${n.outcome === 'unchanged' ? 'confirmed, nothing to change' : 'applied and confirmed'}: generation ${n.generation} (wave ${n.wave})`
              : `${n.outcome} in wave ${n.wave}${n.error ? `: ${n.error}` : ''}`,
          },
        },
      };
    }
    case 'unhealthy':
      return {
        failure: 'unhealthy',
        event: {
          level: 'warn',
          kind: 'site-unhealthy',
          message: `${n.site}: ${n.reason}`,
          site: n.site,
          wave: n.wave,
          commit,
        },
        timeline: {
          site: n.site,
          entry: {
            level: 'error',
            kind: 'unhealthy',
            commit,
            message: `unhealthy after the bake of wave ${n.wave}: ${n.reason}`,
          },
        },
      };
    case 'rolledBack':
      return {
        event: {
          level: n.ok ? 'info' : 'error',
          kind: n.ok ? 'rolled-back' : 'rollback-failed',
          message: `${n.site}: ${n.ok ? 'rolled back' : `rollback failed: ${n.error}`}`,
          site: n.site,
          commit,
        },
        timeline: {
          site: n.site,
          entry: {
            level: n.ok ? 'warn' : 'error',
            kind: 'rolled-back',
            commit,
            ...(n.generation ? { generation: n.generation } : {}),
            message: n.ok ? `rolled back to generation ${n.generation}` : `rollback failed: ${n.error}`,
          },
        },
      };
    case 'action': {
      const a = n.action;
      switch (a.type) {
        case 'wavePassed':
          return {
            event: {
              level: 'info',
              kind: 'wave-passed',
              message: `wave ${a.wave} passed`,
              wave: a.wave,
              commit,
            },
          };
        case 'halt':
          return {
            event: { level: 'error', kind: 'halted', message: a.halt.reason, wave: a.halt.wave, commit },
          };
        case 'done':
          return {
            event: { level: 'info', kind: 'done', message: `rollout of ${short(commit)} done`, commit },
          };
        case 'superseded':
          return {
            event: { level: 'info', kind: 'superseded', message: `superseded by ${short(a.by)}`, commit },
          };
        case 'suspended':
          return {
            event: {
              level: 'warn',
              kind: 'rollout-suspended',
              message: `rollout of ${short(commit)} stopped at a wave boundary: rollouts are suspended`,
              commit,
            },
          };
        case 'startBake':
          return {
            event: {
              level: 'info',
              kind: 'baking',
              message: `wave ${a.wave} baking for ${a.bakeMs} ms`,
              wave: a.wave,
              commit,
            },
          };
        default:
          return {};
      }
    }
  }
}
