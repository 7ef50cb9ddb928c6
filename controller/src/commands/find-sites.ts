/** The sites a command names, looked up in the fleet. */
import { UsageError } from '../errors.js';
import { unknownSiteMessage } from '../report/suggest-names.js';
import type { ValidFleet, ValidSite } from '../spec/valid-site.js';

/** Each named site, in the order given; an unknown name is a usage error with "did you mean". */
export function findSites(fleet: ValidFleet, names: readonly string[]): ValidSite[] {
  return names.map((name) => {
    const site = fleet.sites.find((s) => s.name === name);
    if (!site)
      throw new UsageError(
        unknownSiteMessage(
          name,
          fleet.sites.map((s) => s.name),
        ),
      );
    return site;
  });
}
