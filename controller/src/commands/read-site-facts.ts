/**
 * A site's router facts for `uplink explain` and `uplink plan` (D172): from `--facts FILE`
 * (what `uplink-agent show --facts` prints, or a copy of a state dir's file), or from the
 * controller's state dir — `facts/SITE.json`, with when they were last reported from
 * status.json. No facts is an answer too: the reason goes into the stand-in note.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCliDefaults } from '../config/cli-defaults.js';
import { UsageError } from '../errors.js';
import type { KnownFacts, SiteViewOptions } from '../explain/build-site-view.js';
import type { ApiStatus } from '../http/api-status.js';
import { STATUS_FILE } from '../run/controller-daemon.js';
import { readFactsFile, siteFactsFile } from '../state/site-facts-store.js';
import { type ControllerDirOptions, controllerStateDir } from './controller-dir.js';

export interface FactsSourceOptions {
  /** `--facts FILE` (explain), or the file for this site (plan's `--facts SITE=FILE`). */
  readonly factsFile?: string;
  readonly stateDir?: string;
}

/**
 * The controller's state dir for facts: `--state-dir`, `--config`'s, else the defaults'
 * (stateDir, controller) when there are some — none is no error: explain then uses stand-ins.
 */
export async function factsStateDir(opts: ControllerDirOptions): Promise<string | undefined> {
  if (opts.stateDir !== undefined || opts.config !== undefined)
    return (await controllerStateDir('explain', opts)).stateDir;
  const defaults = await loadCliDefaults();
  if (defaults.values.stateDir === undefined && defaults.values.controller === undefined) return undefined;
  return (await controllerStateDir('explain', {})).stateDir;
}

/** The view options for `site`: its facts, or why there are none. */
export async function readSiteFacts(site: string, options: FactsSourceOptions): Promise<SiteViewOptions> {
  const now = Date.now();
  if (options.factsFile !== undefined) {
    const record = await readFactsFile(options.factsFile);
    if (record === undefined)
      throw new UsageError(
        `--facts ${options.factsFile}: no such file; write the path of a file \`uplink-agent show --facts\` printed`,
      );
    if (record.site !== null && record.site !== site)
      throw new UsageError(
        `--facts ${options.factsFile}: these are the facts of site ${record.site}, not ${site}; write the file of ${site}'s router`,
      );
    return { facts: { record, from: `from ${options.factsFile}` }, now };
  }
  if (options.stateDir === undefined) return { now, noFacts: 'no --facts FILE or --state-dir DIR given' };
  const file = siteFactsFile(options.stateDir, site);
  const record = await readFactsFile(file);
  if (record === undefined)
    return {
      now,
      noFacts: `none for ${site} in ${options.stateDir}: its agent has not answered a controller of protocol revision 4 yet`,
    };
  const reportedAt = await reportedAtOf(options.stateDir, site, record.hash);
  const facts: KnownFacts = {
    record: reportedAt === undefined ? record : { ...record, reportedAt },
    from: `kept by the controller in ${options.stateDir}`,
  };
  return { facts, now };
}

/** When the controller last had these facts reported (status.json), if it says so for this hash. */
async function reportedAtOf(stateDir: string, site: string, hash: string): Promise<number | undefined> {
  try {
    const status = JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as ApiStatus;
    const facts = status.sites?.find((s) => s.name === site)?.facts;
    return facts?.hash === hash ? facts.reportedAt : undefined;
  } catch {
    return undefined;
  }
}
