/**
 * The kernel, as the agent sees it. `linux` talks to iproute2/nft/sysctl; `memory` is an
 * in-process model with the same semantics for the objects Uplink owns (fleet simulation,
 * fast unit tests). Kernel behaviour is only proven against `linux` in namespaces.
 */
import type { Facts, KernelState } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';

export interface ReadRequest {
  /** Sysctl keys to read (e.g. `net.ipv4.conf.eth1.rp_filter`); missing keys are left out. */
  readonly sysctls: readonly string[];
}

export interface Dataplane {
  /** Interfaces, their addresses and detected gateways. */
  readFacts(): Promise<Facts>;
  /**
   * Every IPv4 rule and every IPv4 route in every table (all protocols: ownership is
   * decided by the pure core, not here), table inet uplink, and the requested sysctls.
   */
  readKernel(request: ReadRequest): Promise<KernelState>;
  /**
   * Facts and kernel together. Optional: a dataplane that can read both in fewer, parallel
   * processes (linux) implements it; callers fall back to readFacts + readKernel.
   */
  readCurrent?(request: ReadRequest): Promise<{ facts: Facts; kernel: KernelState }>;
  /** Execute the steps in order. Throws a DataplaneError if the kernel refused any. */
  apply(steps: readonly Step[]): Promise<void>;
}

export class DataplaneError extends Error {
  override readonly name = 'DataplaneError';
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}
