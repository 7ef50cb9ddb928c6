import { describe, expect, it } from 'vitest';
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import { formatStatus } from '../commands/status-command.js';
import { ControllerMetrics } from '../metrics/controller-metrics.js';
import { reportFromStatus } from '../run/site-report.js';
import { emptyControllerState } from '../state/index.js';
import { buildApiStatus } from './build-api-status.js';
import { renderFleetPage } from './status-page.js';

const provider = (name: string, extra: Partial<ProviderHealth> = {}): ProviderHealth => ({
  name,
  state: 'unknown',
  since: null,
  probing: true,
  latencyMs: null,
  loss: 0,
  transitions: [],
  ...extra,
});

/** A status answer as an agent sends it, checked against the protocol's strict schema. */
function statusWith(
  health: ProviderHealth[],
  providers: StatusResult['facts']['providers'] = [],
): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site: 'branch-1',
    applied: null,
    pending: null,
    lastRevert: null,
    owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
    facts: { interfaces: 2, providers },
    health,
    drift: null,
    now: 1_000,
  });
}

function apiStatus(health: ProviderHealth[], providers: StatusResult['facts']['providers'] = []) {
  return buildApiStatus({
    now: 2_000,
    version: 'test',
    controller: {
      repo: null,
      branch: null,
      pollIntervalMs: null,
      lastFetchAt: null,
      lastFetchError: null,
      signatureVerification: false,
    },
    state: emptyControllerState(),
    reports: new Map([['branch-1', reportFromStatus(statusWith(health, providers), 1_500)]]),
    events: [],
  });
}

describe('provider health in the controller views', () => {
  const probeError = 'cannot run ping: spawn ping ENOENT (not installed? Debian package iputils-ping)';

  it('carries an agent’s probeError to /api/status and `uplink status`, only where there is one', () => {
    const status = apiStatus([provider('isp1', { probeError }), provider('isp2', { state: 'up' })]);
    const [isp1, isp2] = status.sites[0]!.health;
    expect(isp1).toMatchObject({ name: 'isp1', state: 'unknown', probeError });
    expect(isp2).not.toHaveProperty('probeError');
    const text = formatStatus(status);
    expect(text).toContain(`isp1:unknown (probes cannot run: ${probeError})`);
    expect(text).toMatch(/isp2:up(?! \()/);
  });

  it('metrics: provider state per site, and a probe error only where there is one', async () => {
    const metrics = new ControllerMetrics();
    metrics.observe(apiStatus([provider('isp1', { probeError }), provider('isp2', { state: 'up' })]));
    const text = await metrics.registry.metrics();
    expect(text).toContain('uplink_provider_up{site="branch-1",provider="isp1"} -1');
    expect(text).toContain('uplink_provider_up{site="branch-1",provider="isp2"} 1');
    expect(text).toContain('uplink_provider_probe_error{site="branch-1",provider="isp1"} 1');
    expect(text).not.toContain('uplink_provider_probe_error{site="branch-1",provider="isp2"}');
    // Fixed on the router: the next observation drops it.
    metrics.observe(apiStatus([provider('isp1', { state: 'up' })]));
    expect(await metrics.registry.metrics()).not.toMatch(/uplink_provider_probe_error\{/);
  });

  it('an uplink the router cannot use says why, in /api/status, `uplink status` and the page', () => {
    const lte = {
      name: 'lte',
      interface: 'wwan0',
      available: false,
      reason: 'interface wwan0 does not exist',
    };
    const status = apiStatus(
      [provider('isp1', { state: 'up' }), provider('lte')],
      [{ name: 'isp1', interface: 'eth1', available: true }, lte],
    );
    const [isp1, unplugged] = status.sites[0]!.health;
    expect(isp1).toMatchObject({ unavailable: null });
    expect(unplugged).toMatchObject({ name: 'lte', unavailable: 'interface wwan0 does not exist' });
    expect(status.sites[0]!.state).toBe('degraded');
    expect(formatStatus(status)).toContain('lte:unavailable (interface wwan0 does not exist)');
    expect(renderFleetPage(status)).toContain('unavailable: interface wwan0 does not exist');
  });
});
