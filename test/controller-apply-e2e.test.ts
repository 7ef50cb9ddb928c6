import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintSha256, parsePublicKeyLine } from '../controller/src/transport/host-key.js';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { ManagedRouter } from './lab/managed-router.js';
import { managedRouterStatus, writeManagedRouterFleet } from './managed-router-fleet.js';

const SITE = 'lab-1';

/** The management cut: replies from the router's management subnet are sent out isp1. */
const CUTTING_POLICY = `policies:
  - name: office
    from: 192.0.2.0/24
    via: [isp1]
`;

function fingerprintOf(keyLine: string): string {
  const key = parsePublicKeyLine(keyLine);
  if (!key.ok) throw new Error(key.error);
  return fingerprintSha256(key.value.blob);
}

describe.skipIf(!requireRoot())('uplink apply (dist/uplink.mjs, ssh2) against sshd + agent daemon', () => {
  const lab = useLab('ctrlapply');
  let m: ManagedRouter;
  let router: string;
  let ctrl: string;
  let controllerKey: string;
  /** The router sshd's host key, `ssh-ed25519 AAAA…` (no comment). */
  let hostKey: string;
  const kernelText = () => m.kernelText();

  /** A fleet repository in a fresh temporary directory; returns its path. */
  async function writeRepo(
    name: string,
    options: { hostKey?: string; site?: string; policies?: string } = {},
  ): Promise<string> {
    const repo = join(m.dir, 'repos', name);
    await writeManagedRouterFleet(repo, options.site ?? SITE, options.hostKey ?? hostKey, options.policies, {
      commit: true,
    });
    return repo;
  }

  /** The built controller, run inside the controller namespace. */
  function uplinkApply(repo: string, args: readonly string[] = []) {
    return lab.current.exec(
      ctrl,
      [
        process.execPath,
        'dist/uplink.mjs',
        'apply',
        SITE,
        '--repo',
        repo,
        '--identity',
        controllerKey,
        ...args,
      ],
      { allowFailure: true, timeoutMs: 120_000 },
    );
  }

  const ipRules = async () => (await lab.current.exec(router, ['ip', 'rule', 'show'])).stdout;

  const status = () => managedRouterStatus(m, SITE);

  beforeAll(async () => {
    buildDist();
    m = await ManagedRouter.start(lab.current, 'ctrl-apply');
    ({ router, ctrl, controllerKey, hostKey } = m);
  }, 120_000);

  afterAll(async () => {
    await m?.close();
  });

  it('applies and confirms over two connections; a re-run is unchanged', async () => {
    const repo = await writeRepo('happy');
    const first = await uplinkApply(repo);
    expect(first.exitCode, `${first.stdout}${first.stderr}\ndaemon: ${m.daemonProcess?.stderr}`).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(`^${SITE}: applied \\(\\d+ changes\\) generation [0-9a-f]{12}-[0-9a-f]{12}\\n$`),
    );
    const rules = await ipRules();
    expect(rules).toMatch(/^900:\s+from all lookup main suppress_prefixlength 0 proto 252\s*$/m);
    expect(rules).toMatch(/^1000:\s+from all fwmark 0x100\/0xff00 lookup 100 proto 252\s*$/m);
    expect(rules).toMatch(/^2000:\s+from 198\.51\.100\.2 lookup 100 proto 252\s*$/m);
    const after = await status();
    expect(after).toMatchObject({ site: SITE, pending: null, applied: { site: SITE } });
    expect(first.stdout).toContain(`generation ${after.applied!.generation}`);

    const again = await uplinkApply(repo);
    expect(again.exitCode, `${again.stdout}${again.stderr}`).toBe(0);
    expect(again.stdout).toBe(`${SITE}: unchanged (0 changes) generation ${after.applied!.generation}\n`);
    expect(await ipRules()).toBe(rules);
  }, 120_000);

  it('a site pinning the wrong host key is refused before anything is sent; the kernel is unchanged', async () => {
    const other = join(m.dir, 'other-host-key');
    await lab.current.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'other', '-f', other]);
    const wrongKey = (await readFile(`${other}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    // Change the spec too (another uplink rule), so that a wrongly trusted apply would show.
    const repo = await writeRepo('wrong-key', { hostKey: wrongKey, policies: CUTTING_POLICY });
    const before = await kernelText();
    const statusBefore = await status();
    const result = await uplinkApply(repo, ['--format', 'json']);
    expect(result.exitCode, `${result.stdout}${result.stderr}`).toBe(1);
    const [outcome] = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(outcome).toMatchObject({ site: SITE, outcome: 'refused', attempts: { apply: 1, confirm: 0 } });
    const message = (outcome!.error as { message: string }).message;
    expect(message).toContain(fingerprintOf(hostKey));
    expect(message).toContain(fingerprintOf(wrongKey));
    expect(message.match(/SHA256:[A-Za-z0-9+/]{43}/g)?.length).toBeGreaterThanOrEqual(2);
    expect(await kernelText()).toBe(before);
    expect((await status()).applied).toEqual(statusBefore.applied);
  }, 60_000);

  it('management cut: refused without --allow-management-change; with it, unconfirmed and reverted by the agent', async () => {
    const repo = await writeRepo('cut', { policies: CUTTING_POLICY });
    const before = await kernelText();
    const appliedBefore = (await status()).applied;

    // The guard sees it first: the reply to the controller would leave out isp1.
    const refused = await uplinkApply(repo, ['--format', 'json']);
    expect(refused.exitCode, `${refused.stdout}${refused.stderr}`).toBe(1);
    const [refusal] = JSON.parse(refused.stdout) as Array<Record<string, unknown>>;
    expect(refusal).toMatchObject({ outcome: 'refused', error: { code: 'management-path' } });
    expect((refusal!.error as { message: string }).message).toContain('out isp1 instead of mgmt0');
    expect(await kernelText()).toBe(before);

    // Allowed: applied, the answers to the controller leave out isp1, no confirm can arrive.
    const confirmWithinS = 5;
    const started = Date.now();
    const run = uplinkApply(repo, [
      '--allow-management-change',
      '--confirm-within',
      String(confirmWithinS),
      '--format',
      'json',
    ]);
    let sawCut = false;
    let backAt: number | undefined;
    const deadline = started + (confirmWithinS + 30) * 1000;
    while (Date.now() < deadline) {
      const rules = await ipRules();
      if (/^500:\s+from 192\.0\.2\.0\/24 lookup 100/m.test(rules)) sawCut = true;
      else if (sawCut && (await kernelText()) === before) {
        backAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await run;
    expect(sawCut, `the cutting rule never appeared: ${result.stdout}${result.stderr}`).toBe(true);
    expect(backAt, `the kernel did not return to its previous state: ${result.stdout}`).toBeDefined();
    // The agent's deadline starts when it applies, after `started`: back within confirmWithin + a few s.
    expect(backAt! - started).toBeLessThan((confirmWithinS + 4) * 1000);

    expect(result.exitCode, `${result.stdout}${result.stderr}`).toBe(1);
    const [outcome] = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(outcome).toMatchObject({ site: SITE, outcome: 'unconfirmed' });
    // The apply's own answer leaves out isp1 too: it reaches the controller only when a TCP
    // retransmission follows the reverted routing (or the session dies of keepalives first).
    // Either way nothing is confirmed: the late confirm is refused as not pending.
    const error = outcome!.error as { kind: string; code?: string; message: string };
    if (error.code === 'not-pending') expect(error.message).toMatch(/reverted .*\(confirm-timeout\)/);
    else expect(error.kind).toBe('transport');
    expect(await kernelText()).toBe(before);

    // Routing is back: the daemon answers again, and says what happened.
    const after = await status();
    expect(after).toMatchObject({
      pending: null,
      applied: appliedBefore,
      lastRevert: { generation: outcome!.generation, reason: 'confirm-timeout', result: 'ok' },
    });
  }, 120_000);
});
