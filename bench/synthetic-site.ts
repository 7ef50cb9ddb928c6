/** The benchmarks' synthetic site: 4 static uplinks and 200 policies, and its namespace topology. */

import type { DesiredState } from '../agent/src/model/desired-state.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { readFleetFiles } from '../controller/src/repo/read-fleet-files.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import type { SiteTopologyOptions } from '../test/lab/site-topology.js';
import { FLEET_DIR } from '../test/scenarios/site-lab.js';

/** 4 static uplinks and 200 policies: every selector kind, one or two providers each. */
export function syntheticSiteYaml(): string {
  const providers = [1, 2, 3, 4].map(
    (n) => `  - name: isp${n}
    interface: eth${n}
    address: 198.51.100.${8 * (n - 1) + 2}/29
    gateway: 198.51.100.${8 * (n - 1) + 1}
    balance: ${n}
    track: true
    snat: auto`,
  );
  const policies: string[] = [];
  for (let i = 0; i < 200; i++) {
    const via = i % 3 === 0 ? `[isp${(i % 4) + 1}, isp${((i + 1) % 4) + 1}]` : `[isp${(i % 4) + 1}]`;
    const selector = [
      `from: 172.20.${Math.floor(i / 64)}.${(i % 64) * 4}/30`,
      `to: 203.0.113.${i % 256}`,
      `proto: tcp\n    dport: ${1000 + i}`,
      `uid: ${2000 + i}`,
      `mark: 0x${(1 + (i % 200)).toString(16)}`,
    ][i % 5];
    policies.push(`  - name: p${i}\n    ${selector}\n    via: ${via}`);
  }
  return `name: synthetic
extends: [base]
management:
  address: 192.0.2.250
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB
lan:
  - interface: lan0
    subnets: [172.20.0.0/22]
providers:
${providers.join('\n')}
policies:
${policies.join('\n')}
`;
}

export async function compileSynthetic(): Promise<DesiredState> {
  const files = await readFleetFiles(FLEET_DIR);
  files.set('sites/synthetic.yaml', syntheticSiteYaml());
  const load = loadFleet(files);
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`synthetic site does not validate: ${JSON.stringify(errors[0])}`);
  return compileSite(load.validSites.find((s) => s.name === 'synthetic')!);
}

export const SYNTHETIC_TOPOLOGY: SiteTopologyOptions = {
  uplinks: [1, 2, 3, 4].map((n) => ({
    name: `eth${n}`,
    kind: 'subnet' as const,
    address: `198.51.100.${8 * (n - 1) + 2}/29`,
    gateway: `198.51.100.${8 * (n - 1) + 1}`,
  })),
  lan: { subnets: [{ router: '172.20.0.1/22', host: '172.20.0.10/22' }] },
};
