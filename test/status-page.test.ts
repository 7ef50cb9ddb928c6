/**
 * The status pages in a real headless browser (Debian's chromium via playwright-core),
 * served by the controller's own HTTP server (startHttpServer) from a status document the
 * test builds with buildApiStatus — the same builder `uplink run` uses. The fleet page
 * renders the summary, sites, waves and events, works with scripts off (server-rendered),
 * refreshes by itself, shows hostile text (site names, errors, labels from git and routers)
 * as text, and links each site to its page: providers with state, since, loss and latency,
 * drift in full, the timeline. Its counts are the document's, which are the metrics'.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProviderHealth, type StatusResult, statusResult } from '#agent/model';
import type { ApiSiteDetail, ApiStatus, ApiTimelineEntry } from '../controller/src/http/api-status.js';
import { buildApiStatus } from '../controller/src/http/build-api-status.js';
import { startHttpServer } from '../controller/src/http/http-server.js';
import { ControllerMetrics } from '../controller/src/metrics/controller-metrics.js';
import { reportFromStatus, type SiteReport, unreachableReport } from '../controller/src/run/site-report.js';
import { emptyControllerState, recordGoodCommit, recordSiteOutcome } from '../controller/src/state/index.js';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './status-page-browser.js';

const HOSTILE = '<img src=x onerror="window.pwned=1">';
const COMMIT = 'abc123def4567890abc123def4567890abc12345';
const H = (c: string) => c.repeat(64);

function provider(name: string, over: Partial<ProviderHealth> = {}): ProviderHealth {
  return {
    name,
    state: 'up',
    since: 1_000,
    probing: true,
    latencyMs: 0.42,
    loss: 0,
    transitions: [],
    ...over,
  };
}

function agentStatus(site: string, hash: string, over: Partial<StatusResult> = {}): StatusResult {
  return statusResult.parse({
    agent: '0.1.0',
    protocol: 1,
    site,
    applied: { generation: `${COMMIT}-${hash.slice(0, 12)}`, hash, site, at: 1_000 },
    pending: null,
    lastRevert: null,
    owned: { rules: 3, routes: 2, nftRules: 4, sysctls: 1 },
    facts: { interfaces: 3, providers: [] },
    health: [provider('isp1'), provider('isp2')],
    drift: { policy: 'report', checkedAt: 4_000, items: [], shadowed: [], heals: 0, lastHeal: null },
    now: 5_000,
    ...over,
  });
}

const drifted = {
  policy: 'report' as const,
  checkedAt: 4_000,
  items: [
    {
      object: 'rule priority 30000 lookup 200',
      kind: 'missing' as const,
      expected: `from all lookup 200 ${HOSTILE}`,
      found: null,
      firstSeen: 3_000,
    },
  ],
  shadowed: [],
  heals: 0,
  lastHeal: null,
};

/** Five sites in five states: in-sync, drifted (hostile name), degraded, unreachable, out-of-date. */
function document(now: number, alphaIsp1: 'up' | 'down' = 'up'): ApiStatus {
  const desired = new Map([
    ['alpha', H('a')],
    [HOSTILE.slice(1, 4), H('b')],
    ['gamma', H('c')],
    ['delta', H('d')],
    ['omega', H('e')],
  ]);
  const reports = new Map<string, SiteReport>([
    [
      'alpha',
      reportFromStatus(
        agentStatus('alpha', H('a'), { health: [provider('isp1', { state: alphaIsp1 }), provider('isp2')] }),
        now,
      ),
    ],
    [HOSTILE.slice(1, 4), reportFromStatus(agentStatus('img', H('b'), { drift: drifted }), now)],
    [
      'gamma',
      reportFromStatus(
        agentStatus('gamma', H('c'), {
          health: [
            provider('isp1', {
              state: 'down',
              loss: 1,
              latencyMs: null,
              since: 4_500,
              transitions: [
                { at: 4_500, from: 'up', to: 'down', reason: `3 failed rounds in a row ${HOSTILE}` },
              ],
            }),
            provider('dsl', { latencyMs: 12.5, loss: 0.05 }),
          ],
        }),
        now,
      ),
    ],
    ['delta', unreachableReport(`connect ECONNREFUSED ${HOSTILE}`, now)],
    ['omega', reportFromStatus(agentStatus('omega', H('f')), now)],
  ]);
  let state = recordGoodCommit(emptyControllerState(), COMMIT, 1_000);
  state = recordSiteOutcome(state, 'delta', {
    generation: 'g',
    hash: H('d'),
    commit: COMMIT,
    at: 900,
    outcome: 'applied',
  });
  return buildApiStatus({
    now,
    version: '0.1.0',
    controller: {
      repo: '/tmp/fleet.git',
      branch: 'main',
      pollIntervalMs: 3000,
      lastFetchAt: now,
      lastFetchError: null,
      signatureVerification: false,
    },
    state,
    desiredHashes: desired,
    reports,
    events: [
      {
        at: now,
        level: 'warn',
        kind: 'provider-down',
        message: `gamma: isp1 up → down: ${HOSTILE}`,
        site: 'gamma',
      },
      {
        at: now,
        level: 'warn',
        kind: 'drift-found',
        message: 'img: drift: missing rule priority 30000',
        site: 'img',
      },
    ],
  });
}

