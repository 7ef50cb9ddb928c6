/**
 * Router facts end to end (D170–D173): a namespace router for home-pppoe (two PPP-like links
 * with addresses the spec does not know, and a VPN-style route in main that Uplink does not
 * own) with real sshd and the installed agent daemon, and the built controller daemon
 * (`uplink run`) in the lab's controller namespace. Once the controller has polled, its state
 * dir holds the router's facts, and:
 *
 * - `uplink explain --state-dir` gives the kernel's answer (`ip route get` in the router's
 *   namespace) where the spec alone cannot: a source that is a PPP link's address, main's own
 *   route, a policy over a PPP link — and without the state dir says "unknown offline";
 * - `uplink plan --state-dir` flags a change whose replies to the controller would leave by
 *   ppp1 instead of mgmt0; pushed, the controller's rollout halts on the canary agent's very
 *   refusal, and nothing on the router changes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiStatus } from '../controller/src/http/api-status.js';
import { buildDist, ROOT } from './build-dist.js';
import { until } from './controller-rollout-ns-lab.js';
import { type FleetLab, startFleetLab } from './lab/fleet-lab.js';
import { requireRoot } from './lab/index.js';
import { callOnSocket } from './lab/json-lines.js';

const UPLINK = join(ROOT, 'dist/uplink.mjs');
const SITE = 'home-pppoe';
/** The policy band before suppressMain (900), so a policy can capture the route back to the controller. */
const FLEET = `defaults:
  priorities:
    policy: [100, 899]
rollout:
  confirmWithin: 10s
  siteTimeout: 60s
  waves:
    - name: all
      maxFailures: 0
`;
const VPN = '10.9.0.0/16';

interface RouteGet {
  readonly dev?: string;
  readonly prefsrc?: string;
  readonly gateway?: string;
}

