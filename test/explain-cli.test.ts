import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import { type CliResult, uplinkCli } from './uplink-cli.js';

function explain(site: string, ...args: string[]): Promise<CliResult> {
  return uplinkCli('explain', site, '--repo', 'fleet-repo-example', ...args);
}

/** The verdict: the output's first line. */
async function verdictOf(site: string, ...args: string[]): Promise<string> {
  const r = await explain(site, ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.split('\n')[0]!;
}

beforeAll(() => buildDist());

const SMTP_FROM_LAN = ['--dst', '203.0.113.25', '--src', '172.20.2.50', '--iif', 'lan0', '--proto', 'tcp'];

describe('uplink explain on branch-adsl-vpn', () => {
  it('SMTP from the LAN leaves via isp1, masqueraded', async () => {
    const r = await explain('branch-adsl-vpn', ...SMTP_FROM_LAN, '--sport', '40000', '--dport', '25');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'tcp 172.20.2.50:40000 → 203.0.113.25:25 (forwarded from lan0) leaves via isp1 (wan1), gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)',
    );
    expect(lines[1]).toBe('decided by policy smtp via isp1 — rule 10010, table 100 (isp1)');
    // The trace: every rule considered, matched or not and why.
    expect(r.stdout).toContain('    ✓ 10010: from all ipproto tcp dport 25 lookup 100 — matches');
    expect(r.stdout).toContain(
      '    ✗ 10000: from all fwmark 0x1/0xffff00ff lookup 102 — no: fwmark 0x1/0xffff00ff: mark 0x0 & 0xffff00ff = 0x0 ≠ 0x1',
    );
    expect(r.stdout).toContain(
      '  nft postrouting: oifname wan1 masquerade — source 172.20.2.50 → 198.51.100.2',
    );
    expect(r.stdout).toContain('vpn has a dynamic address; 100.64.0.10 stands in for it (peer 100.64.0.9)');
  });

  it('with isp1 down, SMTP falls through to the balanced route, which has only isp2 left', async () => {
    const r = await explain('branch-adsl-vpn', ...SMTP_FROM_LAN, '--dport', '25', '--down', 'isp1');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      'tcp 172.20.2.50 → 203.0.113.25:25 (forwarded from lan0) leaves via isp2 (wan2), gateway 198.51.100.5, source 172.20.2.50 SNAT → 198.51.100.6 (masquerade)',
      'decided by the balanced default route — rule 30000, table 200 (balance)',
    ]);
    expect(r.stdout).toContain('isp1 is taken as down (--down)');
  });

  it('default traffic is balanced 8:2, each path with its gateway and SNAT', async () => {
    const r = await explain(
      'branch-adsl-vpn',
      '--dst',
      '203.0.113.25',
      '--src',
      '172.20.2.50',
      '--iif',
      'lan0',
    );
    expect(r.stdout.split('\n').slice(0, 4)).toEqual([
      'ip 172.20.2.50 → 203.0.113.25 (forwarded from lan0) is balanced: isp1 80%, isp2 20%',
      '  80% isp1 (wan1), weight 8, gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)',
      '  20% isp2 (wan2), weight 2, gateway 198.51.100.5, source 172.20.2.50 SNAT → 198.51.100.6 (masquerade)',
      'decided by the balanced default route — rule 30000, table 200 (balance)',
    ]);
  });

  it('mark 0x1 prefers the VPN; with the VPN down, isp1', async () => {
    const marked = ['--dst', '203.0.113.25', '--src', '172.20.2.50', '--iif', 'lan0', '--mark', '0x1'];
    expect(await verdictOf('branch-adsl-vpn', ...marked)).toBe(
      'ip 172.20.2.50 → 203.0.113.25 (forwarded from lan0, mark 0x1) leaves via vpn (tun0), no gateway (point-to-point), source 172.20.2.50',
    );
    expect(await verdictOf('branch-adsl-vpn', ...marked, '--down', 'vpn')).toBe(
      'ip 172.20.2.50 → 203.0.113.25 (forwarded from lan0, mark 0x1) leaves via isp1 (wan1), gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)',
    );
    // Decimal marks are the same mark.
    expect(await verdictOf('branch-adsl-vpn', ...marked.slice(0, -1), '1')).toContain(
      'leaves via vpn (tun0)',
    );
  });
});

