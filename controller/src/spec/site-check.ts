/**
 * What every named check of a site (check-site.ts) shares: the merged site, where to report,
 * and how to find where a merged field was written.
 */
import type { Diagnostic } from './diagnostic.js';
import type { Merged, MergedSite, Origin } from './merge-groups.js';
import { diagnosticAt } from './parse-yaml-file.js';

export interface SiteCheck {
  readonly site: MergedSite;
  /** `site NAME`, for messages about the site as a whole. */
  readonly subject: string;
  readonly diagnostics: Diagnostic[];
  report(origin: Origin | undefined, severity: Diagnostic['severity'], message: string): void;
  err(origin: Origin | undefined, message: string): void;
  /** Where a merged item's field was last written (else the item itself). */
  field<T>(item: Merged<T>, name: string): Origin;
}

export function siteCheck(site: MergedSite): SiteCheck {
  const diagnostics: Diagnostic[] = [];
  const subject = `site ${site.spec.name}`;
  const report: SiteCheck['report'] = (origin, severity, message) => {
    const o = origin ?? { parsed: site.parsed, path: [] };
    // Name the site when the finding sits in a shared group file.
    const text = o.parsed === site.parsed ? message : `${subject}: ${message}`;
    diagnostics.push(diagnosticAt(o.parsed, o.path, severity, text, { key: o.key === true }));
  };
  return {
    site,
    subject,
    diagnostics,
    report,
    err: (origin, message) => report(origin, 'error', message),
    field: (item, name) => item.fields[name] ?? item.origin,
  };
}

/** The whole site's anchor: its name in its own file. */
export function siteOrigin(check: SiteCheck): Origin {
  return { parsed: check.site.parsed, path: ['name'] };
}
