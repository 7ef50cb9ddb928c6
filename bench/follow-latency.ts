// Usage (root): node scripts/build.mjs && npx esbuild bench/follow-latency.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-follow.mjs && node dist/bench-follow.mjs [rounds=7]
/**
 * How fast the running agent daemon follows an uplink that changes under it, without the
 * controller (issue 3/7: within 1 s of the kernel change). Two changes, on the branch lab of
 * test/uplink-follow.test.ts (real daemon, probes off):
 * - DHCP renumbering: dnsmasq at the ISP moves to the other half of the /24; the ISC client,
 *   restarted, takes a new address and gateway. The kernel change is the moment the client's
 *   script has installed the new address and default route (it writes that time down); the
 *   daemon has followed when the `from` rule of the new address is in `ip rule`.
 * - PPP re-dial: ppp0's address and peer replaced (`ip addr del/add`, as pppd does).
 * Baseline in the same run: how long this script's own poll takes to see the kernel change
 * itself (the new address in `ip addr`) — the floor of the measurement.
 */
import {
  buildBranchLab,
  compileBranchSite,
  renumberCable,
  startAgentDaemon,
} from '../test/branch-uplinks-lab.js';
import { Lab } from '../test/lab/lab.js';
import { median } from './median.js';

const ROUNDS = Math.max(3, Number(process.argv[2] ?? 7));

async function pollUntil(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const lab = new Lab('benchfollow');
try {
  const branch = await buildBranchLab(lab);
  const daemon = await startAgentDaemon(lab, branch.router);
  await daemon.applyConfirmed(compileBranchSite(), 'g1');
  const rules = async () => (await lab.run(['ip', '-n', branch.router, 'rule', 'show'])).stdout;
  const addrs = async (dev: string) =>
    (await lab.run(['ip', '-n', branch.router, '-4', 'addr', 'show', 'dev', dev])).stdout;
  await pollUntil(async () => (await branch.dhcpClient.events()).some((e) => e.reason === 'BOUND'));
  await pollUntil(async () => /from 198\.51\.100\.1[56]\d lookup/.test(await rules()));

  const dhcp: { follow: number; floor: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const to = (round % 2 === 0 ? 1 : 0) as 0 | 1;
    const before = (await branch.dhcpClient.events()).length;
    await renumberCable(lab, branch, to);
    const event = await (async () => {
      await pollUntil(
        async () =>
          (await branch.dhcpClient.events())
            .slice(before)
            .some((e) => e.reason === 'BOUND' || e.reason === 'REBOOT'),
        60_000,
      );
      return (await branch.dhcpClient.events())
        .slice(before)
        .find((e) => e.reason === 'BOUND' || e.reason === 'REBOOT')!;
    })();
    const seen = await pollUntil(async () => (await addrs('enp2s0')).includes(`inet ${event.address}/`));
    const followed = await pollUntil(async () => (await rules()).includes(`from ${event.address} lookup`));
    dhcp.push({ follow: followed - event.at, floor: seen - event.at });
  }

  const ppp: { follow: number; floor: number }[] = [];
  let [address, peer] = ['10.101.2.2', '10.101.2.1'];
  for (let round = 0; round < ROUNDS * 2; round++) {
    const next = round % 2 === 0 ? ['10.101.7.2', '10.101.7.1'] : ['10.101.2.2', '10.101.2.1'];
    const start = Date.now();
    await branch.topo.readdress('ppp0', next[0]!, next[1]!);
    const changed = Date.now();
    const seen = await pollUntil(async () => (await addrs('ppp0')).includes(`inet ${next[0]} peer`));
    const followed = await pollUntil(async () => (await rules()).includes(`from ${next[0]} lookup`));
    ppp.push({ follow: followed - changed, floor: seen - changed });
    [address, peer] = next as [string, string];
    void start;
  }
  void address;
  void peer;

  const row = (name: string, samples: { follow: number; floor: number }[]) => {
    const follow = median(samples.map((s) => s.follow));
    const floor = median(samples.map((s) => s.floor));
    console.log(
      `${name.padEnd(22)} follow median ${follow.toFixed(0)} ms (max ${Math.max(...samples.map((s) => s.follow)).toFixed(0)} ms), poll floor ${floor.toFixed(0)} ms, n=${samples.length}`,
    );
  };
  console.log(`follow latency (${new Date().toISOString()}, node ${process.version})`);
  row('DHCP renumbering', dhcp);
  row('PPP re-dial', ppp);
  await daemon.close();
} finally {
  await lab.cleanup();
}
