import { describe, expect, it } from 'vitest';
import { smallFleetFiles } from '../../../test/git/small-fleet.js';
import { loadFleet } from '../spec/load-fleet.js';
import { resolveTrustedHostKeys } from '../transport/trusted-host-keys.js';
import { siteSshTarget } from './site-ssh-target.js';

const PINNED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4';

/** s1 pins its host key in the spec, s2 does not (its `hostKey:` line is removed); s3, s4 fill the waves. */
function sites() {
  const files = smallFleetFiles({
    sites: ['s1', 's2', 's3', 's4'].map((name, i) => ({
      name,
      address: `192.0.2.${10 + i}`,
      hostKey: PINNED,
    })),
    version: 1,
  });
  files['sites/s2.yaml'] = files['sites/s2.yaml']!.replace(/^ {2}hostKey: .*\n/m, '');
  const load = loadFleet(new Map(Object.entries(files)));
  expect(load.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const byName = new Map(load.fleet!.sites.map((s) => [s.name, s]));
  return { s1: byName.get('s1')!, s2: byName.get('s2')! };
}

const trust = (site: ReturnType<typeof sites>['s1'], knownHosts: string | undefined) => {
  const target = siteSshTarget(site, Buffer.from('key'), knownHosts);
  return resolveTrustedHostKeys({
    site: target.site,
    host: target.host,
    port: target.port ?? 22,
    hostKey: target.hostKey,
    knownHosts: target.knownHosts,
  });
};

describe('which host keys the controller trusts for a site', () => {
  it('a site may leave hostKey out of the spec', () => {
    const { s1, s2 } = sites();
    expect(s1.management.hostKey).toBe(PINNED);
    expect(s2.management).not.toHaveProperty('hostKey');
  });

  it('the spec’s pinned key wins over a known_hosts file that names another key', () => {
    const result = trust(sites().s1, `192.0.2.10 ${OTHER}\n`);
    expect(result.ok && result.keys.source).toBe('fleet spec');
    expect(result.ok && result.keys.trusted.map((k) => k.type)).toEqual(['ssh-ed25519']);
  });

  it('without a pinned key, the known_hosts entry for the address is trusted; without either, none', () => {
    const { s2 } = sites();
    const fromFile = trust(s2, `192.0.2.11 ${OTHER}\n`);
    expect(fromFile.ok && fromFile.keys.source).toBe('known_hosts');
    const noEntry = trust(s2, `192.0.2.99 ${OTHER}\n`);
    expect(noEntry).toMatchObject({
      ok: false,
      error: expect.stringMatching(/known_hosts has no usable key/),
    });
    const nothing = trust(s2, undefined);
    expect(nothing).toMatchObject({ ok: false, error: expect.stringMatching(/no host key pinned/) });
  });
});
