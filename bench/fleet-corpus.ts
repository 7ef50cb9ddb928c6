/**
 * The generated fleet of bench/validate-compile.ts, shared with bench/incremental-compile.ts:
 * N sites (2–4 providers, 0–20 policies, a few groups), as the files a repository would have.
 */
import { mulberry32 } from '../test/lab/mulberry32.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';
const DOC_NETS = ['192.0.2', '198.51.100', '203.0.113'] as const;

export function generateFleet(count: number): Map<string, string> {
  const rand = mulberry32(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const files = new Map<string, string>();
  files.set(
    'fleet.yaml',
    `defaults:
  health: { interval: 1s, timeout: 500ms }
rollout:
  confirmWithin: 30s
  waves:
    - name: canary
      select: { labels: { canary: "true" } }
    - name: early
      percent: 10
    - name: rest
`,
  );
  files.set(
    'groups/base.yaml',
    'name: base\nlabels: { managed-by: uplink }\nsysctls:\n  net.ipv4.conf.all.rp_filter: 2\n',
  );
  files.set(
    'groups/dual-isp.yaml',
    `name: dual-isp
extends: [base]
lan:
  - interface: lan0
providers:
  - name: isp1
    interface: wan1
    gateway: detect
    balance: 1
  - name: isp2
    interface: wan2
    gateway: detect
    balance: 1
    health: { targets: [203.0.113.1] }
`,
  );
  files.set(
    'groups/smtp-via-isp1.yaml',
    'name: smtp-via-isp1\npolicies:\n  - name: smtp\n    proto: tcp\n    dport: [25, 587]\n    via: [isp1]\n',
  );

  for (let i = 0; i < count; i++) {
    const name = `site-${String(i).padStart(5, '0')}`;
    const dual = rand() < 0.5;
    const providerCount = int(2, 4);
    const lines: string[] = [
      `name: ${name}`,
      `extends: [${dual ? 'dual-isp' : 'base'}${rand() < 0.3 ? ', smtp-via-isp1' : ''}]`,
      `labels: { region: ${pick(['eu', 'us', 'ap'])}${i % 500 === 0 ? ', canary: "true"' : ''} }`,
      'management:',
      `  address: ${DOC_NETS[i % 3]}.${(Math.floor(i / 3) % 250) + 1}`,
      `  port: ${2200 + Math.floor(i / 750)}`,
      `  hostKey: ${KEY}`,
      'lan:',
      '  - interface: lan0',
      `    subnets: [172.${16 + (i % 16)}.${i % 256}.0/24]`,
      'providers:',
    ];
    const providers: string[] = [];
    for (let p = 0; p < providerCount; p++) {
      const pname = `isp${p + 1}`;
      providers.push(pname);
      const sub = (p * 4 + (i % 16) * 16) % 256;
      const inherited = dual && p < 2;
      lines.push(`  - name: ${pname}`);
      if (!inherited) lines.push(`    interface: wan${p + 1}`);
      if (rand() < 0.6) {
        lines.push(`    address: 198.51.100.${sub + 2}/30`, `    gateway: 198.51.100.${sub + 1}`);
      } else if (!inherited) {
        lines.push(`    gateway: ${pick(['detect', 'point-to-point'])}`);
      }
      if (p === 0 && !inherited) lines.push(`    balance: ${int(1, 10)}`);
      else if (p === providerCount - 1 && p >= 2) lines.push('    fallback: true');
      if (rand() < 0.3)
        lines.push(`    health: { targets: [203.0.113.${int(1, 254)}], failAfter: ${int(2, 5)} }`);
    }
    const policyCount = int(0, 20);
    if (policyCount > 0) lines.push('policies:');
    for (let k = 0; k < policyCount; k++) {
      const via = [...providers].sort(() => rand() - 0.5).slice(0, int(1, Math.min(3, providers.length)));
      lines.push(`  - name: p${k}`);
      switch (int(0, 4)) {
        case 0:
          lines.push(`    to: ${pick(DOC_NETS)}.${int(0, 15) * 16}/28`);
          break;
        case 1:
          lines.push(
            `    from: 172.${16 + (i % 16)}.${i % 256}.${int(0, 3) * 64}/26`,
            '    traffic: forwarded',
          );
          break;
        case 2:
          lines.push(
            `    proto: ${pick(['tcp', 'udp'])}`,
            `    dport: [${int(1, 1000)}, ${int(1001, 2000)}]`,
          );
          break;
        case 3:
          lines.push(`    uid: ${int(100, 2000)}`);
          break;
        default:
          lines.push(`    mark: 0x${int(1, 255).toString(16)}`);
      }
      lines.push(`    via: [${via.join(', ')}]`);
    }
    files.set(`sites/${name}.yaml`, `${lines.join('\n')}\n`);
  }
  return files;
}
