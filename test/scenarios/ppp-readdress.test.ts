/**
 * A PPP re-dial on home-pppoe: ppp1 comes back with a new address (and a new peer). The kernel
 * drops the routes over ppp1 with its last address; `uplink-agent reconcile` (re-resolving the
 * last applied desired state) moves the `from <ppp1 address>` rule to the new address, puts
 * ppp1's default route back, and uid 108 leaves by ppp1 again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../agent/src/cli.js';
import { LinuxDataplane } from '../../agent/src/dataplane/linux.js';
import { type Lab, requireRoot, type SiteTopology, useLab } from '../lab/index.js';
import { buildSiteLab, compileExampleSite, routeGet, ruleLines, SiteAgent } from './site-lab.js';

const NEW_ADDRESS = '198.51.100.70';
const NEW_PEER = '198.51.100.69';

describe.skipIf(!requireRoot())('PPP re-dial: the source rule follows ppp1’s address (home-pppoe)', () => {
  const lab = useLab('redial');
  let l: Lab;
  let topo: SiteTopology;
  let agent: SiteAgent;

  /** `uplink-agent reconcile --format json` against the router namespace. */
  async function agentReconcile(): Promise<{
    code: number;
    report: { changes: { action: string; kind: string; key: string }[] };
  }> {
    let out = '';
    let err = '';
    const code = await runCli(['reconcile', '--state-dir', agent.stateDir, '--format', 'json'], {
      stdout: (text) => {
        out += text;
      },
      stderr: (text) => {
        err += text;
      },
      dataplane: (options) => new LinuxDataplane({ netns: topo.router, ...options }),
    });
    if (code !== 0) throw new Error(`uplink-agent reconcile exited ${code}: ${err}`);
    return { code, report: JSON.parse(out) };
  }

  beforeAll(async () => {
    l = lab.current;
    topo = await buildSiteLab(l, 'home-pppoe');
    const desired = await compileExampleSite('home-pppoe');
    agent = await SiteAgent.create(topo.router, desired.settings.markMask);
    expect((await agent.apply(desired)).verified).toBe(true);
  });
  afterAll(async () => {
    await agent?.dispose();
  });

  it('before the re-dial: uid 108 and ppp1-sourced traffic leave by ppp1', async () => {
    const r = topo.router;
    const old = topo.uplink('ppp1').address;
    expect(await ruleLines(l, r)).toContain(`2001: from ${old} lookup 101 proto 252`);
    expect(await routeGet(l, r, '203.0.113.10', { uid: 108 })).toMatchObject({ dev: 'ppp1' });
    // A real exchange over ppp1 from its address (the ISP filters sources: only ppp1's works there).
    await l.exec(r, ['ping', '-c', '1', '-W', '3', '-I', old, '203.0.113.10']);
  });

  it('after the re-dial, reconcile replaces the source rule and restores the default route', async () => {
    const r = topo.router;
    const old = topo.uplink('ppp1').address;
    await topo.readdress('ppp1', NEW_ADDRESS, NEW_PEER);
    // The kernel removed table 101's route with ppp1's last address: uid 108 falls through to ppp0.
    expect((await l.run(['ip', '-n', r, 'route', 'show', 'table', '101'])).stdout).toBe('');
    expect(await routeGet(l, r, '203.0.113.10', { uid: 108 })).toMatchObject({ dev: 'ppp0' });

    const { report } = await agentReconcile();
    expect(report.changes.map((c) => `${c.action} ${c.kind}`).sort()).toEqual([
      'create route',
      'create rule',
      'delete rule',
    ]);
    const rules = await ruleLines(l, r);
    expect(rules).toContain(`2001: from ${NEW_ADDRESS} lookup 101 proto 252`);
    expect(rules.filter((line) => line.includes(old))).toEqual([]);
    expect((await l.run(['ip', '-n', r, 'route', 'show', 'table', '101'])).stdout.trim()).toBe(
      'default dev ppp1 proto 252 scope link',
    );
    expect(await routeGet(l, r, '203.0.113.10', { uid: 108 })).toMatchObject({ dev: 'ppp1' });
    expect(await routeGet(l, r, '203.0.113.10', { from: NEW_ADDRESS })).toMatchObject({ dev: 'ppp1' });
    await l.exec(r, ['ping', '-c', '1', '-W', '3', '-I', NEW_ADDRESS, '203.0.113.10']);
  });

  it('a second reconcile is a no-op', async () => {
    const { report } = await agentReconcile();
    expect(report.changes).toEqual([]);
  });
});
