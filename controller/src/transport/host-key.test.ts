import { describe, expect, it } from 'vitest';
import {
  blobOf,
  ECDSA_FINGERPRINT,
  ECDSA_LINE,
  ED25519_FINGERPRINT,
  ED25519_LINE,
  RSA_FINGERPRINT,
  RSA_LINE,
} from '../../../test/transport/fixture-keys.js';
import { fingerprintSha256, hostKeyAlgorithms, parsePublicKeyLine } from './host-key.js';

describe('parsePublicKeyLine', () => {
  it.each([
    ['ssh-ed25519', ED25519_LINE, ED25519_FINGERPRINT],
    ['ecdsa-sha2-nistp256', ECDSA_LINE, ECDSA_FINGERPRINT],
    ['ssh-rsa', RSA_LINE, RSA_FINGERPRINT],
  ])('reads a %s line and fingerprints it like ssh-keygen -lf', (type, line, fingerprint) => {
    const parsed = parsePublicKeyLine(`  ${line}  `);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.type).toBe(type);
    expect(parsed.value.blob.equals(blobOf(line))).toBe(true);
    expect(fingerprintSha256(parsed.value.blob)).toBe(fingerprint);
  });

  it('accepts a line without a comment', () => {
    expect(parsePublicKeyLine(ED25519_LINE.split(' ').slice(0, 2).join(' ')).ok).toBe(true);
  });

  it.each([
    ['empty', '', /expected "<type> <base64>/],
    ['type only', 'ssh-ed25519', /expected "<type> <base64>/],
    ['unsupported type', `ssh-dss ${ED25519_LINE.split(' ')[1]}`, /key type "ssh-dss" is not supported/],
    ['not base64', 'ssh-ed25519 AAAA$$$', /not base64/],
    ['type does not match blob', `ssh-rsa ${ED25519_LINE.split(' ')[1]}`, /"ssh-ed25519" key, not ssh-rsa/],
    ['truncated blob', 'ssh-ed25519 AAAA', /malformed key/],
  ])('refuses %s', (_name, line, message) => {
    const parsed = parsePublicKeyLine(line);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(message);
  });
});

describe('hostKeyAlgorithms', () => {
  it('offers only the pinned key types, rsa as its SHA-2 signatures first', () => {
    expect(hostKeyAlgorithms(['ssh-ed25519'])).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms(['ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-rsa'])).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ecdsa-sha2-nistp256',
    ]);
  });
});