const TIMELINE: ApiTimelineEntry[] = [
  {
    at: 1_000,
    level: 'info',
    kind: 'applied',
    message: `applied and confirmed: generation ${COMMIT}-cccccccccccc (wave canary)`,
  },
  {
    at: 4_500,
    level: 'warn',
    kind: 'provider-down',
    provider: 'isp1',
    loss: 1,
    latencyMs: null,
    message: `isp1 up → down: 3 failed rounds ${HOSTILE}`,
  },
];

describe.skipIf(!chromiumAvailable())('status pages in headless chromium', () => {
  let url: string;
  let close: () => Promise<void>;
  let browser: HeadlessBrowser;
  let noScript: HeadlessBrowser;
  let current: ApiStatus;
  const metrics = new ControllerMetrics();

  beforeAll(async () => {
    current = document(5_000);
    const http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      status: () => current,
      siteDetail: (name, status): ApiSiteDetail | undefined => {
        const site = status.sites.find((s) => s.name === name);
        return site
          ? { now: status.now, target: status.target, site, timeline: name === 'gamma' ? TIMELINE : [] }
          : undefined;
      },
      metrics,
      onWebhook: () => {},
    });
    url = http.url;
    close = http.close;
    browser = await launchChromium();
    noScript = await launchChromium(undefined, { javaScript: false });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await noScript?.close();
    await close?.();
  });

  it('the fleet page: summary, sites, waves and events, with hostile text shown as text', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/`);
    expect(await page.locator('#sites tbody tr').count()).toBe(5);
    const alpha = page.locator('tr[data-site="alpha"]');
    expect(await alpha.locator('[data-provider="isp1"]').getAttribute('data-state')).toBe('up');
    expect(await alpha.locator('[data-provider="isp1"]').innerText()).toContain('0.4 ms, 0% loss');
    expect(await alpha.locator('.badge').first().innerText()).toBe('in-sync');
    // Short generations, the full one on hover.
    expect(await alpha.locator('code').first().innerText()).toBe('abc123de-aaaaaa');
    expect(await alpha.locator('code').first().getAttribute('title')).toBe(`${COMMIT}-aaaaaaaaaaaa`);
    // Each problem once, beside its state.
    const delta = page.locator('tr[data-site="delta"]');
    expect(await delta.innerText()).toContain('unreachable');
    expect((await delta.innerText()).split('ECONNREFUSED').length - 1).toBe(1);
    // Hostile strings: shown literally, and no element was made from them.
    const body = await page.locator('body').innerText();
    expect(body).toContain(HOSTILE);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('#events').innerText()).toContain(`gamma: isp1 up → down: ${HOSTILE}`);
    expect(await page.locator('#events tr[data-kind="drift-found"]').count()).toBe(1);
    expect(await page.locator('#attention li').count()).toBe(current.attention.length);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('counts on the page are the document’s and the metrics’: every site once', async () => {
    const page = await noScript.context.newPage();
    await page.goto(`${url}/`);
    const cards = await page
      .locator('#summary .card[data-state]')
      .evaluateAll((cs) =>
        cs.map((c) => [c.getAttribute('data-state'), Number(c.querySelector('b')?.textContent)]),
      );
    const byState = Object.entries(current.summary.byState).filter(([, n]) => n > 0);
    expect(Object.fromEntries(cards)).toEqual(Object.fromEntries(byState));
    expect(Object.fromEntries(byState)).toEqual({
      'in-sync': 1,
      drifted: 1,
      degraded: 1,
      unreachable: 1,
      'out-of-date': 1,
    });
    metrics.observe(current);
    const text = await metrics.registry.metrics();
    for (const [state, n] of byState) expect(text).toContain(`uplink_sites{state="${state}"} ${n}`);
    for (const site of current.sites)
      expect(text).toContain(`uplink_site_state{site="${site.name}",state="${site.state}"} 1`);
    await page.close();
  });

  it('works with scripts off: the first view is complete HTML', async () => {
    const page = await noScript.context.newPage();
    await page.goto(`${url}/`);
    expect(await page.locator('#sites tbody tr').count()).toBe(5);
    expect(await page.locator('.wave').count()).toBe(0);
    expect(await page.locator('#rollout').innerText()).toBe('no rollout yet');
    expect(await page.locator('#commits').innerText()).toContain('target abc123def456');
    await page.close();
  });

  it('refreshes by itself: a provider going down shows without a reload', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${url}/`);
    await page.waitForSelector('tr[data-site="alpha"] [data-provider="isp1"][data-state="up"]');
    current = document(9_000, 'down');
    await page.waitForSelector('tr[data-site="alpha"] [data-provider="isp1"][data-state="down"]', {
      timeout: 10_000,
    });
    expect(await page.locator('body').getAttribute('data-updated')).toBe('9000');
    expect(await page.locator('tr[data-site="alpha"] .badge').first().innerText()).toBe('degraded');
    current = document(5_000);
    await page.close();
  });

  it('the site page: providers with state, since, loss and latency, drift in full, the timeline', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${url}/`);
    await page.locator('tr[data-site="gamma"] a').click();
    await page.waitForURL(/\/sites\/gamma$/);
    expect(await page.locator('#site').getAttribute('data-site')).toBe('gamma');
    const isp1 = page.locator('#providers tr[data-provider="isp1"]');
    expect(await isp1.getAttribute('data-state')).toBe('down');
    expect(await isp1.innerText()).toMatch(/1970-01-01 00:00:04Z[\s\S]*100%[\s\S]*3 failed rounds in a row/);
    expect(await page.locator('#providers tr[data-provider="dsl"]').innerText()).toMatch(/12\.5 ms[\s\S]*5%/);
    expect(await page.locator('#conditions li[data-condition="degraded"]').innerText()).toContain(
      'provider isp1 down since',
    );
    expect(await page.locator('#timeline tr').count()).toBe(2);
    expect(await page.locator('#timeline tr').first().innerText()).toContain(
      `isp1 up → down: 3 failed rounds ${HOSTILE}`,
    );
    expect(await page.locator('img').count()).toBe(0);
    // The drifted site's page lists each drift item in full.
    await page.goto(`${url}/sites/img`);
    const item = page.locator('#drift tr[data-drift="missing"]');
    expect(await item.innerText()).toContain('rule priority 30000 lookup 200');
    expect(await item.innerText()).toContain(`from all lookup 200 ${HOSTILE}`);
    // An unknown site: 404, with a suggestion.
    const res = await page.goto(`${url}/sites/gama`);
    expect(res?.status()).toBe(404);
    expect(await page.locator('#unknown').innerText()).toContain('did you mean gamma?');
    const api = await fetch(`${url}/api/sites/gamma`);
    expect(((await api.json()) as ApiSiteDetail).timeline).toHaveLength(2);
    await page.close();
  });
});
