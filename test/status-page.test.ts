/**
 * The status page in a real headless browser (Debian's chromium via playwright-core), served
 * from loopback with an ApiStatus document the test writes: it renders the summary, the
 * sites, the rollout's waves and the events, refreshes by itself, and shows hostile text
 * (site names, errors, labels from git and routers) as text, never as HTML.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSite, ApiStatus } from '../controller/src/http/api-status.js';
import { STATUS_PAGE_HTML } from '../controller/src/http/status-page.js';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './status-page-browser.js';

const HOSTILE = '<img src=x onerror="window.pwned=1">';

function site(name: string, overrides: Partial<ApiSite> = {}): ApiSite {
  return {
    name,
    labels: { region: 'eu' },
    state: 'in-sync',
    wave: 'canary',
    applied: { generation: 'abc123def456-0011', hash: 'h1', at: 1_000 },
    pending: null,
    current: true,
    confirm: 'confirmed',
    lastRevert: null,
    lastAttempt: null,
    drift: { policy: 'report', checkedAt: 1_000, items: [], shadowed: 0 },
    health: [
      { name: 'isp1', state: 'up', latencyMs: 0.42, loss: 0, since: 1_000 },
      { name: 'isp2', state: 'down', latencyMs: null, loss: 1, since: 1_000 },
    ],
    lastSeen: 1_000,
    statusError: null,
    ...overrides,
  };
}

function document(now: number, sites: ApiSite[]): ApiStatus {
  return {
    now,
    controller: {
      version: '0.1.0',
      repo: '/tmp/fleet.git',
      branch: 'main',
      pollIntervalMs: 3000,
      lastFetchAt: now,
      lastFetchError: null,
      signatureVerification: false,
    },
    lastGoodCommit: 'abc123def4567890',
    lastInvalidCommit: null,
    summary: {
      sites: sites.length,
      byState: { 'in-sync': 1, 'rolling-out': 0, 'out-of-date': 0, failed: 1, unreachable: 0, unknown: 0 },
      drifted: 1,
      degraded: 2,
    },
    sites,
    rollout: {
      commit: 'abc123def4567890',
      phase: 'halted',
      startedAt: now,
      unchanged: 0,
      supersededBy: null,
      halt: { wave: 'canary', reason: 'unconfirmed', failed: [HOSTILE] },
      progress: { planned: 2, confirmed: 1, failed: 1, inFlight: 0 },
      waves: [
        {
          name: 'canary',
          state: 'halted',
          concurrency: 1,
          maxFailures: 0,
          bakeMs: 30_000,
          bakeUntil: null,
          sites: [
            { site: 'alpha', status: 'confirmed', attempts: 1, error: null },
            { site: HOSTILE, status: 'reverted', attempts: 1, error: 'no confirm' },
          ],
        },
        {
          name: 'rest',
          state: 'skipped',
          concurrency: 16,
          maxFailures: 1,
          bakeMs: 0,
          bakeUntil: null,
          sites: [],
        },
      ],
    },
    events: [{ at: now, level: 'error', kind: 'halted', message: `halted: ${HOSTILE}`, wave: 'canary' }],
  };
}

describe.skipIf(!chromiumAvailable())('status page in headless chromium', () => {
  let server: Server;
  let url: string;
  let browser: HeadlessBrowser;
  let current: ApiStatus;

  beforeAll(async () => {
    current = document(5_000, [
      site('alpha'),
      site(HOSTILE, {
        labels: { [HOSTILE.slice(0, 4)]: HOSTILE },
        state: 'failed',
        lastRevert: { generation: 'g2', reason: HOSTILE, at: 4_000 },
        lastAttempt: { generation: 'g2', commit: 'c', outcome: 'unconfirmed', at: 4_000, error: HOSTILE },
        health: [
          { name: 'isp1', state: 'unknown', latencyMs: null, loss: 0, since: null, probeError: HOSTILE },
        ],
        drift: {
          policy: 'report',
          checkedAt: 4_000,
          items: [{ object: 'rule 30000', kind: 'missing', expected: 'x', found: null, firstSeen: 1 }],
          shadowed: 0,
        },
      }),
    ]);
    server = createServer((req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(STATUS_PAGE_HTML);
      } else if (req.url === '/api/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(current));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('renders summary, sites, waves and events, with hostile text shown as text', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('#sites tbody tr[data-site="alpha"]');
    expect(await page.locator('#sites tbody tr').count()).toBe(2);
    const alpha = page.locator('tr[data-site="alpha"]');
    expect(await alpha.locator('[data-provider="isp1"]').getAttribute('data-state')).toBe('up');
    expect(await alpha.locator('[data-provider="isp1"]').innerText()).toContain('0.4 ms, 0% loss');
    expect(await alpha.locator('[data-provider="isp2"]').innerText()).toContain('100% loss');
    expect(await alpha.innerText()).toContain('abc123def456-0011');
    // Hostile strings: shown literally, and no element was made from them.
    const body = await page.locator('body').innerText();
    expect(body).toContain(HOSTILE);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    const hostile = page.locator(`tr[data-site="${HOSTILE.replace(/"/g, '\\"')}"]`);
    expect(await hostile.innerText()).toContain('1 item');
    // A provider whose probes cannot run says why, beside it; alpha's providers say nothing.
    expect(await hostile.locator('[data-provider="isp1"]').innerText()).toContain(
      `probes cannot run: ${HOSTILE}`,
    );
    expect(await alpha.innerText()).not.toContain('probes cannot run');
    // The rollout: its waves in order, with their states.
    expect(
      await page.locator('.wave').evaluateAll((ws) => ws.map((w) => w.getAttribute('data-wave'))),
    ).toEqual(['canary', 'rest']);
    expect(await page.locator('#rollout').innerText()).toMatch(/halted in wave canary: unconfirmed/);
    expect(await page.locator('#events').innerText()).toContain(`halted: ${HOSTILE}`);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('refreshes by itself: a provider going down shows without a reload', async () => {
    const page = await browser.context.newPage();
    await page.goto(url);
    await page.waitForSelector('tr[data-site="alpha"] [data-provider="isp1"][data-state="up"]');
    current = {
      ...current,
      now: 9_000,
      sites: current.sites.map((s) =>
        s.name === 'alpha'
          ? { ...s, health: s.health.map((h) => (h.name === 'isp1' ? { ...h, state: 'down', loss: 1 } : h)) }
          : s,
      ),
    };
    await page.waitForSelector('tr[data-site="alpha"] [data-provider="isp1"][data-state="down"]', {
      timeout: 10_000,
    });
    expect(await page.locator('body').getAttribute('data-updated')).toBe('9000');
    await page.close();
  });
});
