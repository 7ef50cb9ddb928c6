/**
 * Table-driven validation cases: each is a small in-memory fleet and the exact
 * diagnostics `FILE:LINE:COL: severity: message` that loadFleet must report, in order.
 */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from './diagnostic.js';
import { loadFleet } from './load-fleet.js';

/** Strips the common indentation and the first newline, so fixtures read like files. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const lines = raw
    .replace(/^\n/, '')
    .replace(/\n\s*$/, '')
    .split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return `${lines.map((l) => l.slice(indent)).join('\n')}\n`;
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';

const FLEET = yaml`
  rollout:
    waves:
      - name: all
`;

/** A valid site: lines 1–17 are fixed, so cases can append policies at line 18. */
function site(name: string, extra = '', address = '192.0.2.10'): string {
  return (
    yaml`
    name: ${name}
    management:
      address: ${address}
      hostKey: ${KEY}
    lan:
      - interface: lan0
        subnets: [172.20.1.0/24]
    providers:
      - name: isp1
        interface: wan1
        address: 198.51.100.2/30
        gateway: 198.51.100.1
        balance: 1
      - name: isp2
        interface: wan2
        gateway: detect
        fallback: true
  ` + extra
  );
}

interface Case {
  readonly name: string;
  readonly files: Record<string, string>;
  readonly expected: readonly string[];
}

function run(files: Record<string, string>): string[] {
  const all = { 'fleet.yaml': FLEET, ...files };
  return loadFleet(new Map(Object.entries(all))).diagnostics.map(formatDiagnostic);
}

