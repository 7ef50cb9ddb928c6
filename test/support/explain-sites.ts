/** Small sites for the explain tests, loaded through the real validation pipeline. */
import { expect } from 'vitest';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import type { ValidSite } from '../../controller/src/spec/valid-site.js';

const FLEET = 'rollout:\n  waves:\n    - name: all\n';

export function loadSite(body: string, name = 's1'): ValidSite {
  const head = `name: ${name}
management:
  address: 192.0.2.10
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB
`;
  const r = loadFleet(
    new Map([
      ['fleet.yaml', FLEET],
      [`sites/${name}.yaml`, head + body],
    ]),
  );
  expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return r.validSites[0]!;
}

/** Two Ethernet uplinks with static addresses, a PPP link, a DHCP link; one LAN with two subnets. */
export const MIXED = `lan:
  - interface: lan0
    subnets: [172.20.1.0/24, 172.20.9.0/28]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    balance: 3
  - name: ppp
    interface: ppp0
    gateway: point-to-point
  - name: dhcp
    interface: wan2
    gateway: detect
    balance: 1
  - name: fixed
    interface: wan3
    address: 203.0.113.10/29
    gateway: detect
    fallback: true
  - name: gwonly
    interface: wan4
    gateway: 192.0.2.77
`;

/** Two uplinks balanced 1:1; SMTP pinned to isp1. */
export const TWO_ISPS = `lan:
  - interface: lan0
    subnets: [172.20.2.0/24]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
    balance: 1
  - name: isp2
    interface: wan2
    address: 198.51.100.6/30
    gateway: 198.51.100.5
    balance: 1
policies:
  - name: smtp
    proto: tcp
    dport: 25
    via: [isp1]
`;
