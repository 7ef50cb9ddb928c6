/**
 * Where the daemon learns which providers are up. The probe engine (agent/src/health)
 * implements this; the daemon subscribes to `onChange`, re-reconciles the applied desired
 * state with the new health (failover is never drift), then calls `settled` with the health
 * the kernel followed so the source can act on what now is in the kernel (flush conntrack
 * of a provider the kernel routes around, run the operator's hook).
 */
import type { DesiredState } from '../model/desired-state.js';
import type { Health } from '../model/kernel-state.js';
import type { ProviderHealth } from '../model/protocol.js';

export interface HealthSource {
  /** Up/down per provider; a provider absent from the map counts as up (no verdict yet, or not probed). */
  current(): Health;
  /** Per-provider detail for `status`. */
  report(): ProviderHealth[];
  /** The desired state in force (confirmed or pending) changed; null when nothing is applied. */
  configure(desired: DesiredState | null): void;
  /** Subscribe to verdict changes; returns the unsubscribe function. */
  onChange(listener: (health: Health) => void): () => void;
  /**
   * The kernel now reflects `effective` (called after the reconcile a change caused): the
   * health resolve applied, where a provider kept as if up by the last resort (D32) reads
   * `up` although its probes say down. Only a provider `down` here had its traffic moved.
   */
  settled(effective: Health): Promise<void>;
  close(): Promise<void>;
}

/** No probing: every provider counts as up (one-shot CLI, tests, probes disabled). */
export function staticHealth(): HealthSource {
  return {
    current: () => ({}),
    report: () => [],
    configure: () => {},
    onChange: () => () => {},
    settled: async () => {},
    close: async () => {},
  };
}
