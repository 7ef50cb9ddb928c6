/**
 * A site's spec → the routing view of its router, offline: compile, resolve against
 * synthesized facts and the given health, and build the simulator's view. The one place
 * `explain` and `explainClasses` get a router from.
 */

import { resolve } from '#agent/core';
import type { DesiredState, Health } from '#agent/model';
import { buildViewFromState, type RoutingView } from '#agent/sim';
import { compileSite } from '../compile/compile-site.js';
import type { ValidSite } from '../spec/valid-site.js';
import { synthesizeFacts } from './synthesize-facts.js';

export interface SiteView {
  readonly desired: DesiredState;
  readonly view: RoutingView;
  /** What the offline router assumes, in operator words. */
  readonly notes: readonly string[];
}

export function buildSiteView(site: ValidSite, down: readonly string[] = []): SiteView {
  const desired = compileSite(site);
  const { facts, notes: factNotes } = synthesizeFacts(site);
  const health: Health = Object.fromEntries(down.map((name) => [name, 'down' as const]));
  const { effective, unavailable, problems, lastResort } = resolve(desired, facts, health);
  const view = buildViewFromState(effective, facts, { markMask: desired.settings.markMask });

  const notes = [...factNotes];
  for (const name of down)
    notes.push(`${name} is taken as down (--down): its default routes are gone, so its rules fall through`);
  if (lastResort)
    notes.push(
      'every provider is down: the agent keeps them all as a last resort (D32), so traffic still tries them',
    );
  for (const u of unavailable) notes.push(`${u.provider} is unavailable: ${u.reason}`);
  for (const p of problems) notes.push(`problem in the desired state: ${p}`);
  notes.push(
    'main table has no default route here; on the router one from DHCP or PPP may exist, which only rule 32766 (main, last) would use',
  );
  return { desired, view, notes };
}
