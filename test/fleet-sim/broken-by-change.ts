/** A simulated agent's provider health that a given desired state breaks (D86 tests). */
import type { HealthSource } from '../../agent/src/daemon/health-source.js';
import type { DesiredState } from '../../agent/src/model/desired-state.js';
import type { Health } from '../../agent/src/model/kernel-state.js';
import type { ProviderHealth } from '../../agent/src/model/protocol.js';

/**
 * A provider health source (what the agent's probes are) where the state `breaks` is put in
 * force takes isp1 down: the change broke isp1's route. isp2 stays up.
 */
export class BrokenByChange implements HealthSource {
  breaks: string | undefined;
  #desired: DesiredState | null = null;
  #down(): boolean {
    return this.breaks !== undefined && this.#desired?.hash === this.breaks;
  }
  current(): Health {
    return this.#down() ? { isp1: 'down' } : {};
  }
  report(): ProviderHealth[] {
    const entry = (name: string, up: boolean): ProviderHealth => ({
      name,
      state: up ? 'up' : 'down',
      since: null,
      probing: true,
      latencyMs: up ? 1 : null,
      loss: up ? 0 : 1,
      transitions: [],
    });
    return [entry('isp1', !this.#down()), entry('isp2', true)];
  }
  configure(desired: DesiredState | null): void {
    this.#desired = desired;
  }
  onChange() {
    return () => {};
  }
  async settled(): Promise<void> {}
  async close(): Promise<void> {}
}
