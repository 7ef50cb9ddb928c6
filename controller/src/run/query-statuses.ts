/**
 * Asks sites for their status with bounded concurrency: one connection per site at most,
 * and none for a site whose report is fresh and already current (`skip`).
 */
import { UplinkError } from '../errors.js';
import type { ValidSite } from '../spec/valid-site.js';
import { mapWithConcurrency } from '../transport/pool.js';
import { AgentError } from '../transport/transport-errors.js';
import { reportFromStatus, type SiteReport, unreachableReport } from './site-report.js';
import type { SiteTransport } from './site-transport.js';

export interface QueryStatusesOptions {
  readonly sites: readonly ValidSite[];
  readonly transport: SiteTransport;
  readonly concurrency: number;
  readonly previous: ReadonlyMap<string, SiteReport>;
  readonly now: () => number;
  /** Sites not to ask (their previous report stands). */
  readonly skip?: (site: ValidSite) => boolean;
}

/** Returns a report per site (the previous one for skipped sites); counts the calls made. */
export async function queryStatuses(
  options: QueryStatusesOptions,
): Promise<{ reports: Map<string, SiteReport>; asked: number }> {
  const { transport, previous, now } = options;
  let asked = 0;
  const results = await mapWithConcurrency(options.sites, options.concurrency, async (site) => {
    const before = previous.get(site.name);
    if (before && options.skip?.(site)) return before;
    asked++;
    try {
      // The facts' hash: an agent whose facts are unchanged answers with the hash alone (D170).
      const factsHash = before?.facts?.hash;
      const status = await transport.status(site, factsHash === undefined ? {} : { factsHash });
      return reportFromStatus(status, now(), before);
    } catch (e) {
      // An agent that answered with an error is there: its code says what is wrong (D103).
      const code = e instanceof AgentError ? e.code : undefined;
      return unreachableReport(
        e instanceof Error ? e.message : String(e),
        now(),
        before,
        errorKindOf(e),
        code,
      );
    }
  });
  const reports = new Map<string, SiteReport>();
  options.sites.forEach((site, i) => {
    reports.set(site.name, results[i]!);
  });
  return { reports, asked };
}

/** `transport (refused)`, `refused`, `protocol`, … for a typed error; `internal` otherwise. */
export function errorKindOf(error: unknown): string {
  if (error instanceof UplinkError) {
    const reason = (error as { reason?: string }).reason;
    return reason === undefined ? error.kind : `${error.kind} (${reason})`;
  }
  return 'internal';
}
