/**
 * GitOps an operator can trust, end to end: three lab routers (real sshd and agent daemons in
 * network namespaces) and the built controller daemon (`uplink run`) in the lab's controller
 * namespace, with headless chromium there too.
 *
 * - `uplink apply` of uncommitted work is refused and changes nothing; with `--break-glass`
 *   it goes through, is recorded on the router (who, why) and shown as a manual override —
 *   kept while the site is suspended — and reconciled back to git once it is resumed;
 * - `uplink suspend` holds a pushed commit back (no router changes), `uplink resume` rolls it
 *   out;
 * - a site unreachable during a rollout (its SSH blocked in the controller's namespace) is
 *   brought up to date once it answers again;
 * - a failover and a drift are in the site's timeline (`uplink status SITE`, /api/sites/SITE,
 *   the site page) and in the front page's events, with since, why, loss and latency;
 * - `uplink status` exits 0 in sync and 1 for each problem seen, and its counts are the
 *   API's, the page's and the metrics'.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSiteDetail, ApiStatus } from '../controller/src/http/api-status.js';
import { buildDist, ROOT } from './build-dist.js';
import { until } from './controller-rollout-ns-lab.js';
import { type FleetLab, startFleetLab } from './lab/fleet-lab.js';
import { requireRoot } from './lab/index.js';
import { callOnSocket } from './lab/json-lines.js';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './status-page-browser.js';

const UPLINK = join(ROOT, 'dist/uplink.mjs');
const SITES = ['dmz-redundant', 'home-pppoe', 'lartc-split'];
const FLEET = `rollout:
  confirmWithin: 10s
  siteTimeout: 60s
  reconcile: auto
  waves:
    - name: canary
      select: { sites: [lartc-split] }
      concurrency: 1
      bake: 1s
    - name: rest
      concurrency: 2
      maxFailures: 1
`;

interface AgentStatus {
  readonly applied: { generation: string; hash: string; at: number } | null;
  readonly pending: unknown;
}

describe.skipIf(!requireRoot() || !chromiumAvailable())(
  'GitOps end to end (namespace routers, uplink run)',
  () => {
    let lab: FleetLab;
    let dir: string;
    let config: string;
    let browser: HeadlessBrowser;
    let http: string;

    /** `uplink ARGS` in the controller namespace, with the lab's defaults file (no flags needed). */
    const uplink = (args: string[]) =>
      lab.run(
        lab.controllerNs,
        [
          'env',
          `UPLINK_CONFIG=${join(dir, 'uplink.yaml')}`,
          'UPLINK_ACTOR=ops@lab',
          process.execPath,
          UPLINK,
          ...args,
        ],
        {
          allowFailure: true,
          timeoutMs: 180_000,
        },
      );
    const curl = async (path: string) =>
      (await lab.run(lab.controllerNs, ['curl', '-sf', `${http}${path}`], { timeoutMs: 30_000 })).stdout;
    const api = async () => JSON.parse(await curl('/api/status')) as ApiStatus;
    const site = async (name: string) => (await api()).sites.find((s) => s.name === name)!;
    const agent = async (name: string) =>
      (await callOnSocket(lab.site(name).agent.socket, 'status', {}, `${name}: status`)) as AgentStatus;
    const git = (...args: string[]) =>
      lab.run(null, [
        'git',
        '-C',
        lab.repo.work,
        '-c',
        'user.name=Lab Ops',
        '-c',
        'user.email=ops@lab.example',
        ...args,
      ]);
    const commitAndPush = async (message: string) => {
      await git('commit', '-qam', message);
      await git('push', '-q', 'origin', 'main');
      return (await git('rev-parse', 'HEAD')).stdout.trim();
    };
    const allInSync = async () => {
      const s = await api().catch(() => undefined);
      if (!s) return undefined;
      return s.summary.byState['in-sync'] === SITES.length && s.rollout?.phase === 'done' ? s : undefined;
    };

    beforeAll(async () => {
      buildDist();
      dir = mkdtempSync(join(tmpdir(), 'uplink-gitops-ns-'));
      lab = await startFleetLab({ dir: join(dir, 'lab'), sites: SITES, fleetYaml: FLEET });
      config = join(dir, 'controller.yaml');
      http = `http://${lab.controllerAddress}:9471`;
      writeFileSync(
        config,
        `repo: { url: ${lab.repo.bare}, pollInterval: 1s }
ssh: { identity: ${lab.controllerKey}, knownHosts: ${lab.knownHosts}, connectTimeout: 5s }
http: { listen: '${lab.controllerAddress}:9471' }
stateDir: ${join(dir, 'state')}
status: { pollInterval: 2s, freshFor: 1s }
reconcile: { backoff: 5s, maxBackoff: 20s }
`,
      );
      // The defaults an operator writes once: the repository clone, the key, known_hosts, the controller.
      writeFileSync(
        join(dir, 'uplink.yaml'),
        `repo: ${lab.repo.work}\nidentity: ${lab.controllerKey}\nknownHosts: ${lab.knownHosts}\ncontroller: ${config}\n`,
      );
      lab.spawn(
        'controller',
        lab.controllerNs,
        [process.execPath, UPLINK, 'run', '--config', config],
        join(dir, 'controller.log'),
      );
      browser = await launchChromium(lab.controllerNs);
      await until('the first rollout done and every site in sync', allInSync, 180_000);
    }, 300_000);

    afterAll(async () => {
      await browser?.close();
      await lab?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('in sync: `uplink status` exits 0 and names the target commit and what the routers run', async () => {
      const r = await uplink(['status']);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      const commit = (await git('rev-parse', 'HEAD')).stdout.trim();
      expect(r.stdout).toContain(`target:    ${commit.slice(0, 12)}`);
      expect(r.stdout).toContain(`routers:   ${commit.slice(0, 12)} on 3 sites`);
    });

    it('a dirty apply is refused; break-glass goes through, shows as an override, and is reconciled back to git', async () => {
      const file = join(lab.repo.work, 'sites', 'dmz-redundant.yaml');
      const before = await agent('dmz-redundant');
      await lab.run(null, [
        'sh',
        '-c',
        `printf 'sysctls:\\n  net.ipv4.conf.all.log_martians: 1\\n' >> ${file}`,
      ]);
      const refused = await uplink(['apply', 'dmz-redundant']);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(
        /apply refused: git is the truth, and the work tree has uncommitted changes \(sites\/dmz-redundant\.yaml\)/,
      );
      expect(refused.stderr).toContain('--break-glass "WHY"');
      expect((await agent('dmz-redundant')).applied).toEqual(before.applied);

      // Keep the override while the hotfix lasts: suspend the site first, as the apply advises.
      expect((await uplink(['suspend', 'dmz-redundant', '--reason', 'hotfix on the router'])).exitCode).toBe(
        0,
      );
      await until(
        'the suspension seen',
        async () => ((await site('dmz-redundant')).suspended ? true : undefined),
        30_000,
      );
      const forced = await uplink([
        'apply',
        'dmz-redundant',
        '--break-glass',
        'log martians while isp2 is checked',
      ]);
      expect(forced.exitCode, forced.stdout + forced.stderr).toBe(0);
      expect(forced.stderr).toMatch(
        /break-glass by lab@uplink\.invalid .*: recorded on the router as "log martians while isp2 is checked"/,
      );
      expect(forced.stderr).toMatch(
        /dmz-redundant: applied; confirming over a new connection — the router reverts by itself at \d\d:\d\d:\d\d unless confirmed/,
      );
      expect(forced.stdout).toMatch(
        /^dmz-redundant: applied \(\d+ changes?\) generation bg:lab\.uplink\.invalid:log\.martians\.while\.isp2\.is\.checked:[0-9a-f]{12}\+dirty-[0-9a-f]{12}$/m,
      );
      const overridden = await until(
        'dmz-redundant shown as a manual override',
        async () => {
          const s = await site('dmz-redundant');
          return s.state === 'overridden' ? s : undefined;
        },
        30_000,
      );
      expect(overridden.override).toMatchObject({
        by: 'lab.uplink.invalid',
        reason: 'log martians while isp2 is checked',
      });
      // The override holds while the site is suspended (several polls and reconcile passes later).
      await new Promise((r) => setTimeout(r, 6_000));
      expect((await agent('dmz-redundant')).applied?.generation).toMatch(/^bg:lab\.uplink\.invalid:/);
      const status = await uplink(['status']);
      expect(status.exitCode).toBe(1);
      expect(status.stdout).toMatch(
        /^ {2}dmz-redundant: overridden: manual override by lab\.uplink\.invalid: log martians while isp2 is checked/m,
      );
      const one = await uplink(['status', 'dmz-redundant']);
      expect(one.exitCode).toBe(1);
      expect(one.stdout).toMatch(
        /^override: {2}by lab\.uplink\.invalid: log martians while isp2 is checked$/m,
      );
      expect(one.stdout).toMatch(/warn {2}override +manual override by lab\.uplink\.invalid/);
      const metrics = await curl('/metrics');
      expect(metrics).toMatch(/^uplink_site_state\{site="dmz-redundant",state="overridden"\} 1$/m);
      expect(metrics).toMatch(/^uplink_site_override_timestamp_seconds\{site="dmz-redundant"\} \d+/m);
      expect(metrics).toMatch(/^uplink_site_suspended\{site="dmz-redundant"\} 1$/m);

      // Resumed: the controller brings it back to git (commit-confirmed), and says so.
      await git('checkout', '--', 'sites/dmz-redundant.yaml');
      expect((await uplink(['resume', 'dmz-redundant'])).exitCode).toBe(0);
      await until(
        'dmz-redundant back on git',
        async () => ((await site('dmz-redundant')).state === 'in-sync' ? true : undefined),
        60_000,
      );
      const back = await agent('dmz-redundant');
      expect(back.applied?.generation).toMatch(/^[0-9a-f]{40}-[0-9a-f]{12}$/);
      expect(back.applied?.hash).toBe(before.applied?.hash);
      const detail = JSON.parse(await curl('/api/sites/dmz-redundant')) as ApiSiteDetail;
      const kinds = detail.timeline.map((e) => e.kind);
      expect(kinds).toEqual(expect.arrayContaining(['suspended', 'override', 'resumed']));
      expect(kinds.lastIndexOf('applied')).toBeGreaterThan(kinds.indexOf('override'));
      expect(detail.timeline.find((e) => e.kind === 'override')?.message).toContain(
        'log martians while isp2 is checked',
      );
      expect((await uplink(['status'])).exitCode).toBe(0);
    }, 240_000);

    it('suspend holds a pushed commit back; resume rolls it out', async () => {
      const before = new Map(
        await Promise.all(SITES.map(async (s) => [s, (await agent(s)).applied] as const)),
      );
      expect((await uplink(['suspend', '--reason', 'change freeze'])).exitCode).toBe(0);
      await until(
        'the fleet suspension seen',
        async () => ((await api()).suspended ? true : undefined),
        30_000,
      );
      await lab.run(null, [
        'sh',
        '-c',
        `printf '  net.ipv4.conf.all.log_martians: 1\\n' >> ${join(lab.repo.work, 'groups', 'base.yaml')}`,
      ]);
      const commit = await commitAndPush('log martians everywhere');
      await until(
        'the commit seen',
        async () => ((await api()).target?.commit === commit ? true : undefined),
        30_000,
      );
      await new Promise((r) => setTimeout(r, 6_000));
      for (const s of SITES) expect((await agent(s)).applied, s).toEqual(before.get(s));
      const held = await uplink(['status']);
      expect(held.exitCode).toBe(1);
      expect(held.stdout).toMatch(/^SUSPENDED: by ops@lab at .*: change freeze$/m);
      expect(held.stdout).toMatch(/^ {2}rollouts and reconciliation suspended by ops@lab: change freeze$/m);
      expect(await curl('/metrics')).toMatch(/^uplink_suspended 1$/m);
      expect((await uplink(['resume'])).exitCode).toBe(0);
      const done = await until(
        'the held commit rolled out',
        async () => {
          const s = await allInSync();
          return s?.rollout?.commit === commit ? s : undefined;
        },
        120_000,
      );
      for (const s of SITES)
        expect((await agent(s)).applied?.generation.startsWith(`${commit}-`), s).toBe(true);
      expect(done.events.map((e) => e.kind)).toEqual(
        expect.arrayContaining(['suspended', 'waiting', 'resumed']),
      );
    }, 240_000);

    it('a site unreachable during a rollout is brought up to date once it answers again', async () => {
      const home = lab.site('home-pppoe');
      const block = ['nft', '-f', '-'];
      await lab.run(lab.controllerNs, block, {
        stdin: `table ip gitops-block {\n chain output {\n  type filter hook output priority 0;\n  ip daddr ${home.mgmtAddress} tcp dport 22 reject with tcp reset\n }\n}\n`,
      });
      try {
        await lab.run(null, [
          'sh',
          '-c',
          `printf '  net.ipv4.conf.all.accept_redirects: 0\\n' >> ${join(lab.repo.work, 'groups', 'base.yaml')}`,
        ]);
        const commit = await commitAndPush('no redirects');
        const finished = await until(
          'the rollout done without home-pppoe',
          async () => {
            const s = await api();
            return s.rollout?.commit === commit && s.rollout.phase === 'done' ? s : undefined;
          },
          180_000,
        );
        expect(
          finished.rollout?.waves.flatMap((w) => w.sites).find((x) => x.site === 'home-pppoe')?.status,
        ).toBe('unreachable');
        const unreachable = await until('home-pppoe unreachable', async () => {
          const s = await site('home-pppoe');
          return s.state === 'unreachable' ? s : undefined;
        });
        expect(unreachable.conditions[0]!.message).toMatch(/refused|ECONNREFUSED|reset/i);
        expect((await uplink(['status'])).exitCode).toBe(1);
        expect((await agent('home-pppoe')).applied?.generation.startsWith(`${commit}-`)).toBe(false);
      } finally {
        await lab.run(lab.controllerNs, ['nft', 'delete', 'table', 'ip', 'gitops-block'], {
          allowFailure: true,
        });
      }
      await until(
        'home-pppoe brought up to date',
        async () => ((await site('home-pppoe')).state === 'in-sync' ? true : undefined),
        120_000,
      );
      const detail = JSON.parse(await curl('/api/sites/home-pppoe')) as ApiSiteDetail;
      const kinds = detail.timeline.map((e) => e.kind);
      expect(kinds.lastIndexOf('reachable')).toBeGreaterThan(kinds.lastIndexOf('unreachable'));
      expect(kinds.lastIndexOf('applied')).toBeGreaterThan(kinds.lastIndexOf('reachable'));
      expect((await uplink(['status'])).exitCode).toBe(0);
    }, 300_000);

    it('a failover and a drift: in the timeline and the events, and every view counts the same', async () => {
      const wan1 = lab.site('lartc-split').uplinks.find((u) => u.interface === 'wan1')!;
      await lab.run(wan1.ispNs, ['ip', 'link', 'set', 'dev', 'cust', 'down']);
      await lab.run(lab.site('dmz-redundant').ns, ['ip', 'rule', 'del', 'pref', '30000']);
      const mixed = await until(
        'lartc-split degraded and dmz-redundant drifted',
        async () => {
          const s = await api();
          const state = (n: string) => s.sites.find((x) => x.name === n)?.state;
          // The router sees wan1 lose carrier (unavailable, degraded at once) before its probes
          // count isp1 down; wait for both.
          const isp1 = s.sites.find((x) => x.name === 'lartc-split')?.health.find((h) => h.name === 'isp1');
          return state('lartc-split') === 'degraded' &&
            isp1?.state === 'down' &&
            state('dmz-redundant') === 'drifted'
            ? s
            : undefined;
        },
        60_000,
      );
      const lartc = mixed.sites.find((s) => s.name === 'lartc-split')!;
      expect(lartc.health.find((h) => h.name === 'isp1')).toMatchObject({ state: 'down' });
      expect(lartc.conditions[0]!.message).toMatch(
        /^provider isp1 down since \d{4}-\d\d-\d\dT[\d:]+Z: \d+ failed rounds in a row/,
      );

      // Counts: the CLI's, the API's, the metrics' and the page's agree (each site once).
      const cli = JSON.parse((await uplink(['status', '-o', 'json'])).stdout) as ApiStatus;
      const metrics = await curl('/metrics');
      const page = await browser.context.newPage();
      await page.goto(`${http}/`);
      const cards = Object.fromEntries(
        await page
          .locator('#summary .card[data-state]')
          .evaluateAll((cs) =>
            cs.map((c) => [c.getAttribute('data-state'), Number(c.querySelector('b')?.textContent)]),
          ),
      );
      const counts = (s: ApiStatus) =>
        Object.fromEntries(Object.entries(s.summary.byState).filter(([, n]) => n > 0));
      expect(counts(cli)).toEqual({ 'in-sync': 1, drifted: 1, degraded: 1 });
      expect(cards).toEqual(counts(cli));
      expect(counts(await api())).toEqual(counts(cli));
      for (const [state, n] of Object.entries(cli.summary.byState))
        expect(metrics).toMatch(new RegExp(`^uplink_sites\\{state="${state}"\\} ${n}$`, 'm'));
      expect(metrics).toMatch(/^uplink_provider_up\{site="lartc-split",provider="isp1"\} 0$/m);
      expect(metrics).toMatch(
        /^uplink_provider_loss_ratio\{site="lartc-split",provider="isp1"\} (0\.\d+|1)$/m,
      );
      expect(metrics).toMatch(/^uplink_provider_latency_seconds\{site="lartc-split",provider="dsl"\} \d/m);
      expect(metrics).toMatch(/^uplink_site_drift_items\{site="dmz-redundant"\} 1$/m);
      expect((await uplink(['status'])).exitCode).toBe(1);

      // The front page's events show the failover and the drift.
      await page.waitForSelector('#events tr[data-kind="provider-down"]', { timeout: 20_000 });
      await page.waitForSelector('#events tr[data-kind="drift-found"]', { timeout: 20_000 });
      // UPLINK_SCREENSHOT=FILE: keep a picture of the page at this moment (docs/status-page.png is one).
      if (process.env.UPLINK_SCREENSHOT) {
        await page.setViewportSize({ width: 1400, height: 900 });
        await page.goto(`${http}/`);
        await page.screenshot({ path: process.env.UPLINK_SCREENSHOT, fullPage: true });
      }

      // Back to health: the link returns, the agent restarts (and re-applies, repairing the drift).
      await lab.run(wan1.ispNs, ['ip', 'link', 'set', 'dev', 'cust', 'up']);
      await lab.restartAgent('dmz-redundant');
      await until('all in sync again', allInSync, 90_000);

      // The timelines: since when, why, loss and latency; drift found and cleared — in the CLI, the API and the page.
      const timeline = JSON.parse(await curl('/api/sites/lartc-split')) as ApiSiteDetail;
      const down = timeline.timeline
        .filter((e) => e.kind === 'provider-down' && e.provider === 'isp1')
        .at(-1)!;
      expect(down.message).toMatch(
        /^isp1 up → down: \d+ failed rounds in a row: .* \(loss \d+%, latency .*\)$/,
      );
      expect(down.loss).toBeGreaterThan(0);
      const up = timeline.timeline.filter((e) => e.kind === 'provider-up' && e.provider === 'isp1').at(-1)!;
      expect(up.at).toBeGreaterThan(down.at);
      const dmz = JSON.parse(await curl('/api/sites/dmz-redundant')) as ApiSiteDetail;
      const found = dmz.timeline.filter((e) => e.kind === 'drift-found').at(-1)!;
      expect(found.message).toMatch(/^drift: missing rule priority 30000/);
      expect(dmz.timeline.some((e) => e.kind === 'drift-cleared' && e.at >= found.at)).toBe(true);
      const text = await uplink(['status', 'lartc-split']);
      expect(text.stdout).toMatch(/provider-down +isp1 up → down/);
      expect(text.stdout).toMatch(/provider-up +isp1 down → up/);
      await page.goto(`${http}/sites/lartc-split`);
      expect(await page.locator('#timeline tr[data-kind="provider-down"]').count()).toBeGreaterThan(0);
      expect(await page.locator('#providers tr[data-provider="isp1"]').getAttribute('data-state')).toBe('up');
      await page.goto(`${http}/sites/dmz-redundant`);
      expect(await page.locator('#timeline tr[data-kind="drift-cleared"]').count()).toBeGreaterThan(0);
      await page.close();
    }, 300_000);

    it('a forced apply whose confirm cannot arrive prints its progress and when the router reverts; it does', async () => {
      // The controller is stopped (its polls would use the one connection allowed below).
      await lab.kill('controller');
      const target = lab.site('home-pppoe');
      const before = await agent('home-pppoe');
      await lab.run(lab.controllerNs, ['nft', '-f', '-'], {
        stdin: `table ip gitops-confirm {\n chain output {\n  type filter hook output priority 0;\n  ip daddr ${target.mgmtAddress} tcp dport 22 ct state new limit rate 1/hour burst 1 packets accept\n  ip daddr ${target.mgmtAddress} tcp dport 22 ct state new reject with tcp reset\n }\n}\n`,
      });
      try {
        await lab.run(null, [
          'sh',
          '-c',
          `printf '  net.ipv4.conf.all.secure_redirects: 0\\n' >> ${join(lab.repo.work, 'groups', 'base.yaml')}`,
        ]);
        const started = Date.now();
        const forced = await uplink([
          'apply',
          'home-pppoe',
          '--confirm-within',
          '8s',
          '--break-glass',
          'testing the confirm path',
        ]);
        expect(forced.exitCode).toBe(1);
        expect(forced.stderr).toMatch(/^home-pppoe: connecting to [\d.]+:22 to apply$/m);
        expect(forced.stderr).toMatch(/^home-pppoe: applying$/m);
        const announced =
          /^home-pppoe: applied; confirming over a new connection — the router reverts by itself at (\d\d:\d\d:\d\d) unless confirmed$/m.exec(
            forced.stderr,
          );
        expect(announced, forced.stderr).not.toBeNull();
        expect(forced.stderr).toMatch(/^home-pppoe: confirm attempt 1 failed \(.*\); retrying in [\d.]+ s$/m);
        const outcome =
          /^home-pppoe: unconfirmed \(\d+ changes?\) generation (\S+): .*; not confirmed: the router reverts by itself at (\d\d:\d\d:\d\d) \(in \d+ s\)$/m.exec(
            forced.stdout,
          );
        expect(outcome, forced.stdout).not.toBeNull();
        expect(outcome![2]).toBe(announced![1]);
        // It does revert by itself, at about that time.
        const reverted = await until(
          'the agent reverted the unconfirmed apply',
          async () => {
            const s = (await callOnSocket(target.agent.socket, 'status', {})) as {
              lastRevert: { generation: string; reason: string; at: number } | null;
              applied: AgentStatus['applied'];
            };
            return s.lastRevert?.generation === outcome![1] ? s : undefined;
          },
          30_000,
        );
        expect(reverted.lastRevert?.reason).toBe('confirm-timeout');
        expect(reverted.lastRevert!.at - started).toBeGreaterThanOrEqual(8_000);
        expect(reverted.applied).toEqual(before.applied);
      } finally {
        await lab.run(lab.controllerNs, ['nft', 'delete', 'table', 'ip', 'gitops-confirm'], {
          allowFailure: true,
        });
        await git('checkout', '--', 'groups/base.yaml');
      }
    }, 120_000);
  },
);
