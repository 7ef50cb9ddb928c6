/**
 * `uplink explain` over the files of a fleet repository, from whatever source they came
 * (a working directory, a git revision): path → text in, an answer or the reason there
 * is none out. Pure.
 */
import { unknownSiteMessage } from '../report/suggest-names.js';
import type { Diagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';
import type { ValidSite } from '../spec/valid-site.js';
import type { SiteViewOptions } from './build-site-view.js';
import { type Explanation, explainPacket } from './explain-packet.js';
import { parseExplainRequest, type RawExplainOptions } from './parse-explain-request.js';

export type ExplainOutcome =
  | { readonly kind: 'explained'; readonly explanation: Explanation }
  /** The site exists but does not validate: its own diagnostics. */
  | { readonly kind: 'invalid-site'; readonly diagnostics: readonly Diagnostic[] }
  /** Unknown site or a bad option: a usage error with what to write instead. */
  | { readonly kind: 'usage'; readonly message: string };

export function explainFromFiles(
  files: ReadonlyMap<string, string>,
  siteName: string,
  options: RawExplainOptions,
  viewOptions: SiteViewOptions = {},
): ExplainOutcome {
  const found = findSite(files, siteName);
  if (found.kind !== 'found') return found;
  const routerInterfaces = Object.keys(viewOptions.facts?.record.facts.interfaces ?? {});
  const request = parseExplainRequest(found.site, options, routerInterfaces);
  if (!request.ok) return { kind: 'usage', message: request.message };
  return { kind: 'explained', explanation: explainPacket(found.site, request.value, viewOptions) };
}

export type FoundSite =
  | { readonly kind: 'found'; readonly site: ValidSite }
  | { readonly kind: 'invalid-site'; readonly diagnostics: readonly Diagnostic[] }
  | { readonly kind: 'usage'; readonly message: string };

/** A validated site by name; a site that fails validation answers with its own diagnostics. */
export function findSite(files: ReadonlyMap<string, string>, siteName: string): FoundSite {
  const load = loadFleet(files);
  const site = load.validSites.find((s) => s.name === siteName);
  if (site !== undefined) return { kind: 'found', site };
  const own = load.diagnostics.filter(
    (d) =>
      d.severity === 'error' &&
      (d.file === `sites/${siteName}.yaml` || d.message.includes(`site ${siteName}`)),
  );
  if (own.length > 0) return { kind: 'invalid-site', diagnostics: own };
  return {
    kind: 'usage',
    message: unknownSiteMessage(
      siteName,
      load.validSites.map((s) => s.name),
    ),
  };
}
