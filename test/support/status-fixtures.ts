/**
 * Status documents built the way the daemon builds them (buildApiStatus over agent answers
 * checked against the protocol's schema), with one site in each state of the vocabulary —
 * for the CLI's exit codes and the views that must agree.
 */
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import type { ApiStatus } from '../../controller/src/http/api-status.js';
import { buildApiStatus } from '../../controller/src/http/build-api-status.js';
import { breakGlassGeneration } from '../../controller/src/report/generation.js';
import type { SiteState } from '../../controller/src/report/site-state.js';
import {
  reportFromStatus,
  type SiteReport,
  unreachableReport,
} from '../../controller/src/run/site-report.js';
import {
  type ControllerState,
  emptyControllerState,
  recordGoodCommit,
  recordSiteOutcome,
} from '../../controller/src/state/index.js';

export const FIXTURE_COMMIT = 'abc123def4567890abc123def4567890abc12345';
const hash = (site: string) =>
  (site.length.toString(16) + site.replace(/[^a-f0-9]/g, 'f')).padEnd(64, 'e').slice(0, 64);
const OTHER = '9'.repeat(64);

function provider(name: string, over: Partial<ProviderHealth> = {}): ProviderHealth {
  return {
    name,
    state: 'up',
    since: 1_000,
    probing: true,
    latencyMs: 1.2,
    loss: 0,
    transitions: [],
    ...over,
  };
}

function answer(site: string, applied: string, over: Partial<StatusResult> = {}): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site,
    applied: { generation: `${FIXTURE_COMMIT}-${applied.slice(0, 12)}`, hash: applied, site, at: 1_000 },
    pending: null,
    lastRevert: null,
    owned: { rules: 3, routes: 2, nftRules: 4, sysctls: 1 },
    facts: { interfaces: 3, providers: [] },
    health: [provider('isp1')],
    drift: { policy: 'report', checkedAt: 4_000, items: [], shadowed: [], heals: 0, lastHeal: null },
    now: 5_000,
    ...over,
  });
}

/** What the controller knows of a site in `state` (named after it). */
function siteIn(
  state: SiteState,
  now: number,
): { report?: SiteReport; record?: Parameters<typeof recordSiteOutcome>[2]; rolloutPending?: boolean } {
  const site = state;
  const h = hash(site);
  switch (state) {
    case 'in-sync':
      return { report: reportFromStatus(answer(site, h), now) };
    case 'unknown':
      return {};
    case 'unreachable':
      return { report: unreachableReport('connect ECONNREFUSED 192.0.2.9:22', now) };
    case 'failed':
      return {
        report: reportFromStatus(answer(site, OTHER), now - 10),
        record: {
          generation: 'g',
          hash: h,
          commit: FIXTURE_COMMIT,
          at: now,
          outcome: 'refused',
          error: 'management-path',
        },
      };
    case 'drifted':
      return {
        report: reportFromStatus(
          answer(site, h, {
            drift: {
              policy: 'report',
              checkedAt: 4_000,
              items: [
                {
                  object: 'rule priority 30000',
                  kind: 'missing',
                  expected: 'lookup 200',
                  found: null,
                  firstSeen: 3_000,
                },
              ],
              shadowed: [],
              heals: 0,
              lastHeal: null,
            },
          }),
          now,
        ),
      };
    case 'degraded':
      return {
        report: reportFromStatus(
          answer(site, h, {
            health: [
              provider('isp1', {
                state: 'down',
                loss: 1,
                latencyMs: null,
                transitions: [{ at: 4_000, from: 'up', to: 'down', reason: '3 failed rounds in a row' }],
              }),
            ],
          }),
          now,
        ),
      };
    case 'overridden':
      return {
        report: reportFromStatus(
          answer(site, OTHER, {
            applied: {
              generation: breakGlassGeneration(
                'alice@example.net',
                'isp1 down',
                `abcdef123456+dirty-${OTHER.slice(0, 12)}`,
              ).generation,
              hash: OTHER,
              site,
              at: 4_000,
            },
          }),
          now,
        ),
      };
    case 'out-of-date':
      return { report: reportFromStatus(answer(site, OTHER), now) };
    case 'rolling-out':
      return { report: reportFromStatus(answer(site, OTHER), now), rolloutPending: true };
  }
}

/** A status document whose sites are named after, and in, the states given. */
export function statusWithSites(
  states: readonly SiteState[],
  now = 5_000,
  extra: (s: ControllerState) => ControllerState = (s) => s,
): ApiStatus {
  let state = recordGoodCommit(emptyControllerState(), FIXTURE_COMMIT, 1_000);
  const reports = new Map<string, SiteReport>();
  const pending: string[] = [];
  for (const s of states) {
    const f = siteIn(s, now);
    if (f.report) reports.set(s, f.report);
    if (f.record) state = recordSiteOutcome(state, s, f.record);
    if (f.rolloutPending) pending.push(s);
  }
  if (pending.length > 0)
    state = {
      ...state,
      rollout: {
        plan: {
          commit: FIXTURE_COMMIT,
          waves: [
            {
              name: 'rest',
              sites: pending.map((p) => ({ site: p, hash: hash(p), reason: 'changed' as const })),
              concurrency: 1,
              maxFailures: 0,
              bakeMs: 0,
            },
          ],
          unchanged: [],
          rollbackOnFailure: false,
          confirmWithinMs: 30_000,
          siteTimeoutMs: 120_000,
        },
        waveIndex: 0,
        perSite: pending.map((p) => ({ site: p, status: 'pending' as const, attempts: 0 })),
        phase: 'running',
      },
    };
  state = extra(state);
  return buildApiStatus({
    now,
    version: '0.1.0',
    controller: {
      repo: '/srv/fleet.git',
      branch: 'main',
      pollIntervalMs: 30_000,
      lastFetchAt: now,
      lastFetchError: null,
      signatureVerification: false,
    },
    state,
    desiredHashes: new Map(states.map((s) => [s, hash(s)] as const)),
    reports,
    events: [],
  });
}
