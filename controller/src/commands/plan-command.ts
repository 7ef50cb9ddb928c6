/**
 * `uplink plan --base REV [--head REV]`: read both revisions from git (objects only, no
 * checkout), validate and compile each, and print what changes per site. Offline.
 * Exit 0 no change, 1 changes, 2 head invalid or usage error. A base that does not
 * resolve is a usage error (a typo must not read as "every site is new"); a base without
 * a fleet makes every site new.
 */
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import type { SiteViewOptions } from '../explain/index.js';
import { GitSource } from '../git/index.js';
import {
  assembleFleetPlan,
  type PlannedRevision,
  planExitCode,
  renderPlanJson,
  renderPlanMarkdown,
  renderPlanText,
} from '../plan/index.js';
import { checkAddress } from '../spec/addresses.js';
import { FleetCache } from '../spec/fleet-cache.js';
import { loadFleet } from '../spec/load-fleet.js';
import type { ValidSite } from '../spec/valid-site.js';
import { factsStateDir, readSiteFacts } from './read-site-facts.js';

export interface PlanOptions {
  repo: string;
  base: string;
  head: string;
  format: 'text' | 'markdown' | 'json';
  /** `SITE=FILE`: that site's router facts from a file. */
  facts?: string[];
  stateDir?: string;
  config?: string;
  /**
   * The controller's address as the routers see it, for facts that carry no connection
   * (`uplink-agent show --facts` on the router); the router's is the site's management address.
   */
  controllerAddress?: string;
}

export async function planCommand(opts: PlanOptions): Promise<void> {
  const git = await GitSource.open(resolve(opts.repo));
  // Base and head share what did not change between them: parsed, checked and compiled once (D151).
  const cache = new FleetCache();
  const read = async (rev: string): Promise<PlannedRevision> => {
    const commit = await git.resolveRev(rev);
    const files = await git.readFleetFilesAt(commit);
    return { rev, commit, load: loadFleet(files, cache), files: [...files.keys()] };
  };
  const base = await read(opts.base);
  const head = await read(opts.head);
  const facts = await readPlanFacts(head.load.validSites, opts);
  const plan = assembleFleetPlan(base, head, {
    compile: (site) => cache.compile(site),
    ...(facts === undefined ? {} : { facts }),
  });
  const render =
    opts.format === 'json'
      ? renderPlanJson
      : opts.format === 'markdown'
        ? renderPlanMarkdown
        : renderPlanText;
  process.stdout.write(render(plan));
  const code = planExitCode(plan);
  if (code !== 0) throw new ExitCode(code);
}

/**
 * Every site's facts when the plan is asked with facts (`--facts SITE=FILE`, a state dir from
 * `--state-dir`, `--config` or the defaults); undefined when it is not: the plan is then the
 * spec's alone, as before facts existed.
 */
async function readPlanFacts(
  validSites: readonly ValidSite[],
  opts: PlanOptions,
): Promise<Map<string, SiteViewOptions> | undefined> {
  const sites = validSites.map((s) => s.name);
  let controller: string | undefined;
  if (opts.controllerAddress !== undefined) {
    const checked = checkAddress(opts.controllerAddress);
    if (!checked.ok) throw new UsageError(`--controller-address: ${checked.message}`);
    controller = checked.value;
  }
  const files = new Map<string, string>();
  for (const pair of opts.facts ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(pair);
    if (m === null)
      throw new UsageError(`--facts ${pair}: write SITE=FILE, e.g. --facts home-pppoe=home-pppoe.facts.json`);
    if (!sites.includes(m[1]!))
      throw new UsageError(
        `--facts ${pair}: ${m[1]} is not a valid site at head; write one of ${sites.join(', ')}`,
      );
    files.set(m[1]!, m[2]!);
  }
  const stateDir = await factsStateDir({
    ...(opts.stateDir === undefined ? {} : { stateDir: opts.stateDir }),
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  if (files.size === 0 && stateDir === undefined) return undefined;
  const out = new Map<string, SiteViewOptions>();
  for (const site of validSites) {
    const file = files.get(site.name);
    const options = await readSiteFacts(site.name, {
      ...(file === undefined ? {} : { factsFile: file }),
      ...(stateDir === undefined ? {} : { stateDir }),
    });
    const record = options.facts?.record;
    if (controller === undefined || record === undefined || record.facts.connection !== undefined) {
      out.set(site.name, options);
      continue;
    }
    const connection = { controller, router: site.management.address, routerPort: site.management.port };
    out.set(site.name, {
      ...options,
      facts: { ...options.facts!, record: { ...record, facts: { ...record.facts, connection } } },
    });
  }
  return out;
}
