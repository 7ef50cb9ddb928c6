/**
 * The whole pure pipeline in one call: resolve → owned → conflicts → diff → order. The
 * engine reads the kernel, calls this, and acts on the result; plan and apply share it, so
 * apply does exactly what plan shows.
 */
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, Health, KernelState } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { type ChangeSet, diff } from './diff.js';
import { type Conflict, findConflicts } from './find-conflicts.js';
import { type OrderOptions, orderChanges } from './order-changes.js';
import { type OwnershipScope, owned } from './owned.js';
import { resolve, type UnavailableProvider } from './resolve.js';

export interface PlanInput {
  readonly desired: DesiredState;
  readonly facts: Facts;
  readonly health: Health;
  /** The whole kernel as read (all protocols). */
  readonly current: KernelState;
  /** What Uplink owns: the desired state's scope merged with the one being left. */
  readonly scope: OwnershipScope;
}

export interface Plan {
  readonly effective: KernelState;
  /** The owned part of `current`: what a snapshot must hold to undo this plan. */
  readonly owned: KernelState;
  readonly unavailable: readonly UnavailableProvider[];
  /** Inconsistencies in the desired state; a plan with problems must not be applied. */
  readonly problems: readonly string[];
  /** Objects in the way; a plan with conflicts must not be applied. */
  readonly conflicts: readonly Conflict[];
  readonly changes: ChangeSet;
  readonly steps: readonly Step[];
}

export function assemblePlan(input: PlanInput): Plan {
  const { effective, unavailable, problems } = resolve(input.desired, input.facts, input.health);
  const current = owned(input.current, input.scope);
  const conflicts = findConflicts(input.current, input.desired, input.scope.protocols);
  const changes = diff(effective, current);
  const order: OrderOptions = { markMask: input.desired.settings.markMask };
  return {
    effective,
    owned: current,
    unavailable,
    problems,
    conflicts,
    changes,
    steps: orderChanges(changes, order),
  };
}
