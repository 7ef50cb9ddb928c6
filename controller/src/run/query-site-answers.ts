/**
 * Every site's status answer for a drift report (`uplink drift`), asked over the same SSH
 * status path as `uplink run` (site-transport.ts, query-statuses.ts): one connection per
 * site, bounded concurrency; a site that cannot be asked is an answer with its error, so one
 * unreachable router never hides the others' verdicts.
 */
import { compileSite } from '../compile/compile-site.js';
import type { SiteStatusAnswer } from '../report/index.js';
import type { ValidSite } from '../spec/valid-site.js';
import { queryStatuses } from './query-statuses.js';
import type { SiteTransport } from './site-transport.js';

export async function querySiteAnswers(
  sites: readonly ValidSite[],
  transport: SiteTransport,
  concurrency: number,
  now: () => number = Date.now,
): Promise<SiteStatusAnswer[]> {
  const started = new Map<string, number>();
  const timed: SiteTransport = {
    ...transport,
    status: (site, options) => {
      started.set(site.name, now());
      return transport.status(site, options);
    },
  };
  const { reports } = await queryStatuses({ sites, transport: timed, concurrency, previous: new Map(), now });
  return sites.map((site) => {
    const r = reports.get(site.name)!;
    const base = {
      site: site.name,
      host: site.management.address,
      desiredHash: compileSite(site).hash,
      durationMs: r.at - (started.get(site.name) ?? r.at),
    };
    return r.reachable && r.status
      ? { ...base, status: r.status }
      : { ...base, error: { kind: r.errorKind ?? 'internal', message: r.error ?? 'no answer' } };
  });
}
