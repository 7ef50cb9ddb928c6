/**
 * `uplink apply --rev`: the built controller pushes the desired state of the named commit —
 * not the work tree's, not HEAD's — to a real agent daemon over SSH; the generation is named
 * after that commit; an unknown revision is refused before any connection.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { ManagedRouter } from './lab/managed-router.js';
import { managedRouterSiteYaml, writeManagedRouterFleet } from './managed-router-fleet.js';
import { git } from './uplink-cli.js';

const SITE = 'lab-1';

describe.skipIf(!requireRoot())('uplink apply --rev (dist/uplink.mjs) against sshd + agent daemon', () => {
  const lab = useLab('applyrev');
  let m: ManagedRouter;
  let repo: string;
  /** Commit A routes 203.0.113.80 via isp1 (rule 500); commit B (HEAD) has no policy. */
  let commitA: string;
  let commitB: string;

  async function writeSite(policy: string): Promise<void> {
    await writeFile(join(repo, 'sites', `${SITE}.yaml`), managedRouterSiteYaml(SITE, m.hostKey, policy));
  }

  function uplinkApply(args: readonly string[]) {
    return lab.current.exec(
      m.ctrl,
      [
        process.execPath,
        'dist/uplink.mjs',
        'apply',
        SITE,
        '--repo',
        repo,
        '--identity',
        m.controllerKey,
        ...args,
      ],
      { allowFailure: true, timeoutMs: 120_000 },
    );
  }

  const ipRules = async () => (await lab.current.exec(m.router, ['ip', 'rule', 'show'])).stdout;

  beforeAll(async () => {
    buildDist();
    m = await ManagedRouter.start(lab.current, 'apply-rev');
    repo = join(m.dir, 'repos', 'fleet');
    await writeManagedRouterFleet(
      repo,
      SITE,
      m.hostKey,
      `policies:
  - name: portal
    to: 203.0.113.80
    via: [isp1]
`,
    );
    git(repo, 'init', '--quiet', '--initial-branch', 'main');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'portal via isp1');
    commitA = git(repo, 'rev-parse', 'HEAD');
    await writeSite('');
    git(repo, 'commit', '--quiet', '-am', 'no policies');
    commitB = git(repo, 'rev-parse', 'HEAD');
    // The work tree differs from both commits: --rev must not read it.
    await writeSite(`policies:
  - name: other
    to: 203.0.113.81
    via: [isp1]
`);
  }, 120_000);

  afterAll(async () => {
    await m?.close();
  });

  it('applies the named commit, not HEAD and not the work tree; the generation names the commit', async () => {
    const first = await uplinkApply(['--rev', commitA.slice(0, 10)]);
    expect(first.exitCode, `${first.stdout}${first.stderr}`).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(`^${SITE}: applied \\(\\d+ changes\\) generation ${commitA.slice(0, 12)}-[0-9a-f]{12}\\n$`),
    );
    const rules = await ipRules();
    expect(rules).toMatch(/^500:\s+from all to 203\.0\.113\.80 lookup 100 proto 252\s*$/m);
    expect(rules).not.toContain('203.0.113.81');

    const head = await uplinkApply(['--rev', 'HEAD']);
    expect(head.exitCode, `${head.stdout}${head.stderr}`).toBe(0);
    expect(head.stdout).toContain(`generation ${commitB.slice(0, 12)}-`);
    const after = await ipRules();
    expect(after).not.toContain('203.0.113.80');
    expect(after).not.toContain('203.0.113.81');
  }, 120_000);

  it('an unknown revision is refused before anything is sent; the kernel is unchanged', async () => {
    const before = await m.kernelText();
    const result = await uplinkApply(['--rev', 'no-such-tag']);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^uplink: revision no-such-tag: not a commit in /);
    expect(await m.kernelText()).toBe(before);
  }, 60_000);
});
