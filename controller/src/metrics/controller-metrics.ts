/**
 * The controller's Prometheus metrics (prom-client, on a registry of its own so several
 * controllers in one process — tests, the simulator — do not collide).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiStatus } from '../http/api-status.js';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly sitesByState = new Gauge({
    name: 'uplink_sites',
    help: 'Sites by state (in-sync, rolling-out, out-of-date, failed, unreachable, unknown)',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly rolloutSites = new Gauge({
    name: 'uplink_rollout_sites',
    help: 'Sites of the current rollout by status (pending, applying, confirmed, failed, unreachable, reverted, rolled-back)',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly rolloutWave = new Gauge({
    name: 'uplink_rollout_wave',
    help: 'Index of the current wave of the rollout (0-based; equals the wave count when done)',
    registers: [this.registry],
  });
  readonly rolloutPhase = new Gauge({
    name: 'uplink_rollout_phase',
    help: '1 for the phase the current rollout is in',
    labelNames: ['phase', 'commit'],
    registers: [this.registry],
  });
  readonly applyDuration = new Histogram({
    name: 'uplink_apply_duration_seconds',
    help: 'Apply + confirm of one site, by outcome',
    labelNames: ['outcome'],
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'uplink_site_failures_total',
    help: 'Failed site applies and post-bake checks, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly rollouts = new Counter({
    name: 'uplink_rollouts_total',
    help: 'Finished rollouts by result (done, halted, superseded)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly fetches = new Counter({
    name: 'uplink_git_fetches_total',
    help: 'Fetches of the fleet repository by result (ok, error)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly refusedCommits = new Counter({
    name: 'uplink_refused_commits_total',
    help: 'Commits not rolled out, by reason (invalid-spec, signature)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly providerUp = new Gauge({
    name: 'uplink_provider_up',
    help: "Provider state per site as the agent's probes see it: 1 up, 0 down, -1 unknown",
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly providerProbeError = new Gauge({
    name: 'uplink_provider_probe_error',
    help: "1 while the agent's probes of a provider cannot run (e.g. ping missing): its state is not being measured",
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly driftItems = new Gauge({
    name: 'uplink_site_drift_items',
    help: 'Owned objects that differ from the confirmed state, per site',
    labelNames: ['site'],
    registers: [this.registry],
  });

  /** Refresh the gauges from a status document (called before each scrape). */
  observe(status: ApiStatus): void {
    this.sitesByState.reset();
    for (const [state, n] of Object.entries(status.summary.byState)) this.sitesByState.set({ state }, n);
    this.providerUp.reset();
    this.providerProbeError.reset();
    this.driftItems.reset();
    for (const site of status.sites) {
      for (const p of site.health) {
        this.providerUp.set(
          { site: site.name, provider: p.name },
          p.state === 'up' ? 1 : p.state === 'down' ? 0 : -1,
        );
        if (p.probeError !== undefined) this.providerProbeError.set({ site: site.name, provider: p.name }, 1);
      }
      if (site.drift) this.driftItems.set({ site: site.name }, site.drift.items.length);
    }
    this.rolloutSites.reset();
    this.rolloutPhase.reset();
    const rollout = status.rollout;
    if (rollout) {
      const counts = new Map<string, number>();
      for (const w of rollout.waves)
        for (const s of w.sites) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
      for (const [s, n] of counts) this.rolloutSites.set({ status: s }, n);
      this.rolloutPhase.set({ phase: rollout.phase, commit: rollout.commit }, 1);
      this.rolloutWave.set(rollout.waves.filter((w) => w.state === 'passed').length);
    }
  }
}
