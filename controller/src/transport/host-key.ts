/**
 * Pinned SSH host keys: parse an OpenSSH public key line, fingerprint a key blob the way
 * OpenSSH prints it, and say which host-key algorithms to offer for a key type.
 */
import { createHash } from 'node:crypto';

/** Key types a pinned key may have (ssh-dss is deliberately absent). */
export const HOST_KEY_TYPES = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
] as const;
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];

/** A public key: its type and its wire-format blob (what the base64 in a key line decodes to). */
export interface PublicKey {
  readonly type: HostKeyType;
  readonly blob: Buffer;
}

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

function isHostKeyType(type: string): type is HostKeyType {
  return (HOST_KEY_TYPES as readonly string[]).includes(type);
}

/** The key type embedded at the start of a wire-format key blob (uint32 length + name). */
export function readBlobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** Parse the `type base64` part of a key (`ssh-ed25519 AAAAC3… comment`); the comment is ignored. */
export function parsePublicKey(type: string, base64: string): ParseResult<PublicKey> {
  if (!isHostKeyType(type)) {
    return {
      ok: false,
      error: `key type "${type}" is not supported; use one of ${HOST_KEY_TYPES.join(', ')}`,
    };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
    return { ok: false, error: `${type} key: the key data is not base64` };
  }
  const blob = Buffer.from(base64, 'base64');
  const embedded = readBlobType(blob);
  if (embedded !== type) {
    return {
      ok: false,
      error: `${type} key: the key data is a ${embedded === undefined ? 'malformed key' : `"${embedded}" key`}, not ${type}`,
    };
  }
  return { ok: true, value: { type, blob } };
}

/** Parse an OpenSSH public key line as pinned in the fleet spec: `ssh-ed25519 AAAA… [comment]`. */
export function parsePublicKeyLine(line: string): ParseResult<PublicKey> {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2 || fields[0] === '') {
    return {
      ok: false,
      error: 'host key: expected "<type> <base64> [comment]", e.g. "ssh-ed25519 AAAAC3Nza…"',
    };
  }
  return parsePublicKey(fields[0]!, fields[1]!);
}

/** `SHA256:<base64, no padding>` — what `ssh-keygen -lf` and OpenSSH's warnings print. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The server host-key algorithms to offer when we trust keys of these types. Offering only
 * those makes the server present the key we pinned, not another of its keys (an OpenSSH
 * server has ed25519, ecdsa and rsa keys; it would otherwise pick by our preference).
 */
export function hostKeyAlgorithms(types: Iterable<HostKeyType>): string[] {
  const algorithms: string[] = [];
  for (const type of new Set(types)) {
    if (type === 'ssh-rsa') algorithms.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algorithms.push(type);
  }
  return algorithms;
}
