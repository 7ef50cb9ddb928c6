/**
 * The lab plan of a dual-stack example site (D180): each provider's IPv6 half becomes an
 * IPv6 uplink of the lab (the spec's static address, or a made-up one for `learned`; a stand-in
 * RA route for `detect`), the LAN gets an address in each IPv6 prefix, and the IPv6 probe
 * targets live on the internet's lo. (The lab built from it is exercised by the demo's IPv6
 * step and the dual-stack namespace suite.)
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFleetFiles } from '../../controller/src/repo/read-fleet-files.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import { planSiteLab } from './fleet-lab-sites.js';

describe('planSiteLab', () => {
  it('plans the IPv6 half of branch-dualstack', async () => {
    const files = await readFleetFiles(join(import.meta.dirname, '../../fleet-repo-example'));
    const site = loadFleet(files).fleet!.sites.find((s) => s.name === 'branch-dualstack')!;
    const plan = planSiteLab(site);
    expect(plan.uplinks.map((u) => u.ipv6)).toEqual([
      { address: '2001:db8:ffa1::2/64', gateway: 'fe80::1', prefixes: ['2001:db8:a1::/48'], ra: false },
      { address: '2001:db8:fe2::2/64', gateway: '2001:db8:fe2::1', prefixes: ['2001:db8:b2::/48'], ra: true },
    ]);
    expect(plan.lan?.subnets).toEqual([
      { router: '172.20.50.1/24', host: '172.20.50.10/24' },
      { router: '2001:db8:a1:1::1/64', host: '2001:db8:a1:1::10/64' },
      { router: '2001:db8:b2:1::1/64', host: '2001:db8:b2:1::10/64' },
    ]);
    expect(plan.internetHosts6).toEqual(['2001:db8:99::10', '2001:db8:99::1']);
  });

  it('leaves an IPv4-only site without IPv6', async () => {
    const files = await readFleetFiles(join(import.meta.dirname, '../../fleet-repo-example'));
    const site = loadFleet(files).fleet!.sites.find((s) => s.name === 'lartc-split')!;
    const plan = planSiteLab(site);
    expect(plan.uplinks.some((u) => u.ipv6 !== undefined)).toBe(false);
    expect(plan.internetHosts6).toBeUndefined();
  });
});
