import { describe, expect, it } from 'vitest';
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import { formatStatus } from '../commands/status-command.js';
import { ControllerMetrics } from '../metrics/controller-metrics.js';
import { reportFromStatus, type SiteReport, unreachableReport } from '../run/site-report.js';
import { emptyControllerState } from '../state/index.js';
import { buildApiStatus } from './build-api-status.js';
import { renderFleetPage, renderSitePage } from './status-page.js';

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
function statusWith(health: ProviderHealth[], extra: Partial<StatusResult> = {}): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site: 'branch-1',
    applied: null,
    pending: null,
    lastRevert: null,
    owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
    facts: { interfaces: 2, providers: [] },
    health,
    drift: null,
    now: 1_000,
    ...extra,
  });
}

/** The controller's view of one site, branch-1, from its last report. */
function statusOf(report: SiteReport, now = 2_000) {
  return buildApiStatus({
    now,
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
    reports: new Map([['branch-1', report]]),
    events: [],
  });
}

function apiStatus(health: ProviderHealth[], extra: Partial<StatusResult> = {}) {
  return statusOf(reportFromStatus(statusWith(health, extra), 1_500));
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
    const status = apiStatus([provider('isp1', { state: 'up' }), provider('lte')], {
      facts: { interfaces: 2, providers: [{ name: 'isp1', interface: 'eth1', available: true }, lte] },
    });
    const [isp1, unplugged] = status.sites[0]!.health;
    expect(isp1).toMatchObject({ unavailable: null });
    expect(unplugged).toMatchObject({ name: 'lte', unavailable: 'interface wwan0 does not exist' });
    expect(status.sites[0]!.state).toBe('degraded');
    expect(formatStatus(status)).toContain('lte:unavailable (interface wwan0 does not exist)');
    expect(renderFleetPage(status)).toContain('unavailable: interface wwan0 does not exist');
  });
});

describe('agent faults in the controller views (D103)', () => {
  const full = {
    kind: 'state-dir-full' as const,
    subject: '/var/lib/uplink-agent',
    message:
      'state directory /var/lib/uplink-agent is on a full filesystem (ENOSPC writing applied.json): free space on its filesystem',
    since: 900,
  };
  const nft = {
    kind: 'tool-missing' as const,
    subject: 'nft',
    message:
      'nft is not installed (not found on PATH /usr/sbin:/usr/bin): install the Debian package nftables',
    since: 950,
  };

  it('carries status.faults to /api/status and `uplink status`, each named as what it is', () => {
    const status = apiStatus([provider('isp1', { state: 'up' })], { faults: [full, nft] });
    const site = status.sites[0]!;
    expect(site.faults).toEqual([full, nft]);
    // The router answered: it is not unreachable, and its faults are not "internal errors".
    expect(site.state).not.toBe('unreachable');
    expect(site.statusError).toBeNull();
    const text = formatStatus(status);
    expect(text).toContain(`  fault state-dir-full: ${full.message}`);
    expect(text).toContain(`  fault tool-missing: ${nft.message}`);
  });

  it('metrics: uplink_agent_fault per site, kind and subject, while it lasts', async () => {
    const metrics = new ControllerMetrics();
    metrics.observe(apiStatus([provider('isp1', { state: 'up' })], { faults: [nft] }));
    expect(await metrics.registry.metrics()).toContain(
      'uplink_agent_fault{site="branch-1",kind="tool-missing",subject="nft"} 1',
    );
    metrics.observe(apiStatus([provider('isp1', { state: 'up' })]));
    expect(await metrics.registry.metrics()).not.toMatch(/uplink_agent_fault\{/);
  });

  it('a site without faults has an empty list, never a missing field', () => {
    expect(apiStatus([provider('isp1', { state: 'up' })]).sites[0]!.faults).toEqual([]);
  });
});

describe('a status call the agent answered with an error', () => {
  it('is a failed site with the agent’s words, not an unreachable one', () => {
    const input = (report: SiteReport) => statusOf(report).sites[0]!;
    const message = 'branch-1: status failed: internal: cannot read /var/lib/uplink-agent/applied.json: EIO';
    expect(input(unreachableReport(message, 1_500, undefined, 'agent', 'internal'))).toMatchObject({
      state: 'failed',
      statusError: message,
    });
    expect(input(unreachableReport('branch-1: cannot connect: ECONNREFUSED', 1_500)).state).toBe(
      'unreachable',
    );
  });

  it('a fault of the router is named in /api/status, the status text, the page and the metrics', async () => {
    const fault = {
      kind: 'state-dir-full' as const,
      subject: '/var/lib/uplink-agent',
      message: 'no space left for commit.json (ENOSPC)',
      since: 1_200,
    };
    const status = apiStatus([provider('isp1', { state: 'up' })], { faults: [fault] });
    expect(status.sites[0]!.faults).toEqual([fault]);
    expect(status.sites[0]!.state).toBe('failed');
    expect(formatStatus(status)).toContain('fault state-dir-full (/var/lib/uplink-agent)');
    expect(renderFleetPage(status)).toContain('data-fault="state-dir-full"');
    const metrics = new ControllerMetrics();
    metrics.observe(status);
    expect(await metrics.registry.metrics()).toContain(
      'uplink_agent_fault{site="branch-1",kind="state-dir-full",subject="/var/lib/uplink-agent"} 1',
    );
  });
});

describe('router facts in the controller views (D170)', () => {
  function withFacts(readAt: number | null) {
    const report = reportFromStatus(statusWith([provider('isp1', { state: 'up' })]), 1_500);
    const facts = { interfaces: {}, rules: [], routes: [], sysctls: {} };
    return statusOf(
      readAt === null
        ? report
        : { ...report, facts: { hash: 'f'.repeat(64), readAt, reportedAt: 1_500, facts } },
      120_000,
    );
  }

  it('metrics: when the router read them, only for a site that reported any', async () => {
    const metrics = new ControllerMetrics();
    metrics.observe(withFacts(60_000));
    expect(await metrics.registry.metrics()).toContain(
      'uplink_site_facts_read_timestamp_seconds{site="branch-1"} 60',
    );
    metrics.observe(withFacts(null));
    expect(await metrics.registry.metrics()).not.toMatch(/uplink_site_facts_read_timestamp_seconds\{/);
  });

  it('the site page says how old they are, or that explain uses stand-ins', () => {
    const page = (status: ReturnType<typeof withFacts>) =>
      renderSitePage(
        { now: status.now, target: status.target, site: status.sites[0]!, timeline: [] },
        status.controller,
      );
    expect(page(withFacts(60_000))).toMatch(
      /<th>router facts<\/th><td>read 1m ago <code>ffffffffffff<\/code>/,
    );
    expect(page(withFacts(null))).toContain('none reported: explain and plan use the spec');
  });
});
