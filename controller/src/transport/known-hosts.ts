/**
 * OpenSSH known_hosts, as an alternative to pinning keys in the fleet spec: plain
 * `host[,host…] type base64` lines, `[host]:port` entries, wildcards and `!negation`,
 * hashed `|1|salt|hmac` entries (HashKnownHosts) and `@revoked` lines. `@cert-authority`
 * lines are skipped: Uplink pins keys, it does not trust host certificates.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type PublicKey, parsePublicKey } from './host-key.js';

type HostMatcher =
  | { readonly kind: 'patterns'; readonly patterns: readonly string[] }
  | { readonly kind: 'hashed'; readonly salt: Buffer; readonly hash: Buffer };

export interface KnownHostsEntry {
  readonly line: number;
  readonly revoked: boolean;
  readonly hosts: HostMatcher;
  readonly key: PublicKey;
}

export interface KnownHosts {
  readonly entries: readonly KnownHostsEntry[];
  /** Lines that could not be used, subject first (`line 3: …`); they never match anything. */
  readonly skipped: readonly string[];
}

export function parseKnownHosts(text: string): KnownHosts {
  const entries: KnownHostsEntry[] = [];
  const skipped: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let revoked = false;
    if (fields[0]!.startsWith('@')) {
      const marker = fields.shift()!;
      if (marker === '@cert-authority') {
        skipped.push(`line ${line}: @cert-authority entries are not supported (pin the host key instead)`);
        return;
      }
      if (marker !== '@revoked') {
        skipped.push(`line ${line}: unknown marker ${marker}`);
        return;
      }
      revoked = true;
    }
    if (fields.length < 3) {
      skipped.push(`line ${line}: expected "<hosts> <type> <base64>"`);
      return;
    }
    const hosts = parseHostField(fields[0]!);
    if (hosts === undefined) {
      skipped.push(`line ${line}: malformed hashed host "${fields[0]}"`);
      return;
    }
    const key = parsePublicKey(fields[1]!, fields[2]!);
    if (!key.ok) {
      skipped.push(`line ${line}: ${key.error}`);
      return;
    }
    entries.push({ line, revoked, hosts, key: key.value });
  });
  return { entries, skipped };
}

function parseHostField(field: string): HostMatcher | undefined {
  if (!field.startsWith('|')) return { kind: 'patterns', patterns: field.split(',').filter((p) => p !== '') };
  const match = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(field);
  if (match === null) return undefined;
  const salt = Buffer.from(match[1]!, 'base64');
  const hash = Buffer.from(match[2]!, 'base64');
  if (salt.length !== 20 || hash.length !== 20) return undefined;
  return { kind: 'hashed', salt, hash };
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's `*` and `?` wildcards, case-insensitive, over the whole name. */
export function matchWildcard(pattern: string, name: string): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.+()[\]{}|]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'i').test(name);
}

function matchesHost(hosts: HostMatcher, name: string): boolean {
  if (hosts.kind === 'hashed') {
    const digest = createHmac('sha1', hosts.salt).update(name).digest();
    return timingSafeEqual(digest, hosts.hash);
  }
  let matched = false;
  for (const pattern of hosts.patterns) {
    if (pattern.startsWith('!')) {
      if (matchWildcard(pattern.slice(1), name)) return false;
    } else if (matchWildcard(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The keys known_hosts trusts for this host and port, and the ones it explicitly revokes. */
export function findHostKeys(
  knownHosts: KnownHosts,
  host: string,
  port: number,
): { trusted: PublicKey[]; revoked: PublicKey[] } {
  const name = knownHostsName(host, port);
  const trusted: PublicKey[] = [];
  const revoked: PublicKey[] = [];
  for (const entry of knownHosts.entries) {
    if (entry.revoked) {
      // A revoked key is revoked for every host, as in OpenSSH.
      revoked.push(entry.key);
    } else if (matchesHost(entry.hosts, name)) {
      trusted.push(entry.key);
    }
  }
  return { trusted, revoked };
}
