/**
 * The status page against a running lab: two lab routers (startFleetLab), the controller
 * daemon (`uplink run`) in the lab's controller namespace, headless chromium in that namespace
 * too. The page lists the sites once the rollout is done, and when lartc-split's main ISP
 * loses its link the page shows that provider down — without a reload.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';
import { type FleetLab, startFleetLab } from './lab/fleet-lab.js';
import { requireRoot } from './lab/index.js';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './status-page-browser.js';

const FLEET = `rollout:
  confirmWithin: 20s
  waves:
    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 1
    - name: rest
`;

describe.skipIf(!requireRoot() || !chromiumAvailable())('status page against a running lab', () => {
  let lab: FleetLab;
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    buildDist();
    lab = await startFleetLab({
      dir: join(mkdtempSync(join(tmpdir(), 'uplink-statuslab-')), 'lab'),
      sites: ['lartc-split', 'home-pppoe'],
      fleetYaml: FLEET,
    });
    const config = join(lab.dir, 'controller', 'controller.yaml');
    writeFileSync(
      config,
      `repo: { url: ${lab.repo.bare}, pollInterval: 1s }
ssh: { identity: ${lab.controllerKey}, knownHosts: ${lab.knownHosts} }
http: { listen: '${lab.controllerAddress}:9470' }
stateDir: ${join(lab.dir, 'controller', 'state')}
status: { pollInterval: 1s, freshFor: 5s }
`,
    );
    lab.spawn(
      'controller',
      lab.controllerNs,
      [process.execPath, join(ROOT, 'dist/uplink.mjs'), 'run', '--config', config],
      join(lab.dir, 'controller.log'),
    );
    browser = await launchChromium(lab.controllerNs);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await lab?.stop();
  });

  it('renders the sites and reflects a failover', async () => {
    const page = await browser.context.newPage();
    const url = `http://${lab.controllerAddress}:9470/`;
    for (let i = 0; ; i++) {
      const ok = await page.goto(url).then(
        (r) => r?.ok() === true,
        () => false,
      );
      if (ok) break;
      if (i > 100) throw new Error(`the controller did not serve ${url}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Both sites rolled out and reporting, isp1 healthy.
    await page.waitForSelector('tr[data-site="home-pppoe"] .badge:text-is("in-sync")', { timeout: 90_000 });
    await page.waitForSelector('tr[data-site="lartc-split"] [data-provider="isp1"][data-state="up"]', {
      timeout: 30_000,
    });
    expect(
      await page.locator('#sites tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.site)),
    ).toEqual(['home-pppoe', 'lartc-split']);
    const isp = lab.site('lartc-split').uplinks.find((u) => u.interface === 'wan1')!.ispNs;
    await lab.run(isp, ['ip', 'link', 'set', 'dev', 'cust', 'down']);
    await page.waitForSelector('tr[data-site="lartc-split"] [data-provider="isp1"][data-state="down"]', {
      timeout: 30_000,
    });
    expect(
      await page.locator('tr[data-site="lartc-split"] [data-provider="dsl"]').getAttribute('data-state'),
    ).toBe('up');
    expect(await page.locator('#summary').innerText()).toMatch(/1\s*degraded/);
    await page.close();
  }, 180_000);
});
