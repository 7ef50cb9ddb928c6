/** Where a one-shot command (apply, drift) connects for a site. */
import type { ValidSite } from '../spec/valid-site.js';
import type { SshTarget } from '../transport/index.js';

/**
 * The site's management address and the keys to trust: the spec's pinned host key, else the
 * known_hosts file's entries for the address (the spec wins, D87).
 */
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
    hostKey: site.management.hostKey,
    knownHosts,
    privateKey,
  };
}
