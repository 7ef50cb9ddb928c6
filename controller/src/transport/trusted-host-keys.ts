/**
 * Which host keys the controller trusts for a site, and whether a presented key is one of
 * them. Never trust-on-first-use: no pinned key means no connection.
 */
import { fingerprintSha256, type PublicKey, parsePublicKeyLine, readBlobType } from './host-key.js';
import { findHostKeys, parseKnownHosts } from './known-hosts.js';

export interface TrustedHostKeys {
  /** Where the keys came from, for messages. */
  readonly source: 'fleet spec' | 'known_hosts';
  readonly trusted: readonly PublicKey[];
  readonly revoked: readonly PublicKey[];
}

export interface HostKeySources {
  readonly site: string;
  readonly host: string;
  readonly port: number;
  /** The pinned key line from the fleet spec. When given, it is the only key trusted. */
  readonly hostKey?: string | undefined;
  /** Contents of an OpenSSH known_hosts file, used when no key is pinned in the spec. */
  readonly knownHosts?: string | undefined;
}

export type TrustResult =
  | { readonly ok: true; readonly keys: TrustedHostKeys }
  | { readonly ok: false; readonly error: string };

/**
 * The spec's pinned key wins over known_hosts: the fleet repo is reviewed, a controller's
 * known_hosts file is not, so a stale known_hosts line must not widen what the spec pins.
 */
export function resolveTrustedHostKeys(sources: HostKeySources): TrustResult {
  const subject = `${sources.site} (${sources.host}:${sources.port})`;
  if (sources.hostKey !== undefined) {
    const key = parsePublicKeyLine(sources.hostKey);
    if (!key.ok) return { ok: false, error: `${subject}: pinned ${key.error}` };
    return { ok: true, keys: { source: 'fleet spec', trusted: [key.value], revoked: [] } };
  }
  if (sources.knownHosts !== undefined) {
    const { trusted, revoked } = findHostKeys(
      parseKnownHosts(sources.knownHosts),
      sources.host,
      sources.port,
    );
    if (trusted.length === 0) {
      return {
        ok: false,
        error: `${subject}: known_hosts has no usable key for ${sources.host} port ${sources.port}; pin the host key (never trusted on first use)`,
      };
    }
    return { ok: true, keys: { source: 'known_hosts', trusted, revoked } };
  }
  return {
    ok: false,
    error: `${subject}: no host key pinned; set the site's host key in the fleet spec or give a known_hosts file (never trusted on first use)`,
  };
}

export type HostKeyVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly presented: string;
      readonly expected: readonly string[];
      readonly message: string;
    };

/** Compare the key the server presented (wire-format blob) to the trusted keys, byte for byte. */
export function verifyHostKey(
  presented: Buffer,
  keys: TrustedHostKeys,
  subject: { readonly site: string; readonly host: string; readonly port: number },
): HostKeyVerdict {
  const presentedFingerprint = fingerprintSha256(presented);
  const expected = keys.trusted.map((key) => fingerprintSha256(key.blob));
  const who = `${subject.site} (${subject.host}:${subject.port})`;
  const type = readBlobType(presented) ?? 'unknown type';
  if (keys.revoked.some((key) => key.blob.equals(presented))) {
    return {
      ok: false,
      presented: presentedFingerprint,
      expected,
      message: `${who}: host key ${type} ${presentedFingerprint} is marked @revoked in known_hosts; refusing to connect`,
    };
  }
  if (keys.trusted.some((key) => key.blob.equals(presented))) return { ok: true };
  return {
    ok: false,
    presented: presentedFingerprint,
    expected,
    message: `${who}: HOST KEY MISMATCH: the server presented ${type} ${presentedFingerprint}, but the ${keys.source} trusts ${expected.join(', ')}; refusing to connect (if the router was reinstalled, update the pinned key after checking it out of band)`,
  };
}