describe('uplink explain on other sites', () => {
  it("home-pppoe: the P2P daemon's traffic (uid 108) leaves by ppp1, whose address is a stand-in", async () => {
    const r = await explain('home-pppoe', '--dst', '203.0.113.25', '--uid', '108');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      'ip to 203.0.113.25 (sent by the router as uid 108) leaves via ppp1, no gateway (point-to-point), source 100.64.0.6',
      'decided by policy p2p-user via ppp1 — rule 10000, table 101 (ppp1)',
    ]);
    expect(r.stdout).toContain(
      '  · ppp1 has a dynamic address; 100.64.0.6 stands in for it (peer 100.64.0.5)\n',
    );
    // Everyone else uses ppp0.
    expect(await verdictOf('home-pppoe', '--dst', '203.0.113.25', '--uid', '1000')).toContain(
      'leaves via ppp0,',
    );
  });

  it('lartc-split: staff web traffic leaves via dsl, SSH via isp1', async () => {
    const staff = ['--dst', '203.0.113.25', '--src', '172.20.7.10', '--iif', 'lan0', '--proto', 'tcp'];
    expect(await verdictOf('lartc-split', ...staff, '--dport', '443')).toBe(
      'tcp 172.20.7.10 → 203.0.113.25:443 (forwarded from lan0) leaves via dsl (wan2), gateway 198.51.100.33, source 172.20.7.10 SNAT → 198.51.100.34 (masquerade)',
    );
    expect(await verdictOf('lartc-split', ...staff, '--dport', '22')).toBe(
      'tcp 172.20.7.10 → 203.0.113.25:22 (forwarded from lan0) leaves via isp1 (wan1), gateway 203.0.113.129, source 172.20.7.10 SNAT → 203.0.113.130 (masquerade)',
    );
  });
});

