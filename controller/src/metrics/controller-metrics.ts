/**
 * The controller's Prometheus metrics (prom-client, on a registry of its own so several
 * controllers in one process — tests, the simulator — do not collide). The gauges are
 * refreshed from the status document before each scrape (`observe`), so they say exactly
 * what `/api/status`, `uplink status` and the page say: one site state each, from
 * report/site-state.ts. deploy/prometheus/uplink-alerts.yaml alerts on them.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiStatus } from '../http/api-status.js';
import { SITE_STATES } from '../report/site-state.js';

const seconds = (ms: number) => ms / 1000;

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly sitesByState = new Gauge({
    name: 'uplink_sites',
    help: `Sites by state, each site in exactly one (${SITE_STATES.join(', ')})`,
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly siteState = new Gauge({
    name: 'uplink_site_state',
    help: 'A site state: 1 for the state the site is in (the same one /api/status and uplink status show)',
    labelNames: ['site', 'state'],
    registers: [this.registry],
  });
  readonly siteLastStatus = new Gauge({
    name: 'uplink_site_last_status_timestamp_seconds',
    help: "When the site's agent last answered a status call (Unix time)",
    labelNames: ['site'],
    registers: [this.registry],
  });
  readonly siteFactsRead = new Gauge({
    name: 'uplink_site_facts_read_timestamp_seconds',
    help: 'When the router read the facts explain and plan use for the site (Unix time, D170)',
    labelNames: ['site'],
    registers: [this.registry],
  });
  readonly siteSuspended = new Gauge({
    name: 'uplink_site_suspended',
    help: '1 while the site is suspended (uplink suspend SITE)',
    labelNames: ['site'],
    registers: [this.registry],
  });
  readonly siteOverride = new Gauge({
    name: 'uplink_site_override_timestamp_seconds',
    help: 'When the break-glass apply the site runs was applied (Unix time); absent when it runs none',
    labelNames: ['site'],
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
  readonly lastRolloutDone = new Gauge({
    name: 'uplink_last_rollout_completed_timestamp_seconds',
    help: 'When the last rollout finished (done, halted, superseded or suspended), by its result (Unix time)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly suspended = new Gauge({
    name: 'uplink_suspended',
    help: '1 while rollouts and reconciliation are suspended (uplink suspend)',
    registers: [this.registry],
  });
  readonly commitRefused = new Gauge({
    name: 'uplink_commit_refused',
    help: '1 while the newest commit is refused (invalid spec or signature) and an older one stays in force',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly lastFetch = new Gauge({
    name: 'uplink_last_fetch_timestamp_seconds',
    help: 'When the last fetch of the fleet repository finished (Unix time)',
    registers: [this.registry],
  });
  readonly fetchFailing = new Gauge({
    name: 'uplink_git_fetch_failing',
    help: '1 while the last fetch of the fleet repository failed',
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
    help: 'Finished rollouts by result (done, halted, superseded, suspended)',
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
  readonly providerSince = new Gauge({
    name: 'uplink_provider_state_since_timestamp_seconds',
    help: 'Since when the provider is in its current state (Unix time); absent before its first verdict',
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly providerLatency = new Gauge({
    name: 'uplink_provider_latency_seconds',
    help: "Median round-trip of the provider's recent answered probes; absent when none answered",
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly providerLoss = new Gauge({
    name: 'uplink_provider_loss_ratio',
    help: "Share of the provider's recent probes without an answer (0..1)",
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly providerProbeError = new Gauge({
    name: 'uplink_provider_probe_error',
    help: "1 while the agent's probes of a provider cannot run (e.g. ping missing): its state is not being measured",
    labelNames: ['site', 'provider'],
    registers: [this.registry],
  });
  readonly agentFault = new Gauge({
    name: 'uplink_agent_fault',
    help: "1 while a site's agent reports a fault of its environment, by kind (state-dir-full, tool-missing, …) and subject",
    labelNames: ['site', 'kind', 'subject'],
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
    for (const g of [
      this.sitesByState,
      this.siteState,
      this.siteLastStatus,
      this.siteFactsRead,
      this.siteSuspended,
      this.siteOverride,
      this.providerUp,
      this.providerSince,
      this.providerLatency,
      this.providerLoss,
      this.providerProbeError,
      this.agentFault,
      this.driftItems,
      this.commitRefused,
      this.lastRolloutDone,
      this.lastFetch,
    ])
      g.reset();
    for (const [state, n] of Object.entries(status.summary.byState)) this.sitesByState.set({ state }, n);
    for (const site of status.sites) {
      const name = site.name;
      this.siteState.set({ site: name, state: site.state }, 1);
      if (site.lastSeen !== null) this.siteLastStatus.set({ site: name }, seconds(site.lastSeen));
      if (site.facts !== null) this.siteFactsRead.set({ site: name }, seconds(site.facts.readAt));
      if (site.suspended) this.siteSuspended.set({ site: name }, 1);
      if (site.override) this.siteOverride.set({ site: name }, seconds(site.override.at));
      for (const p of site.health) {
        const labels = { site: name, provider: p.name };
        this.providerUp.set(labels, p.state === 'up' ? 1 : p.state === 'down' ? 0 : -1);
        if (p.since !== null) this.providerSince.set(labels, seconds(p.since));
        if (p.latencyMs !== null) this.providerLatency.set(labels, p.latencyMs / 1000);
        this.providerLoss.set(labels, p.loss);
        if (p.probeError !== undefined) this.providerProbeError.set(labels, 1);
      }
      for (const f of site.faults ?? [])
        this.agentFault.set({ site: name, kind: f.kind, subject: f.subject }, 1);
      if (site.drift) this.driftItems.set({ site: name }, site.drift.items.length);
    }
    this.suspended.set(status.suspended ? 1 : 0);
    if (status.lastInvalidCommit) this.commitRefused.set({ reason: status.lastInvalidCommit.reason }, 1);
    if (status.lastRollout)
      this.lastRolloutDone.set({ result: status.lastRollout.phase }, seconds(status.lastRollout.at));
    if (status.controller.lastFetchAt !== null) this.lastFetch.set(seconds(status.controller.lastFetchAt));
    this.fetchFailing.set(status.controller.lastFetchError ? 1 : 0);
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
