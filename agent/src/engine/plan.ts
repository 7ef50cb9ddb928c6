/** What `reconcile` would do now, without changing anything. */
import { assemblePlan, type Plan } from '../core/assemble-plan.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Health } from '../model/kernel-state.js';
import { readCurrent, scopeFor } from './read-current.js';
import type { EngineOptions } from './reconcile.js';
import { StateStore } from './state-store.js';

/** Problems and conflicts are returned in the plan, not thrown: a plan is for reading. */
export async function plan(
  dataplane: Dataplane,
  desired: DesiredState,
  health: Health,
  options: Pick<EngineOptions, 'stateDir' | 'failpoints'>,
): Promise<Plan> {
  const applied = await new StateStore(options.stateDir, options).readApplied();
  const scope = scopeFor(desired, applied?.desired);
  const { facts, kernel } = await readCurrent(dataplane, scope);
  return assemblePlan({ desired, facts, health, current: kernel, scope });
}