describe("uplink explain with the router's facts", () => {
  const facts = {
    interfaces: {
      lan0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
      ppp0: {
        exists: true,
        up: true,
        addresses: [{ address: '203.0.113.5', prefixLength: 32, peer: '203.0.113.1' }],
      },
      ppp1: {
        exists: true,
        up: true,
        addresses: [{ address: '198.51.100.77', prefixLength: 32, peer: '198.51.100.1' }],
      },
    },
    rules: [],
    routes: [],
    sysctls: {},
  };
  const FROM_PPP1 = ['--dst', '203.0.113.25', '--src', '198.51.100.77', '--proto', 'tcp'];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-explain-facts-'));
    const record = { site: 'home-pppoe', hash: 'a'.repeat(64), readAt: Date.UTC(2026, 11, 4, 10, 41), facts };
    await writeFile(join(dir, 'home-pppoe.json'), JSON.stringify(record));
    await mkdir(join(dir, 'state', 'facts'), { recursive: true });
    await writeFile(join(dir, 'state', 'facts', 'home-pppoe.json'), JSON.stringify(record));
    await writeFile(
      join(dir, 'state', 'status.json'),
      JSON.stringify({
        sites: [
          {
            name: 'home-pppoe',
            facts: {
              hash: record.hash,
              readAt: record.readAt,
              reportedAt: Date.UTC(2026, 11, 4, 10, 42),
              facts,
            },
          },
        ],
      }),
    );
    await writeFile(join(dir, 'other.json'), JSON.stringify({ ...record, site: 'office-29' }));
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ ...record, facts: { interfaces: {} } }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a source that is the PPP link's address: unknown without facts, ppp1 with them (--facts FILE)", async () => {
    const offline = await verdictOf('home-pppoe', ...FROM_PPP1);
    expect(offline).toMatch(
      /^tcp 198\.51\.100\.77 → 203\.0\.113\.25 \(sent by the router\) is unknown offline: 198\.51\.100\.77 may be an address of ppp0 or ppp1 that only the router knows/,
    );
    const r = await explain('home-pppoe', ...FROM_PPP1, '--facts', join(dir, 'home-pppoe.json'));
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      'tcp 198.51.100.77 → 203.0.113.25 (sent by the router) leaves via ppp1, no gateway (point-to-point), source 198.51.100.77',
    );
    expect(r.stdout).toContain(`  · computed with facts reported by the router at 2026-12-04 10:41Z (`);
    expect(r.stdout).not.toContain('stands in');
  });

  it("from the controller's state dir, with when the router last reported them", async () => {
    const r = await explain('home-pppoe', ...FROM_PPP1, '--state-dir', join(dir, 'state'), '-o', 'json');
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout);
    expect(answer.uplink).toMatchObject({ kind: 'provider', provider: 'ppp1' });
    expect(answer.unknown).toBeNull();
    expect(answer.basis).toMatchObject({ kind: 'router', reportedAt: Date.UTC(2026, 11, 4, 10, 42) });
    expect(answer.notes[0]).toMatch(
      /^computed with facts reported by the router at 2026-12-04 10:42Z \(.* kept by the controller in .*, read on the router at 2026-12-04 10:41Z; hash aaaaaaaaaaaa\)$/,
    );
    // A site the state dir has no facts for says so, and answers from stand-ins.
    const none = await explain('office-29', '--dst', '203.0.113.25', '--state-dir', join(dir, 'state'));
    expect(none.stdout).toContain(
      `  · no facts reported by the router (none for office-29 in ${join(dir, 'state')}: its agent has not answered a controller of protocol revision 4 yet)`,
    );
  });

  it("another site's facts, a missing file or a file that is not facts: usage errors, nothing answered", async () => {
    const other = await explain('home-pppoe', ...FROM_PPP1, '--facts', join(dir, 'other.json'));
    expect([other.code, other.stdout]).toEqual([2, '']);
    expect(other.stderr).toContain('these are the facts of site office-29, not home-pppoe');
    const missing = await explain('home-pppoe', ...FROM_PPP1, '--facts', join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    const bad = await explain('home-pppoe', ...FROM_PPP1, '--facts', join(dir, 'bad.json'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'bad.json')}: not router facts at facts.rules`);
  });
});

describe('uplink explain usage and formats', () => {
  it.each([
    [['--dst', '203.0.113.300'], '--dst: "203.0.113.300" is not an IPv4 address; write e.g. 198.51.100.1'],
    [[], '--dst: required; write the destination address, e.g. --dst 203.0.113.25'],
    [
      ['--dst', '203.0.113.25', '--iif', 'lan0'],
      '--src: required with --iif (a forwarded packet already has a source); write e.g. --src 172.20.2.50',
    ],
    [
      ['--dst', '203.0.113.25', '--down', 'isp3'],
      '--down isp3: not a provider of site branch-adsl-vpn; write one of isp1, isp2, vpn',
    ],
  ])('%j → exit 2', async (args, message) => {
    const r = await explain('branch-adsl-vpn', ...args);
    expect(r).toEqual({ code: 2, stdout: '', stderr: `uplink: ${message}\n` });
  });

  it('an unknown site is a usage error naming the known ones', async () => {
    const r = await explain('nowhere', '--dst', '203.0.113.25');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('uplink: site nowhere: not found; known sites: branch-adsl-vpn,');
  });

  it('--format json parses: verdict, uplink, trace, notes', async () => {
    const r = await explain('branch-adsl-vpn', ...SMTP_FROM_LAN, '--dport', '25', '--format', 'json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as {
      verdict: { kind: string; dev: string; gateway: string; snat: { to: string } };
      uplink: unknown;
      trace: { step: string }[];
      notes: string[];
    };
    expect(json.verdict).toMatchObject({ kind: 'forward', dev: 'wan1', gateway: '198.51.100.1' });
    expect(json.verdict.snat.to).toBe('198.51.100.2');
    expect(json.uplink).toEqual({ kind: 'provider', provider: 'isp1', dev: 'wan1' });
    expect(json.trace.some((s) => s.step === 'rule')).toBe(true);
    expect(json.notes).toContain('vpn has a dynamic address; 100.64.0.10 stands in for it (peer 100.64.0.9)');
  });
});

describe('uplink explain of IPv6 packets on branch-dualstack', () => {
  /** The router as its agent reports it: isp2's IPv6 address and gateway learned (SLAAC, the RA's). */
  const facts = {
    interfaces: {
      lan0: {
        exists: true,
        up: true,
        addresses: [{ address: '172.20.50.1', prefixLength: 24 }],
        addresses6: [
          { address: '2001:db8:a1:1::1', prefixLength: 64 },
          { address: '2001:db8:b2:1::1', prefixLength: 64 },
        ],
      },
      wan1: {
        exists: true,
        up: true,
        addresses: [{ address: '198.51.100.34', prefixLength: 30 }],
        addresses6: [{ address: '2001:db8:ffa1::2', prefixLength: 64 }],
      },
      wan2: {
        exists: true,
        up: true,
        addresses: [{ address: '192.0.2.70', prefixLength: 29 }],
        detectedGateway: '192.0.2.65',
        addresses6: [{ address: '2001:db8:ffb2::5c', prefixLength: 64 }],
        detectedGateway6: 'fe80::b2',
      },
    },
    rules: [],
    routes: [],
    sysctls: {},
  };
  const FROM_ISP1_PREFIX = ['--dst', '2001:db8:99::10', '--src', '2001:db8:a1:1::10', '--iif', 'lan0'];
  let file: string;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-explain-ipv6-'));
    file = join(dir, 'branch-dualstack.json');
    const record = {
      site: 'branch-dualstack',
      hash: 'b'.repeat(64),
      readAt: Date.UTC(2026, 11, 4, 10, 41),
      facts,
    };
    await writeFile(file, JSON.stringify(record));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a LAN host numbered from ISP1 leaves by ISP1 via its link-local gateway; the trace is the IPv6 rule list', async () => {
    const r = await explain(
      'branch-dualstack',
      ...FROM_ISP1_PREFIX,
      '--proto',
      'tcp',
      '--dport',
      '443',
      '--facts',
      file,
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      'tcp 2001:db8:a1:1::10 → 2001:db8:99::10:443 (forwarded from lan0) leaves via isp1 (wan1), gateway fe80::1, source 2001:db8:a1:1::10',
      "decided by the source address is isp1's, so it must leave by isp1 — rule 2000, table 100 (isp1)",
    ]);
    expect(r.stdout).toContain('    ✓ 2000: from 2001:db8:a1::/48 lookup 100 — matches');
    expect(r.stdout).toContain('      → table 100: ::/0 via fe80::1 dev wan1 metric 1024 table 100');
  });

  it('isp1 down: the same host leaves by ISP2, its source translated onto ISP2’s prefix (NPTv6)', async () => {
    for (const down of ['isp1', 'isp1:ipv6']) {
      const line = await verdictOf('branch-dualstack', ...FROM_ISP1_PREFIX, '--down', down, '--facts', file);
      expect(line).toBe(
        'ip 2001:db8:a1:1::10 → 2001:db8:99::10 (forwarded from lan0) leaves via isp2 (wan2), gateway fe80::b2, source 2001:db8:a1:1::10 SNAT → 2001:db8:b2:1::10 (npt)',
      );
    }
  });

  it("the IPv6-only partner policy sends the router's own traffic by ISP2 from ISP2's address", async () => {
    const line = await verdictOf('branch-dualstack', '--dst', '2001:db8:cafe::1', '--facts', file);
    expect(line).toBe(
      'ip to 2001:db8:cafe::1 (sent by the router) leaves via isp2 (wan2), gateway fe80::b2, source 2001:db8:ffb2::5c',
    );
  });

  it("without facts, isp2's learned IPv6 half is unavailable and the answer says so", async () => {
    const r = await explain('branch-dualstack', '--dst', '2001:db8:cafe::1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("isp2's IPv6 half is unavailable");
  });

  it('an inbound IPv6 connection DNAT-ed to a LAN host: replies go back by the uplink it came in on', async () => {
    const args = [
      '--inbound',
      '--iif',
      'wan1',
      '--src',
      '2001:db8:99::10',
      '--proto',
      'tcp',
      '--dport',
      '443',
    ];
    const dnat = await verdictOf(
      'branch-dualstack',
      ...args,
      '--dst',
      '2001:db8:ffa1::2',
      '--dnat-to',
      '[2001:db8:a1:1::10]:8443',
    );
    expect(dnat).toBe(
      'tcp 2001:db8:99::10:40000 → 2001:db8:ffa1::2:443 (arriving on wan1 DNAT → 2001:db8:a1:1::10:8443) is forwarded to lan0; replies leave via isp1 (wan1), gateway fe80::1, source 2001:db8:a1:1::10 SNAT → 2001:db8:ffa1::2 (conntrack-reply), mark set to 0x100',
    );
    // To the router's own IPv6 address: known from the spec, so an answer, not "unknown offline".
    const own = await verdictOf('branch-dualstack', ...args, '--dst', '2001:db8:ffa1::2');
    expect(own).toBe(
      'tcp 2001:db8:99::10:40000 → 2001:db8:ffa1::2:443 (arriving on wan1) reaches the router; replies leave via isp1 (wan1), gateway fe80::1, source 2001:db8:ffa1::2, mark set to 0x100',
    );
  });

  it('mixed families and bad IPv6 are usage errors', async () => {
    const mixed = await explain(
      'branch-dualstack',
      '--dst',
      '2001:db8:99::10',
      '--src',
      '172.20.50.10',
      '--iif',
      'lan0',
    );
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("a packet's source and destination are one family, write an IPv6 source");
  });
});