describe.skipIf(!requireRoot())('router facts: explain and plan against what uplink run stored', () => {
  let lab: FleetLab;
  let dir: string;
  let stateDir: string;

  const uplink = (args: string[]) =>
    lab.run(null, [process.execPath, UPLINK, ...args], { allowFailure: true, timeoutMs: 120_000 });
  const explain = async (args: string[]) => {
    const r = await uplink(['explain', SITE, '--repo', lab.repo.work, ...args, '-o', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as {
      verdict: { kind: string; dev?: string; src?: string; gateway?: string };
      unknown: string | null;
      basis: { kind: string };
      notes: string[];
    };
  };
  const routeGet = async (args: string[]): Promise<RouteGet> => {
    const r = await lab.run(null, ['ip', '-n', lab.site(SITE).ns, '-j', 'route', 'get', ...args]);
    return (JSON.parse(r.stdout) as RouteGet[])[0]!;
  };
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
  const status = (): ApiStatus | undefined => {
    try {
      return JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as ApiStatus;
    } catch {
      return undefined;
    }
  };
  const ppp = (name: string) => lab.site(SITE).uplinks.find((u) => u.interface === name)!;

  beforeAll(async () => {
    buildDist();
    dir = mkdtempSync(join(tmpdir(), 'uplink-facts-ns-'));
    stateDir = join(dir, 'state');
    lab = await startFleetLab({ dir: join(dir, 'lab'), sites: [SITE], fleetYaml: FLEET });
    // A VPN's route in main: only the router knows it.
    await lab.run(null, [
      'ip',
      '-n',
      lab.site(SITE).ns,
      'route',
      'add',
      VPN,
      'dev',
      'ppp0',
      'proto',
      'static',
    ]);
    const config = join(dir, 'controller.yaml');
    writeFileSync(
      config,
      `repo: { url: ${lab.repo.bare}, pollInterval: 1s }
ssh: { identity: ${lab.controllerKey}, knownHosts: ${lab.knownHosts}, connectTimeout: 5s }
stateDir: ${stateDir}
status: { pollInterval: 2s, freshFor: 1s }
`,
    );
    lab.spawn(
      'controller',
      lab.controllerNs,
      [process.execPath, UPLINK, 'run', '--config', config],
      join(dir, 'controller.log'),
    );
    await until(
      'the site in sync and its facts stored',
      () => {
        const s = status();
        const site = s?.sites.find((x) => x.name === SITE);
        return site?.state === 'in-sync' &&
          site.facts !== null &&
          existsSync(join(stateDir, 'facts', `${SITE}.json`))
          ? true
          : undefined;
      },
      180_000,
    );
  }, 300_000);

  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the stored facts are the router's: both PPP addresses with their peers, main's VPN route, the controller's address", () => {
    const stored = JSON.parse(readFileSync(join(stateDir, 'facts', `${SITE}.json`), 'utf8'));
    for (const name of ['ppp0', 'ppp1'])
      expect(stored.facts.interfaces[name].addresses).toEqual([
        { address: ppp(name).address, prefixLength: 32, peer: ppp(name).gateway },
      ]);
    expect(stored.facts.routes).toContainEqual(
      expect.objectContaining({ table: 254, dst: VPN, dev: 'ppp0', protocol: 4 }),
    );
    expect(stored.facts.connection).toMatchObject({
      controller: lab.controllerAddress,
      router: lab.site(SITE).mgmtAddress,
    });
    expect(status()!.sites.find((s) => s.name === SITE)!.facts!.hash).toBe(stored.hash);
  });

  it('`uplink status SITE` says when the facts were reported and shows every address', async () => {
    const r = await uplink(['status', SITE, '--state-dir', stateDir]);
    expect(r.stdout).toMatch(
      new RegExp(
        `\\nfacts: {5}reported .* \\(read on the router .*\\), hash [0-9a-f]{12}; .*ppp1 ${ppp('ppp1').address.replaceAll('.', '\\.')} peer ${ppp('ppp1').gateway.replaceAll('.', '\\.')}`,
      ),
    );
  });

  it("explain with the stored facts gives the kernel's answers; without them, unknown where the spec cannot know", async () => {
    const facts = ['--state-dir', stateDir];
    const cases: Array<{ ask: string[]; kernel: string[] }> = [
      // The router's own traffic from ppp1's address: ppp1's source rule.
      {
        ask: ['--dst', '203.0.113.25', '--src', ppp('ppp1').address],
        kernel: ['203.0.113.25', 'from', ppp('ppp1').address],
      },
      // Main's VPN route, from the router and from the LAN.
      { ask: ['--dst', '10.9.4.4'], kernel: ['10.9.4.4'] },
      {
        ask: ['--dst', '10.9.4.4', '--src', lab.site(SITE).lanHosts[0]!, '--iif', 'lan0'],
        kernel: ['10.9.4.4', 'from', lab.site(SITE).lanHosts[0]!, 'iif', 'lan0'],
      },
      // The P2P daemon's policy over ppp1, from ppp1's address.
      { ask: ['--dst', '203.0.113.25', '--uid', '108'], kernel: ['203.0.113.25', 'uid', '108'] },
    ];
    for (const { ask, kernel } of cases) {
      const answer = await explain([...ask, ...facts]);
      const truth = await routeGet(kernel);
      expect(answer.basis.kind, ask.join(' ')).toBe('router');
      expect(answer.unknown).toBeNull();
      expect({ dev: answer.verdict.dev, src: answer.verdict.src }, ask.join(' ')).toEqual({
        dev: truth.dev,
        src: truth.prefsrc ?? answer.verdict.src,
      });
    }
    const offline = await explain(['--dst', '203.0.113.25', '--src', ppp('ppp1').address]);
    expect(offline.basis.kind).toBe('spec');
    expect(offline.unknown).toMatch(/may be an address of .*ppp1 that only the router knows/);
  });

  it('plan flags a change the agent would refuse; pushed, the rollout halts on that refusal and the router keeps its state', async () => {
    const file = join(lab.repo.work, 'sites', `${SITE}.yaml`);
    writeFileSync(
      file,
      `${readFileSync(file, 'utf8').trimEnd()}\n  - name: to-controller\n    to: ${lab.controllerAddress}/32\n    via: [ppp1]\n`,
    );
    await git('commit', '-qam', 'route the controller over ppp1 (cuts the management path)');
    const plan = await uplink([
      'plan',
      '--repo',
      lab.repo.work,
      '--base',
      'origin/main',
      '--head',
      'HEAD',
      '--state-dir',
      stateDir,
      '-o',
      'json',
    ]);
    expect(plan.exitCode, plan.stderr).toBe(1);
    const site = JSON.parse(plan.stdout).sites.find((s: { site: string }) => s.site === SITE);
    expect(site.managementPath).toMatchObject({
      checked: true,
      refused: true,
      check: { controller: lab.controllerAddress, current: { dev: 'mgmt0' }, next: { dev: 'ppp1' } },
    });
    expect(site.managementPath.message).toMatch(
      new RegExp(
        `^would be refused: rule \\d+ .* would send replies to the controller ${lab.controllerAddress.replaceAll('.', '\\.')} out ppp1 instead of mgmt0$`,
      ),
    );
    const text = await uplink([
      'plan',
      '--repo',
      lab.repo.work,
      '--base',
      'origin/main',
      '--head',
      'HEAD',
      '--state-dir',
      stateDir,
    ]);
    expect(text.stdout).toContain(`warning: site ${SITE}: would be refused:`);

    // The same from facts printed on the router (no connection in them: the controller's address is given).
    const site1 = lab.site(SITE);
    const printed = await lab.run(site1.ns, [
      site1.agent.bin,
      'show',
      '--facts',
      '--state-dir',
      site1.agent.stateDir,
    ]);
    const factsFile = join(dir, 'printed-facts.json');
    writeFileSync(factsFile, printed.stdout);
    expect(JSON.parse(printed.stdout).facts.routes).toContainEqual(
      expect.objectContaining({ dst: VPN, dev: 'ppp0' }),
    );
    const offline = await uplink([
      'plan',
      '--repo',
      lab.repo.work,
      '--base',
      'origin/main',
      '--head',
      'HEAD',
      '--facts',
      `${SITE}=${factsFile}`,
      '--controller-address',
      lab.controllerAddress,
      '-o',
      'json',
    ]);
    expect(offline.exitCode, offline.stderr).toBe(1);
    expect(
      JSON.parse(offline.stdout).sites.find((s: { site: string }) => s.site === SITE).managementPath.message,
    ).toBe(site.managementPath.message);

    const before = await callOnSocket(lab.site(SITE).agent.socket, 'status', {}, 'status');
    await git('push', '-q', 'origin', 'main');
    const halted = await until(
      'the rollout halted',
      () => {
        const s = status();
        return s?.rollout?.phase === 'halted' ? s : undefined;
      },
      120_000,
    );
    const attempt = halted.sites.find((s) => s.name === SITE)!.lastAttempt;
    expect(attempt?.outcome).toBe('refused');
    expect(attempt?.error).toMatch(/management/i);
    const after = (await callOnSocket(lab.site(SITE).agent.socket, 'status', {}, 'status')) as {
      applied: unknown;
    };
    expect(after.applied).toEqual((before as { applied: unknown }).applied);
  }, 240_000);
});