const cases: Case[] = [
  {
    name: 'a valid site has no diagnostics',
    files: { 'sites/s1.yaml': site('s1') },
    expected: [],
  },
  // --- YAML and schema --------------------------------------------------------------
  {
    name: 'YAML syntax error is located',
    files: {
      'sites/s1.yaml': yaml`
        name: s1
        management: {address: 192.0.2.10
      `,
    },
    expected: [
      'sites/s1.yaml:3:1: error: YAML: Flow map in block collection must be sufficiently indented and end with a }',
    ],
  },
  {
    name: 'duplicate YAML key',
    files: {
      'sites/s1.yaml': `${site('s1')}name: s2\n`,
    },
    expected: ['sites/s1.yaml:18:1: error: YAML: Map keys must be unique'],
  },
  {
    name: 'unknown key with a suggestion',
    files: {
      'sites/s1.yaml': site('s1').replace('gateway: 198.51.100.1', 'gatway: 198.51.100.1'),
    },
    expected: [
      'sites/s1.yaml:12:5: error: providers[0].gatway: unknown key "gatway"; did you mean "gateway"?',
    ],
  },
  {
    name: 'unknown key deep inside health',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
              health:
                intervall: 2s
        `.replace(/^/gm, '    '),
      ),
    },
    expected: [
      'sites/s1.yaml:19:7: error: providers[1].health.intervall: unknown key "intervall"; did you mean "interval"?',
    ],
  },
  {
    name: 'unknown key with no close match lists the allowed keys',
    files: {
      'sites/s1.yaml': `${site('s1')}colour: blue\n`,
    },
    expected: [
      'sites/s1.yaml:18:1: error: colour: unknown key "colour"; allowed keys: name, description, management, extends, labels, settings, lan, providers, policies, sysctls',
    ],
  },
  {
    name: 'wrong types',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('balance: 1', 'balance: "heavy"')
        .replace('fallback: true', 'fallback: yes-please'),
    },
    expected: [
      'sites/s1.yaml:13:14: error: providers[0].balance: expected number, found string "heavy"',
      'sites/s1.yaml:17:15: error: providers[1].fallback: string "yes-please" is not valid here (expected boolean or number)',
    ],
  },
  {
    name: 'a boolean where text is expected says to quote it',
    files: { 'sites/s1.yaml': `${site('s1')}labels: { canary: true }\n` },
    expected: [
      'sites/s1.yaml:18:19: error: labels.canary: expected string, found boolean true; quote it: "true"',
    ],
  },
  {
    name: 'missing management',
    files: {
      'sites/s1.yaml': yaml`
        name: s1
        providers: []
      `,
    },
    expected: ['sites/s1.yaml:1:1: error: management: required; add management: with address'],
  },
  {
    name: 'no hostKey: valid, with a warning on how the controller will trust the router',
    files: { 'sites/s1.yaml': site('s1').replace(`  hostKey: ${KEY}\n`, '') },
    expected: [
      'sites/s1.yaml:3:3: warning: management: no hostKey, so the controller trusts only a known_hosts entry for 192.0.2.10 (ssh.knownHosts, --known-hosts) and refuses to connect without one; pin it with hostKey: "ssh-ed25519 AAAA…" (ssh-keyscan -t ed25519 192.0.2.10)',
    ],
  },
  {
    name: 'enum value not allowed',
    files: { 'sites/s1.yaml': site('s1').replace('fallback: true', 'fallback: true\n    rpFilter: lax') },
    expected: [
      'sites/s1.yaml:18:15: error: providers[1].rpFilter: "lax" is not allowed; write one of "off", "strict", "loose"',
    ],
  },
  {
    name: 'collects all diagnostics, not just the first',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('interface: wan1', 'interface: wan1/0')
        .replace('gateway: detect', 'gateway: 2001:db8::1')
        .replace('subnets: [172.20.1.0/24]', 'subnets: [172.20.1.1/24]'),
    },
    expected: [
      'sites/s1.yaml:10:16: error: providers[0].interface: "wan1/0" is not a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")',
    ],
  },
  {
    name: 'collects all semantic diagnostics in one file',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('gateway: detect', 'gateway: 2001:db8::1')
        .replace('subnets: [172.20.1.0/24]', 'subnets: [172.20.1.1/24]')
        .replace('balance: 1', 'balance: 0'),
    },
    expected: [
      'sites/s1.yaml:7:15: error: lan lan0: subnet "172.20.1.1/24" has host bits set; write 172.20.1.0/24',
      'sites/s1.yaml:13:14: error: providers isp1: balance 0 must be a weight from 1 to 256',
      'sites/s1.yaml:16:14: error: providers isp2: gateway "2001:db8::1" is IPv6; this field takes an IPv4 address (an IPv6 gateway goes under ipv6: gateway:)',
    ],
  },
  {
    name: 'collects all schema diagnostics in one file',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('interface: wan1', 'interface: wan1/0')
        .replace('interface: wan2', 'interface: "wan 2"')
        .replace('fallback: true', 'fallback: true\n    snat: 1'),
    },
    expected: [
      'sites/s1.yaml:10:16: error: providers[0].interface: "wan1/0" is not a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")',
      'sites/s1.yaml:15:16: error: providers[1].interface: "wan 2" is not a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")',
      'sites/s1.yaml:18:11: error: providers[1].snat: expected string, found number 1',
    ],
  },
  // --- names and interfaces ------------------------------------------------------------
  {
    name: 'interface name too long',
    files: { 'sites/s1.yaml': site('s1').replace('interface: wan1', 'interface: uplink-to-provider1') },
    expected: [
      'sites/s1.yaml:10:16: error: providers[0].interface: "uplink-to-provider1" is not a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")',
    ],
  },
  {
    name: 'interface name with a shell character',
    files: { 'sites/s1.yaml': site('s1').replace('interface: wan1', 'interface: "wan1;reboot"') },
    expected: [
      'sites/s1.yaml:10:16: error: providers[0].interface: "wan1;reboot" is not a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")',
    ],
  },
  {
    name: 'site names unique',
    files: { 'sites/a.yaml': site('a'), 'sites/b.yaml': site('a', '', '192.0.2.11') },
    expected: [
      'sites/b.yaml:1:7: warning: site a: file is named sites/b.yaml; name the file sites/a.yaml so people find it',
      'sites/b.yaml:1:7: error: site a: name already used by sites/a.yaml; site names must be unique',
    ],
  },
  {
    name: 'management address:port unique',
    files: { 'sites/a.yaml': site('a'), 'sites/b.yaml': site('b') },
    expected: [
      'sites/b.yaml:3:12: error: site b: management address 192.0.2.10:22 is already used by site a; each router needs its own',
    ],
  },
  {
    name: 'same management address on another port is fine',
    files: {
      'sites/a.yaml': site('a'),
      'sites/b.yaml': site('b').replace('address: 192.0.2.10', 'address: 192.0.2.10\n  port: 2222'),
    },
    expected: [],
  },
  {
    name: 'duplicate provider name in one file',
    files: {
      'sites/s1.yaml': site('s1').replace('name: isp2', 'name: isp1'),
    },
    expected: [
      'sites/s1.yaml:14:11: error: providers isp1: already listed as providers[0] in this file; list each name once',
    ],
  },
  {
    name: 'duplicate policy name in one file',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: web
              to: 203.0.113.0/24
              via: [isp1]
            - name: web
              to: 203.0.113.128/25
              via: [isp2]
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:22:11: error: policies web: already listed as policies[0] in this file; list each name once',
    ],
  },
  // --- tables and marks --------------------------------------------------------------
  {
    name: 'table ids unique',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('balance: 1', 'balance: 1\n    table: 150')
        .replace('fallback: true', 'fallback: true\n    table: 150'),
    },
    expected: [
      'sites/s1.yaml:19:12: error: providers isp2: table 150 is already used by provider isp1; each provider needs its own table',
    ],
  },
  {
    name: 'reserved tables 253, 254, 255',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('balance: 1', 'balance: 1\n    table: 254')
        .replace('fallback: true', 'fallback: true\n    table: 253'),
    },
    expected: [
      'sites/s1.yaml:14:12: error: providers isp1: table 254 is the kernel\'s "main" table; choose another id, e.g. 100',
      'sites/s1.yaml:19:12: error: providers isp2: table 253 is the kernel\'s "default" table; choose another id, e.g. 100',
    ],
  },
  {
    name: 'table equal to the balance table',
    files: { 'sites/s1.yaml': site('s1').replace('balance: 1', 'balance: 1\n    table: 200') },
    expected: [
      'sites/s1.yaml:14:12: error: providers isp1: table 200 is the balance table; choose another id or change settings.balanceTable',
    ],
  },
  {
    name: 'marks unique',
    files: {
      'sites/s1.yaml': site('s1')
        .replace('balance: 1', 'balance: 1\n    mark: 0x100')
        .replace('fallback: true', 'fallback: true\n    mark: 0x100'),
    },
    expected: [
      'sites/s1.yaml:19:11: error: providers isp2: mark 0x100 is already used by provider isp1; each provider needs its own mark',
    ],
  },
  {
    name: 'mark outside the mask',
    files: { 'sites/s1.yaml': site('s1').replace('balance: 1', 'balance: 1\n    mark: 0x1') },
    expected: [
      'sites/s1.yaml:14:11: error: providers isp1: mark 0x1 is outside the mark mask 0xff00; write a non-zero value within the mask, e.g. 0x100',
    ],
  },
  {
    name: 'mark wider than 32 bits is not silently truncated',
    files: { 'sites/s1.yaml': site('s1').replace('balance: 1', 'balance: 1\n    mark: 0x100000100') },
    expected: [
      'sites/s1.yaml:14:11: error: providers isp1: mark 0x100000100 is outside the mark mask 0xff00; write a non-zero value within the mask, e.g. 0x100',
    ],
  },
  {
    name: 'policy mark wider than 32 bits',
    files: {
      'sites/s1.yaml': site(
        's1',
        'policies:\n  - name: marked\n    mark: 0x100000001/0x1000000ff\n    via: [isp1]\n',
      ),
    },
    expected: [
      'sites/s1.yaml:20:11: error: policies marked: mark 0x100000001/0x1000000ff does not fit in 32 bits; a fwmark is 0–0xffffffff',
    ],
  },
  {
    name: 'mark outside a site mask',
    files: {
      'sites/s1.yaml': site('s1', 'settings:\n  markMask: 0xf0\n').replace(
        'balance: 1',
        'balance: 1\n    mark: 0x100',
      ),
    },
    expected: [
      'sites/s1.yaml:14:11: error: providers isp1: mark 0x100 is outside the mark mask 0xf0; write a non-zero value within the mask, e.g. 0x10',
    ],
  },
  // --- priorities ----------------------------------------------------------------------
  {
    name: 'explicit priority outside the policy band',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: web
              to: 203.0.113.0/24
              via: [isp1]
              priority: 20000
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:22:15: error: policies web: priority 20000 is outside the policy band 10000–19999 (fleet.yaml defaults.priorities.policy); choose a priority inside it, or leave priority out to place it after the policy before it',
    ],
  },
  {
    name: 'explicit priority colliding with an auto-laid-out policy',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: web
              to: 203.0.113.0/24
              via: [isp1, isp2]
            - name: mail
              proto: tcp
              dport: 25
              via: [isp2]
              priority: 10001
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:26:15: error: policies mail: priority 10001 collides with policy web (priorities 10000–10001); choose a priority after 10001',
    ],
  },
  {
    name: 'auto-laid-out policy colliding with an earlier explicit priority',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: mail
              proto: tcp
              dport: 25
              via: [isp2]
              priority: 10005
            - name: web
              to: 203.0.113.0/24
              via: [isp1]
            - name: dns
              proto: udp
              dport: 53
              via: [isp1]
              priority: 10010
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:31:15: error: policies dns: priority 10010 collides with policy web (priority 10010); choose a priority after 10010',
    ],
  },
  {
    name: 'auto-laid-out policy pushed out of the band by an explicit one before it',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: late
              to: 203.0.113.0/24
              via: [isp1]
              priority: 19995
            - name: web
              proto: tcp
              dport: 80
              via: [isp1]
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:23:5: error: policies web: follows policy late (priority 19995), which leaves no room after it in the band 10000–19999; give web a priority: or move it before late',
    ],
  },
  {
    name: 'more policy rules than the band holds',
    files: {
      'fleet.yaml': yaml`
        defaults:
          priorities:
            policy: [10000, 10002]
        rollout:
          waves:
            - name: all
      `,
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: web
              proto: tcp
              dport: [80, 443]
              via: [isp1, isp2]
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:19:5: error: policies web: the policies need more rule priorities than the band 10000–10002 holds; widen defaults.priorities.policy in fleet.yaml',
    ],
  },
  {
    name: 'bands overlapping in fleet.yaml',
    files: {
      'fleet.yaml': yaml`
        defaults:
          priorities:
            track: [1000, 2500]
            policy: [30000, 30010]
        rollout:
          waves:
            - name: all
      `,
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      'fleet.yaml:3:12: error: defaults.priorities.track: 1000–2500 overlaps source (2000–2999, the default); priority bands must not overlap',
      'fleet.yaml:4:13: error: defaults.priorities.policy: 30000–30010 overlaps balance (30000, the default); priority bands must not overlap',
      'fleet.yaml:4:13: error: defaults.priorities.policy: 30000–30010 overlaps fallback (30001–30099, the default); priority bands must not overlap',
    ],
  },
  {
    name: 'a priority outside the band is one error, not one per policy after it',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: early
              to: 198.51.100.0/24
              via: [isp1]
              priority: 25000
            - name: next
              to: 198.51.101.0/24
              via: [isp1]
            - name: last
              to: 198.51.102.0/24
              action: main
        `,
      ),
    },
    expected: [
      'sites/s1.yaml:22:15: error: policies early: priority 25000 is outside the policy band 10000–19999 (fleet.yaml defaults.priorities.policy); choose a priority inside it, or leave priority out to place it after the policy before it',
    ],
  },
  {
    name: 'action balance with no balanced provider',
    files: {
      'sites/s1.yaml': site(
        's1',
        yaml`
          policies:
            - name: guests
              from: 172.20.1.0/24
              action: balance
        `,
      ).replace('    balance: 1\n', ''),
    },
    expected: [
      'sites/s1.yaml:20:13: error: policies guests: action balance sends the class to the balanced default route, but no provider has balance; give a provider balance: 1, or use action: main',
    ],
  },
  // --- addresses -----------------------------------------------------------------------
  {
    name: 'IPv6 gateway',
    files: { 'sites/s1.yaml': site('s1').replace('gateway: 198.51.100.1', 'gateway: 2001:db8::1') },
    expected: [
      'sites/s1.yaml:12:14: error: providers isp1: gateway "2001:db8::1" is IPv6; this field takes an IPv4 address (an IPv6 gateway goes under ipv6: gateway:)',
    ],
  },
  {
    name: 'IPv6 network in a policy',
    files: {
      'sites/s1.yaml': site('s1', 'policies:\n  - name: v6\n    to: 2001:db8::/32\n    via: [isp1]\n'),
    },
    expected: [
      'sites/s1.yaml:20:9: error: policies v6: IPv6 addresses, but no provider has ipv6:; add an ipv6: block to the providers that carry IPv6',
    ],
  },
  {
    name: 'CIDR with host bits',
    files: {
      'sites/s1.yaml': site('s1', 'policies:\n  - name: web\n    from: 172.20.1.7/24\n    via: [isp1]\n'),
    },
    expected: [
      'sites/s1.yaml:20:11: error: policies web: from "172.20.1.7/24" has host bits set; write 172.20.1.0/24',
    ],
  },
  {
    name: 'static gateway outside the address subnet',
    files: { 'sites/s1.yaml': site('s1').replace('gateway: 198.51.100.1', 'gateway: 198.51.100.9') },
    expected: [
      "sites/s1.yaml:12:14: error: providers isp1: gateway 198.51.100.9 is not a neighbour inside 198.51.100.0/30 (the subnet of address 198.51.100.2/30); write the ISP router's address in that subnet",
    ],
  },
  {
    name: 'gateway equal to the own address',
    files: { 'sites/s1.yaml': site('s1').replace('gateway: 198.51.100.1', 'gateway: 198.51.100.2') },
    expected: [
      "sites/s1.yaml:12:14: error: providers isp1: gateway 198.51.100.2 is not a neighbour inside 198.51.100.0/30 (the subnet of address 198.51.100.2/30); write the ISP router's address in that subnet",
    ],
  },
  {
    name: 'address without prefix length',
    files: { 'sites/s1.yaml': site('s1').replace('address: 198.51.100.2/30', 'address: 198.51.100.2') },
    expected: [
      'sites/s1.yaml:11:14: error: providers isp1: address "198.51.100.2" needs a prefix length; write e.g. 198.51.100.2/30',
    ],
  },
  {
    name: 'management address not IPv4',
    files: { 'sites/s1.yaml': site('s1', '', 'router.example.net') },
    expected: [
      'sites/s1.yaml:3:12: error: management.address: "router.example.net" is not an IPv4 address; write e.g. 198.51.100.1',
    ],
  },
  // --- policies ------------------------------------------------------------------------
  {
    name: 'policy via an unknown provider lists the known ones',
    files: { 'sites/s1.yaml': site('s1', 'policies:\n  - name: web\n    via: [isp3]\n') },
    expected: [
      'sites/s1.yaml:20:11: error: policies web: via names unknown provider "isp3"; known providers: isp1, isp2',
    ],
  },
  {
    name: 'policy via lists a provider twice',
    files: { 'sites/s1.yaml': site('s1', 'policies:\n  - name: web\n    via: [isp1, isp2, isp1]\n') },
    expected: ['sites/s1.yaml:20:10: error: policies web: via lists a provider twice; list each once'],
  },
  {
    name: 'policy without via',
    files: { 'sites/s1.yaml': site('s1', 'policies:\n  - name: web\n    to: 203.0.113.0/24\n') },
    expected: [
      'sites/s1.yaml:19:5: error: policies web: via is required; list the providers in order of preference, e.g. via: [isp1, isp2]',
    ],
  },
  {
    name: 'ports without proto',
    files: {
      'sites/s1.yaml': site('s1', 'policies:\n  - name: web\n    dport: [80, 443]\n    via: [isp1]\n'),
    },
    expected: [
      'sites/s1.yaml:20:12: error: policies web: ports need a protocol; add proto: tcp or proto: udp',
    ],
  },
  {
    name: 'port out of range',
    files: {
      'sites/s1.yaml': site(
        's1',
        'policies:\n  - name: web\n    proto: tcp\n    dport: 70000\n    via: [isp1]\n',
      ),
    },
    expected: [
      'sites/s1.yaml:21:12: error: policies web: dport 70000 is not a port 1–65535 or a range low-high',
    ],
  },
  {
    name: 'uid with traffic forwarded',
    files: {
      'sites/s1.yaml': site(
        's1',
        'policies:\n  - name: p2p\n    uid: 108\n    traffic: forwarded\n    via: [isp2]\n',
      ),
    },
    expected: [
      'sites/s1.yaml:20:10: error: policies p2p: uid only matches traffic the router itself sends; remove uid or use traffic: local',
    ],
  },
  {
    name: 'traffic forwarded with no LAN',
    files: {
      'sites/s1.yaml': site(
        's1',
        'policies:\n  - name: web\n    traffic: forwarded\n    via: [isp2]\n',
      ).replace('lan:\n  - interface: lan0\n    subnets: [172.20.1.0/24]\n', ''),
    },
    expected: [
      'sites/s1.yaml:17:14: error: policies web: traffic: forwarded needs LAN interfaces; declare lan: or set iif:',
    ],
  },
  {
    name: 'action with via',
    files: {
      'sites/s1.yaml': site(
        's1',
        'policies:\n  - name: block\n    to: 203.0.113.0/24\n    action: blackhole\n    via: [isp1]\n',
      ),
    },
    expected: [
      'sites/s1.yaml:22:10: error: policies block: action blackhole does not route via providers; remove via or use action: route',
    ],
  },
  {
    name: 'policy mark overlapping the Uplink mask',
    files: {
      'sites/s1.yaml': site('s1', 'policies:\n  - name: marked\n    mark: 0x100/0xff00\n    via: [isp1]\n'),
    },
    expected: [
      "sites/s1.yaml:20:11: error: policies marked: mark mask 0xff00 overlaps Uplink's mark mask 0xff00; match only bits outside it (0xffff00ff), e.g. mark: 0x1/0xff",
    ],
  },
  // --- providers -----------------------------------------------------------------------
  {
    name: 'balance weight below 1',
    files: { 'sites/s1.yaml': site('s1').replace('balance: 1', 'balance: 0') },
    expected: ['sites/s1.yaml:13:14: error: providers isp1: balance 0 must be a weight from 1 to 256'],
  },
  {
    name: 'fallback and balance both',
    files: { 'sites/s1.yaml': site('s1').replace('fallback: true', 'fallback: true\n    balance: 2') },
    expected: [
      'sites/s1.yaml:17:15: error: providers isp2: a provider is either balanced or a fallback; remove balance or fallback',
    ],
  },
  {
    name: 'no provider carries default traffic',
    files: {
      'sites/s1.yaml': site('s1').replace('    balance: 1\n', '').replace('    fallback: true\n', ''),
    },
    expected: [
      "sites/s1.yaml:1:7: warning: site s1: no provider has balance or fallback, so no uplink carries default traffic and main's default route is used; set balance: 1 on the primary uplink",
    ],
  },
  {
    name: 'two providers on one interface',
    files: { 'sites/s1.yaml': site('s1').replace('interface: wan2', 'interface: wan1') },
    expected: [
      'sites/s1.yaml:15:16: error: providers isp2: interface wan1 is already used by provider isp1; connections on one interface cannot be told apart, give each provider its own interface',
    ],
  },
  {
    name: 'uplink on the LAN interface',
    files: { 'sites/s1.yaml': site('s1').replace('interface: wan2', 'interface: lan0') },
    expected: [
      'sites/s1.yaml:15:16: error: providers isp2: interface lan0 is also a LAN interface; an uplink needs its own interface',
    ],
  },
  {
    name: 'provider missing interface and gateway',
    files: { 'sites/s1.yaml': site('s1', '  - name: isp3\n    balance: 1\n') },
    expected: [
      'sites/s1.yaml:18:5: error: providers isp3: gateway is required; write an address (198.51.100.1), detect (DHCP) or point-to-point (PPP)',
      'sites/s1.yaml:18:5: error: providers isp3: interface is required; add interface: <uplink device, e.g. eth1 or ppp0>',
    ],
  },
  // --- health and durations ------------------------------------------------------------
  {
    name: 'bad duration',
    files: {
      'sites/s1.yaml': site('s1', '    health:\n      interval: 5 seconds\n'),
    },
    expected: [
      'sites/s1.yaml:19:17: error: providers[1].health.interval: "5 seconds" is not a duration such as 500ms, 2s, 5m or 1h',
    ],
  },
  {
    name: 'health timeout longer than interval',
    files: {
      'sites/s1.yaml': site('s1', '    health:\n      interval: 1s\n      timeout: 2s\n'),
    },
    expected: [
      'sites/s1.yaml:20:16: error: providers isp2: health.timeout: 2000ms is longer than the interval (1000ms); a probe must time out before the next round',
    ],
  },
  {
    name: 'tcp method without tcpPort',
    files: {
      'sites/s1.yaml': site('s1', '    health:\n      method: tcp\n      targets: [203.0.113.1]\n'),
    },
    expected: [
      'sites/s1.yaml:19:15: error: providers isp2: health.method: tcp needs tcpPort: <port>, e.g. 443',
    ],
  },
  {
    name: 'fleet default health timeout longer than interval',
    files: {
      'fleet.yaml': yaml`
        defaults:
          health:
            interval: 300ms
            timeout: 1s
        rollout:
          waves:
            - name: all
      `,
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      'fleet.yaml:4:14: error: defaults.health.timeout: 1000ms is longer than the interval (300ms); a probe must time out before the next round',
    ],
  },
  // --- groups --------------------------------------------------------------------------
  {
    name: 'extends an unknown group',
    files: {
      'groups/base.yaml': 'name: base\n',
      'sites/s1.yaml': site('s1', 'extends: [bsae]\n'),
    },
    expected: ['sites/s1.yaml:18:11: error: site s1: extends unknown group "bsae"; known groups: base'],
  },
  {
    name: 'a finding in a shared group is reported once, not per site',
    files: {
      'groups/a.yaml': 'name: a\nextends: [b]\n',
      'groups/b.yaml': 'name: b\nextends: [a]\n',
      'sites/s1.yaml': site('s1', 'extends: [a]\n'),
      'sites/s2.yaml': site('s2', 'extends: [a]\n', '192.0.2.11'),
    },
    expected: [
      'groups/b.yaml:2:11: error: group b: group inheritance cycle a → b → a; remove one of these extends',
    ],
  },
  {
    name: 'duplicate provider name in a group file',
    files: {
      'groups/wan.yaml':
        'name: wan\nproviders:\n  - name: isp3\n    interface: wan3\n  - name: isp3\n    interface: wan4\n',
      'sites/s1.yaml': site('s1', 'extends: [wan]\n'),
    },
    expected: [
      'groups/wan.yaml:3:5: error: site s1: providers isp3: gateway is required; write an address (198.51.100.1), detect (DHCP) or point-to-point (PPP)',
      'groups/wan.yaml:5:11: error: providers isp3: already listed as providers[0] in this file; list each name once',
    ],
  },
  {
    name: 'inheritance cycle',
    files: {
      'groups/a.yaml': 'name: a\nextends: [b]\n',
      'groups/b.yaml': 'name: b\nextends: [a]\n',
      'sites/s1.yaml': site('s1', 'extends: [a]\n'),
    },
    expected: [
      'groups/b.yaml:2:11: error: group b: group inheritance cycle a → b → a; remove one of these extends',
    ],
  },
  {
    name: 'remove: true on nothing',
    files: { 'sites/s1.yaml': site('s1', '  - name: isp3\n    remove: true\n') },
    expected: [
      'sites/s1.yaml:19:13: warning: providers isp3: remove: true has nothing to remove; no inherited item has that name',
    ],
  },
  {
    name: 'error in a group field is reported in the group file',
    files: {
      'groups/wan.yaml': yaml`
        name: wan
        providers:
          - name: isp1
            interface: wan1
            gateway: 198.51.100.9
      `,
      'sites/s1.yaml': site('s1', 'extends: [wan]\n').replace('    gateway: 198.51.100.1\n', ''),
    },
    expected: [
      "groups/wan.yaml:5:14: error: site s1: providers isp1: gateway 198.51.100.9 is not a neighbour inside 198.51.100.0/30 (the subnet of address 198.51.100.2/30); write the ISP router's address in that subnet",
    ],
  },
  {
    name: 'schema error in a group file',
    files: {
      'groups/wan.yaml': 'name: wan\nproviders:\n  - name: isp1\n    balanse: 1\n',
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      'groups/wan.yaml:4:5: error: providers[0].balanse: unknown key "balanse"; did you mean "balance"?',
    ],
  },
  {
    name: 'group names unique',
    files: {
      'groups/wan.yaml': 'name: wan\n',
      'groups/wan2.yaml': 'name: wan\n',
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      'groups/wan2.yaml:1:7: error: group wan: already defined in groups/wan.yaml; group names must be unique',
    ],
  },
  // --- sysctls -------------------------------------------------------------------------
  {
    name: 'field: null removes an inherited balance',
    files: {
      'groups/wan.yaml': 'name: wan\nproviders:\n  - name: isp2\n    balance: 1\n',
      'sites/s1.yaml': site('s1', 'extends: [wan]\n').replace(
        'fallback: true',
        'fallback: true\n    balance: null',
      ),
    },
    expected: [],
  },
  {
    name: 'an inherited balance clashes with a site fallback unless removed',
    files: {
      'groups/wan.yaml': 'name: wan\nproviders:\n  - name: isp2\n    balance: 1\n',
      'sites/s1.yaml': site('s1', 'extends: [wan]\n'),
    },
    expected: [
      'sites/s1.yaml:17:15: error: providers isp2: a provider is either balanced or a fallback, and balance is inherited from groups/wan.yaml; write balance: null here to drop it',
    ],
  },
  {
    name: 'sysctl outside net.ipv4 and net.ipv6',
    files: { 'sites/s1.yaml': site('s1', 'sysctls:\n  net.core.rmem_max: 1\n') },
    expected: [
      'sites/s1.yaml:19:3: error: sysctls: "net.core.rmem_max" is not managed by Uplink; write one of net.ipv4.<name>, net.ipv4.conf.<interface|all|default>.<name>, net.ipv4.neigh.<interface|all|default>.<name>, net.ipv4.route.<name> or the same under net.ipv6 (the agent owns routing sysctls only)',
    ],
  },
  {
    name: 'sysctl outside net.ipv4 set in a group',
    files: {
      'groups/base.yaml': 'name: base\nsysctls:\n  kernel.panic: 10\n',
      'sites/s1.yaml': site('s1', 'extends: [base]\n'),
    },
    expected: [
      'groups/base.yaml:3:3: error: site s1: sysctls: "kernel.panic" is not managed by Uplink; write one of net.ipv4.<name>, net.ipv4.conf.<interface|all|default>.<name>, net.ipv4.neigh.<interface|all|default>.<name>, net.ipv4.route.<name> or the same under net.ipv6 (the agent owns routing sysctls only)',
    ],
  },
  {
    name: 'sysctl key that leaves /proc/sys/net (refused here, not only by the agent)',
    files: {
      'sites/s1.yaml': site('s1', 'sysctls:\n  net.ipv4.conf.all.rp_filter/../../../../kernel/panic: 1\n'),
    },
    expected: [
      'sites/s1.yaml:19:3: error: sysctls: "net.ipv4.conf.all.rp_filter/../../../../kernel/panic" is not managed by Uplink; write one of net.ipv4.<name>, net.ipv4.conf.<interface|all|default>.<name>, net.ipv4.neigh.<interface|all|default>.<name>, net.ipv4.route.<name> or the same under net.ipv6 (the agent owns routing sysctls only)',
    ],
  },
  {
    name: "sysctl key in sysctl(8)'s slash spelling of a VLAN interface",
    files: { 'sites/s1.yaml': site('s1', 'sysctls:\n  net.ipv4.conf.enp1s0/100.rp_filter: 1\n') },
    expected: [
      'sites/s1.yaml:19:3: error: sysctls: "net.ipv4.conf.enp1s0/100.rp_filter" spells the interface the way sysctl(8) does; write "net.ipv4.conf.enp1s0.100.rp_filter" (the interface name as it is, dots included)',
    ],
  },
  // --- the agent's limits (D89) ------------------------------------------------------------
  {
    name: 'confirmWithin longer than the agent accepts',
    files: {
      'fleet.yaml': 'rollout:\n  confirmWithin: 2h\n  waves:\n    - name: all\n',
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      "fleet.yaml:2:18: error: rollout.confirmWithin: 2h is too long; write 1h or less (the agent's commit-confirmed deadline is 1s–1h)",
    ],
  },
  {
    name: 'confirmWithin shorter than the agent accepts',
    files: {
      'fleet.yaml': 'rollout:\n  confirmWithin: 200ms\n  waves:\n    - name: all\n',
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      "fleet.yaml:2:18: error: rollout.confirmWithin: 200ms is too short; write 1s or more (the agent's commit-confirmed deadline is 1s–1h)",
    ],
  },
  {
    name: 'health interval longer than the agent accepts',
    files: {
      'sites/s1.yaml': site('s1').replace(
        '    fallback: true\n',
        '    fallback: true\n    health: { interval: 2h, timeout: 1s }\n',
      ),
    },
    expected: [
      'sites/s1.yaml:18:25: error: providers isp2: health.interval: 2h is too long; write 1h or less',
    ],
  },
  {
    name: 'failAfter over its range',
    files: {
      'sites/s1.yaml': site('s1').replace(
        '    fallback: true\n',
        '    fallback: true\n    health: { failAfter: 200 }\n',
      ),
    },
    expected: [
      'sites/s1.yaml:18:26: error: providers[1].health.failAfter: 200 is too large; the most allowed is 100',
    ],
  },
  {
    name: 'more probe targets than the agent probes',
    files: {
      'sites/s1.yaml': site('s1').replace(
        '    fallback: true\n',
        `    fallback: true\n    health: { targets: [${Array.from({ length: 17 }, (_, i) => `192.0.2.${i + 20}`).join(', ')}] }\n`,
      ),
    },
    expected: [
      'sites/s1.yaml:18:24: error: providers[1].health.targets: 17 items, more than the 16 allowed; list at most 16',
    ],
  },
  {
    name: "a routing daemon's protocol number",
    files: { 'sites/s1.yaml': site('s1', 'settings:\n  protocol: 16\n') },
    expected: [
      'sites/s1.yaml:19:13: error: settings.protocol: 16 is reserved for dhcp (proto dhcp); Uplink takes every rule and route with its protocol for its own, so write a free value such as 252 (the default)',
    ],
  },
  {
    name: "the kernel's protocol number as the fleet default, reported once",
    files: { 'fleet.yaml': `defaults:\n  protocol: 2\n${FLEET}`, 'sites/s1.yaml': site('s1') },
    expected: [
      'fleet.yaml:2:13: error: defaults.protocol: 2 is reserved for kernel (proto kernel); Uplink takes every rule and route with its protocol for its own, so write a free value such as 252 (the default)',
    ],
  },
  {
    name: 'main as the balance table',
    files: { 'sites/s1.yaml': site('s1', 'settings:\n  balanceTable: 254\n') },
    expected: [
      'sites/s1.yaml:19:17: error: settings.balanceTable: 254 is the kernel\'s "main" table; write a free table id such as 200, or default (table 253)',
    ],
  },
  {
    name: 'adopting a table Uplink does not write',
    files: { 'sites/s1.yaml': site('s1', 'settings:\n  adoptTables: [254]\n') },
    expected: [
      "sites/s1.yaml:19:17: error: settings.adoptTables: 254 is not a provider's table or the balance table; adopt only tables Uplink writes (100, 101, 200)",
    ],
  },
  {
    name: 'uplinks on VLANs, PPPoE over a VLAN and an LTE modem are valid',
    files: {
      'sites/s1.yaml': site('s1', 'sysctls:\n  net.ipv4.conf.enp2s0.7.rp_filter: 2\n')
        .replace('interface: wan1', 'interface: enp1s0.100')
        .replace('interface: wan2', 'interface: enp0s20f0u1')
        .replace('interface: lan0', 'interface: br-lan.20'),
    },
    expected: [],
  },
  // --- rollout -------------------------------------------------------------------------
  {
    name: 'wave selecting no site',
    files: {
      'fleet.yaml': yaml`
        rollout:
          waves:
            - name: canary
              select: { labels: { canary: "true" } }
            - name: rest
      `,
      'sites/s1.yaml': site('s1'),
    },
    expected: [
      'fleet.yaml:3:7: error: rollout.waves canary: selects no site; fix its select or remove the wave',
    ],
  },
  {
    name: 'sites in no wave',
    files: {
      'fleet.yaml': yaml`
        rollout:
          waves:
            - name: canary
              select: { sites: [a] }
      `,
      'sites/a.yaml': site('a'),
      'sites/b.yaml': site('b', '', '192.0.2.11'),
    },
    expected: [
      'fleet.yaml:3:5: error: rollout.waves: sites b fall in no wave; end the list with a wave that takes the rest, e.g. - name: rest',
    ],
  },
  {
    name: 'fleet.yaml without rollout',
    files: { 'fleet.yaml': 'description: no rollout\n', 'sites/s1.yaml': site('s1') },
    expected: [
      'fleet.yaml:1:1: error: fleet.yaml: rollout is required; add rollout: with waves: [{name: canary, select: {labels: {canary: "true"}}}, {name: rest}]',
    ],
  },
  {
    name: 'site file named differently from the site',
    files: { 'sites/berlin.yaml': site('s1') },
    expected: [
      'sites/berlin.yaml:1:7: warning: site s1: file is named sites/berlin.yaml; name the file sites/s1.yaml so people find it',
    ],
  },
];

describe('loadFleet diagnostics', () => {
  it.each(cases)('$name', ({ files, expected }) => {
    const actual = run(files);
    expect(actual).toEqual(expected);
  });
});
