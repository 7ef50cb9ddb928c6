/** Where a one-shot command (apply, drift) connects for a site. */
import type { ValidSite } from '../spec/valid-site.js';
import type { SshTarget } from '../transport/index.js';

/** The site's management address; with a known_hosts file the spec's hostKey is not used. */
export function siteSshTarget(
  site: ValidSite,
  privateKey: Buffer,
  knownHosts: string | undefined,
): SshTarget {
  return {
    site: site.name,
    host: site.management.address,
    port: site.management.port,
    user: site.management.user,
    hostKey: knownHosts ? undefined : site.management.hostKey,
    knownHosts,
    privateKey,
  };
}
