/** Reading the kernel for the engine: facts and the kernel objects within a scope. */
import { mergeOwnershipScopes, type OwnershipScope, ownershipScope } from '../core/owned.js';
import { type Dataplane, DataplaneError } from '../dataplane/dataplane.js';
import { KernelError } from '../errors.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, KernelState } from '../model/kernel-state.js';

export interface CurrentState {
  readonly facts: Facts;
  /** The whole kernel as read: every rule and route, whoever wrote it. */
  readonly kernel: KernelState;
}

export async function readCurrent(dataplane: Dataplane, scope: OwnershipScope): Promise<CurrentState> {
  try {
    const request = { sysctls: scope.sysctls };
    if (dataplane.readCurrent !== undefined) return await dataplane.readCurrent(request);
    const [facts, kernel] = await Promise.all([dataplane.readFacts(), dataplane.readKernel(request)]);
    return { facts, kernel };
  } catch (error) {
    throw asKernelError(error, 'reading the kernel failed', 'not-needed');
  }
}

/** What Uplink owns when moving from `previous` (if any) to `desired`. */
export function scopeFor(desired: DesiredState, previous: DesiredState | undefined): OwnershipScope {
  return mergeOwnershipScopes(
    ownershipScope(desired),
    previous === undefined ? undefined : ownershipScope(previous),
  );
}

export function asKernelError(error: unknown, message: string, revert: KernelError['revert']): unknown {
  if (error instanceof DataplaneError)
    return new KernelError(`${message}: ${error.message}`, error.detail, revert);
  return error;
}
