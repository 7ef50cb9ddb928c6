/**
 * Issue 3/8: the controller is killed between apply and confirm → the agent reverts by itself.
 * The controller side is a real process in the controller namespace (ssh2, the installed
 * restricted key, sshd, the forced command, the daemon); it is SIGKILLed after the apply
 * answered and before any confirm, with its connection still open or already closed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HangClientConfig } from './apply-then-hang-client.js';
import { buildDist, ROOT } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { ManagedRouter, ROUTER_MGMT } from './lab/managed-router.js';
import { managedRouterDesired } from './managed-router-desired.js';
import { managedRouterStatus } from './managed-router-fleet.js';

const SITE = 'lab-1';
const CONFIRM_WITHIN_MS = 3_000;
const CLIENT = join(ROOT, 'dist', 'test-apply-then-hang.mjs');

describe.skipIf(!requireRoot())('controller killed between apply and confirm', () => {
  const lab = useLab('ctrlkill');
  let m: ManagedRouter;

  /**
   * The IPv4 kernel state Uplink could touch, as text. (Not `m.kernelText()`: IPv6 link-local
   * routes of a freshly made namespace appear a moment later, on their own.)
   */
  async function kernelText(): Promise<string> {
    const run = async (argv: string[]) => (await lab.current.exec(m.router, argv)).stdout;
    return [
      await run(['ip', 'rule', 'show']),
      await run(['ip', '-4', 'route', 'show', 'table', 'all']),
      await run(['nft', 'list', 'ruleset']),
      await run(['sysctl', '-n', 'net.ipv4.conf.isp1.rp_filter']),
    ].join('\n----\n');
  }

  /** `status` over OpenSSH with the restricted key. */
  const status = () => managedRouterStatus(m, SITE);

  beforeAll(async () => {
    buildDist();
    await build({
      entryPoints: [join(ROOT, 'test', 'apply-then-hang-client.ts')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      // Beside the controller's bundle, so ssh2 and zod resolve from the checkout's node_modules.
      packages: 'external',
      outfile: CLIENT,
      logLevel: 'warning',
    });
    m = await ManagedRouter.start(lab.current, 'ctrl-killed');
  }, 120_000);

  afterAll(async () => {
    await m?.close();
  });

  it.each([
    ['with the apply connection still open', false],
    ['after it closed the apply connection', true],
  ])(
    'SIGKILL %s → the agent reverts at its deadline; status says confirm-timeout',
    async (_name, closeFirst) => {
      const before = await kernelText();
      const generation = `killed-${closeFirst ? 'closed' : 'open'}`;
      const config: HangClientConfig = {
        host: ROUTER_MGMT,
        hostKey: m.hostKey,
        identity: m.controllerKey,
        desired: managedRouterDesired(SITE),
        generation,
        confirmWithinMs: CONFIRM_WITHIN_MS,
        closeFirst,
      };
      const configPath = join(m.dir, `${generation}.json`);
      await writeFile(configPath, JSON.stringify(config));

      const client = lab.current.start(m.ctrl, [process.execPath, CLIENT, configPath]);
      const deadline = Date.now() + 30_000;
      while (!client.stdout.includes('\n')) {
        if (client.child.exitCode !== null)
          throw new Error(`client exited: ${client.stdout}${client.stderr}`);
        if (Date.now() > deadline) throw new Error(`client did not apply: ${client.stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const answer = JSON.parse(client.stdout.trim()) as {
        applied: { pending: { generation: string } | null };
      };
      expect(answer.applied.pending).toMatchObject({ generation });

      // Applied and waiting for its confirm: the new state is in the kernel.
      const applied = await kernelText();
      expect(applied).not.toBe(before);
      expect(applied).toMatch(/^30000:\s+from all lookup 101 proto 252/m);
      expect((await status()).pending).toMatchObject({ generation });

      client.child.kill('SIGKILL');
      expect(await client.exited).toBeNull();

      // The agent reverts by itself within confirmWithin (+ 2 s for scheduling and the revert).
      const revertBy = Date.now() + CONFIRM_WITHIN_MS + 2_000;
      let after = await status();
      while (after.pending !== null && Date.now() < revertBy) {
        await new Promise((r) => setTimeout(r, 200));
        after = await status();
      }
      expect(after.pending).toBeNull();
      expect(after.lastRevert).toMatchObject({ generation, reason: 'confirm-timeout', result: 'ok' });
      expect(await kernelText()).toBe(before);
    },
    60_000,
  );
});
