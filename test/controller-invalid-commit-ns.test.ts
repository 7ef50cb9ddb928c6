/**
 * An invalid commit pushed to the fleet repository changes nothing on any router; the fixed
 * commit after it rolls out. The real controller daemon (`uplink run --config`, polling the
 * lab's bare repository every second) runs in the lab's controller namespace against five
 * namespace routers with real sshd and the installed agent daemon.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  addPolicy,
  agentStatuses,
  commitAndPush,
  editYaml,
  journalLength,
  kernelSnapshots,
  logLines,
  type RolloutLab,
  readControllerState,
  runUplink,
  SITES,
  setBaseSysctl,
  startDaemon,
  until,
  untilRollout,
  useRolloutLab,
  writeControllerConfig,
} from './controller-rollout-ns-lab.js';
import { requireRoot } from './lab/index.js';

describe.skipIf(!requireRoot())('invalid commit, then the fix, under uplink run', () => {
  const lab = useRolloutLab('daemon');
  let daemonLog: string;

  beforeAll(async () => {
    daemonLog = startDaemon(lab.rl, 'controller', lab.config).log;
    // The daemon rolls out the lab's first commit by itself.
    await untilRollout(
      lab.stateDir,
      lab.rl.lab.repo.commit,
      ['done'],
      'the first commit rolled out',
      180_000,
    );
  }, 240_000);

  it('an invalid commit changes nothing on any router; it is logged and shown by uplink status', async () => {
    const { rl, config, stateDir } = lab;
    const kernels = await kernelSnapshots(rl);
    for (const [site, k] of kernels) expect(k, site).toMatch(/proto 252/);
    const statuses = await agentStatuses(rl);
    const journals = new Map(SITES.map((s) => [s, journalLength(rl.lab.site(s))] as const));

    // Every site would change (a base sysctl), but one site names a provider it does not have.
    setBaseSysctl(rl, 'net.ipv4.conf.all.log_martians', 1);
    addPolicy(rl, 'home-pppoe', { name: 'backup-host', to: '203.0.113.10', via: ['ppp1'] });
    addPolicy(rl, 'branch-adsl-vpn', { name: 'backup-host', to: '203.0.113.10', via: ['isp3'] });
    const invalid = commitAndPush(rl, 'backup host via a provider branch-adsl-vpn does not have');

    const refused = await until('the daemon to refuse the commit', () => {
      const s = readControllerState(stateDir);
      return s?.lastInvalidCommit?.commit === invalid ? s : undefined;
    });
    expect(refused.lastGoodCommit).toBe(rl.lab.repo.commit);
    expect(refused.lastInvalidCommit!.reason).toBe('invalid-spec');
    const diagnostic = refused.lastInvalidCommit!.diagnostics.find(
      (d) => d.file === 'sites/branch-adsl-vpn.yaml',
    );
    expect(diagnostic, JSON.stringify(refused.lastInvalidCommit)).toBeDefined();
    expect(diagnostic!.line).toBeGreaterThan(0);
    expect(diagnostic!.message).toMatch(/isp3/);
    // The rollout in force is still the first commit's, finished.
    expect(refused.rollout?.plan.commit).toBe(rl.lab.repo.commit);

    // Give the daemon two more fetch rounds (1 s apart): it must not act on the refused commit later either.
    const seen = Date.now();
    await until('two more fetches', () => (lastFetchAt(stateDir) ?? 0) >= seen + 2_000 || undefined, 60_000);

    expect(await kernelSnapshots(rl)).toEqual(kernels);
    const after = await agentStatuses(rl);
    for (const site of SITES) {
      expect(after.get(site)!.applied, site).toEqual(statuses.get(site)!.applied);
      expect(after.get(site)!.pending, site).toBeNull();
      expect(journalLength(rl.lab.site(site)), site).toBe(journals.get(site));
    }
    // The errors are logged with their location.
    expect(
      logLines(readFileSync(daemonLog, 'utf8')).some(
        (l) => l.commit === invalid && l.file === 'sites/branch-adsl-vpn.yaml' && /isp3/.test(l.msg),
      ),
    ).toBe(true);
    // So do the metrics.
    expect(await metrics(rl, daemonLog)).toMatch(
      /^uplink_refused_commits_total\{reason="invalid-spec"\} 1$/m,
    );
    // `uplink status` shows the refused commit, and a refused commit needs attention (exit 1).
    const status = await runUplink(rl, ['status', '--config', config]);
    expect(status.exitCode, status.stdout + status.stderr).toBe(1);
    expect(status.stdout).toContain(invalid.slice(0, 12));
    expect(status.stdout).toMatch(
      new RegExp(`^ {2}commit ${invalid.slice(0, 12)} refused \\(invalid-spec\\)`, 'm'),
    );
    expect(status.stdout).toMatch(/sites\/branch-adsl-vpn\.yaml:\d+:\d+/);

    // `uplink rollout --rev` of the invalid commit refuses it too, without contacting a router.
    const once = await runUplink(rl, [
      'rollout',
      '--config',
      writeControllerConfig(rl, 'once'),
      '--rev',
      invalid,
    ]);
    expect(once.exitCode).toBe(1);
    expect(once.stderr).toMatch(/sites\/branch-adsl-vpn\.yaml:\d+:\d+: error: .*isp3/);
    for (const site of SITES) expect(journalLength(rl.lab.site(site)), site).toBe(journals.get(site));
  }, 180_000);

  it('the fixed commit rolls out to every site', async () => {
    const { rl, stateDir } = lab;
    editYaml(rl, 'sites/branch-adsl-vpn.yaml', (doc) => {
      const policies = doc.get('policies') as { items: Array<{ get(k: string): unknown }> };
      const index = policies.items.findIndex((p) => p.get('name') === 'backup-host');
      doc.setIn(['policies', index, 'via'], doc.createNode(['isp2']));
    });
    const fixed = commitAndPush(rl, 'backup host via isp2 on branch-adsl-vpn');

    const done = await untilRollout(
      stateDir,
      fixed,
      ['done', 'halted'],
      'the fixed commit rolled out',
      180_000,
    );
    expect(done.rollout!.phase).toBe('done');
    expect(done.lastGoodCommit).toBe(fixed);
    expect(done.rollout!.perSite.map((p) => p.site).sort()).toEqual([...SITES].sort());
    const statuses = await agentStatuses(rl);
    for (const site of SITES) {
      expect(statuses.get(site)!.applied?.generation.startsWith(`${fixed}-`), site).toBe(true);
      expect(done.sites[site]?.lastApplied?.generation).toBe(statuses.get(site)!.applied?.generation);
    }
    const kernels = await kernelSnapshots(rl);
    for (const [site, k] of kernels) expect(k, site).toMatch(/# log_martians\n1\n/);
    // The daemon's metrics: two finished rollouts, and (after a status poll) every site in sync.
    expect(await metrics(rl, daemonLog)).toMatch(/^uplink_rollouts_total\{result="done"\} 2$/m);
    await until(
      'every site in sync in the metrics',
      async () => /^uplink_sites\{state="in-sync"\} 5$/m.test(await metrics(rl, daemonLog)) || undefined,
      60_000,
    );
    expect(kernels.get('home-pppoe')).toMatch(/to 203\.0\.113\.10 lookup \d+ proto 252/);
    expect(kernels.get('branch-adsl-vpn')).toMatch(/to 203\.0\.113\.10 lookup \d+ proto 252/);
    // The fix in force clears the refusal: nothing needs attention any more.
    const status = await until(
      '`uplink status` exit 0',
      async () => {
        const r = await runUplink(rl, ['status', '--config', lab.config]);
        return r.exitCode === 0 ? r : undefined;
      },
      60_000,
    );
    expect(status.stdout).not.toContain('refused');
    expect(await metrics(rl, daemonLog)).not.toMatch(/^uplink_commit_refused\{/m);
  }, 240_000);
});

/** When the daemon last fetched, from the status document it keeps in its state dir. */
function lastFetchAt(stateDir: string): number | undefined {
  try {
    const status = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as {
      controller: { lastFetchAt: number | null };
    };
    return status.controller.lastFetchAt ?? undefined;
  } catch {
    return undefined;
  }
}

/** The daemon's /metrics, fetched inside the controller namespace (its port from its log). */
async function metrics(rl: RolloutLab, daemonLog: string): Promise<string> {
  const url = logLines(readFileSync(daemonLog, 'utf8')).find((l) => typeof l.url === 'string')?.url;
  expect(url, 'the daemon logs its URL').toBeDefined();
  const result = await rl.lab.run(rl.lab.controllerNs, ['curl', '-sf', `${url}/metrics`]);
  return result.stdout;
}
