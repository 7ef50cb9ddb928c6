import { describe, expect, it } from 'vitest';
import {
  blobOf,
  ECDSA_FINGERPRINT,
  ECDSA_LINE,
  ED25519_FINGERPRINT,
  ED25519_LINE,
} from '../../../test/transport/fixture-keys.js';
import { resolveTrustedHostKeys, verifyHostKey } from './trusted-host-keys.js';

const subject = { site: 'branch-1', host: '192.0.2.1', port: 22 };

describe('resolveTrustedHostKeys', () => {
  it('never trusts on first use: no pinned key and no known_hosts is an error', () => {
    const result = resolveTrustedHostKeys(subject);
    expect(result).toEqual({
      ok: false,
      error: expect.stringMatching(/^branch-1 \(192\.0\.2\.1:22\): no host key pinned/),
    });
  });

  it('prefers the fleet spec over known_hosts', () => {
    const result = resolveTrustedHostKeys({
      ...subject,
      hostKey: ED25519_LINE,
      knownHosts: `192.0.2.1 ${ECDSA_LINE}\n`,
    });
    expect(result.ok && result.keys.source).toBe('fleet spec');
    expect(result.ok && result.keys.trusted.map((k) => k.type)).toEqual(['ssh-ed25519']);
  });

  it('uses known_hosts when nothing is pinned, and fails when it has no key for the host', () => {
    const found = resolveTrustedHostKeys({ ...subject, knownHosts: `192.0.2.1 ${ECDSA_LINE}\n` });
    expect(found.ok && found.keys.source).toBe('known_hosts');
    const missing = resolveTrustedHostKeys({
      ...subject,
      port: 2222,
      knownHosts: `192.0.2.1 ${ECDSA_LINE}\n`,
    });
    expect(missing).toEqual({
      ok: false,
      error: expect.stringMatching(/known_hosts has no usable key for 192\.0\.2\.1 port 2222/),
    });
  });

  it('reports a malformed pinned key', () => {
    const result = resolveTrustedHostKeys({ ...subject, hostKey: 'ssh-ed25519' });
    expect(result).toEqual({
      ok: false,
      error: expect.stringMatching(/^branch-1 \(192\.0\.2\.1:22\): pinned host key: expected/),
    });
  });
});

describe('verifyHostKey', () => {
  const pinned = resolveTrustedHostKeys({ ...subject, hostKey: ED25519_LINE });
  if (!pinned.ok) throw new Error(pinned.error);

  it('accepts the pinned key byte for byte', () => {
    expect(verifyHostKey(blobOf(ED25519_LINE), pinned.keys, subject)).toEqual({ ok: true });
  });

  it('refuses another key, naming the site, the host and both fingerprints', () => {
    const verdict = verifyHostKey(blobOf(ECDSA_LINE), pinned.keys, subject);
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.presented).toBe(ECDSA_FINGERPRINT);
    expect(verdict.expected).toEqual([ED25519_FINGERPRINT]);
    expect(verdict.message).toContain('branch-1 (192.0.2.1:22): HOST KEY MISMATCH');
    expect(verdict.message).toContain(`presented ecdsa-sha2-nistp256 ${ECDSA_FINGERPRINT}`);
    expect(verdict.message).toContain(`fleet spec trusts ${ED25519_FINGERPRINT}`);
  });

  it('refuses a revoked key even if it is also listed as trusted', () => {
    const keys = resolveTrustedHostKeys({
      ...subject,
      knownHosts: `192.0.2.1 ${ED25519_LINE}\n@revoked * ${ED25519_LINE}\n`,
    });
    if (!keys.ok) throw new Error(keys.error);
    const verdict = verifyHostKey(blobOf(ED25519_LINE), keys.keys, subject);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.message).toMatch(/marked @revoked/);
  });
});
