import { describe, expect, it } from 'vitest';
import { readSignatureStatus } from './signature-status.js';

const commit = '0123456789abcdef0123456789abcdef01234567';
const FPR = 'F60A5ABFEE35C950605C89205902B2B15CE6ACFC';
const good = [
  '[GNUPG:] NEWSIG',
  `[GNUPG:] GOODSIG 5902B2B15CE6ACFC Fleet Signer <ops@example.org>`,
  `[GNUPG:] VALIDSIG ${FPR} 2026-11-21 1795272997 0 4 0 22 8 00 ${FPR}`,
  '[GNUPG:] TRUST_ULTIMATE 0 pgp',
].join('\n');

describe('readSignatureStatus', () => {
  it.each([
    ['unsigned', 1, '', /not signed/],
    [
      'unknown key',
      1,
      `[GNUPG:] ERRSIG 5902B2B15CE6ACFC 22 8 00 1 9 ${FPR}\n[GNUPG:] NO_PUBKEY 5902B2B15CE6ACFC`,
      /not in the trusted keyring/,
    ],
    ['bad signature', 1, '[GNUPG:] BADSIG 5902B2B15CE6ACFC Fleet Signer', /BAD signature/],
    ['expired key', 1, '[GNUPG:] EXPKEYSIG 5902B2B15CE6ACFC Fleet Signer', /expired key/],
    ['revoked key', 1, '[GNUPG:] REVKEYSIG 5902B2B15CE6ACFC Fleet Signer', /revoked key/],
    ['good status but a failing exit', 1, good, /not verified/],
  ])('%s → refused', (_name, code, status, reason) => {
    const verdict = readSignatureStatus(commit, code, status);
    expect(verdict.ok).toBe(false);
    expect(verdict.reason).toMatch(reason);
    expect(verdict.reason).toMatch(/^commit 0123456789ab: /);
  });

  it('a good signature passes and names the primary key', () => {
    expect(readSignatureStatus(commit, 0, `gpg: Signature made …\n${good}\n`)).toEqual({
      ok: true,
      reason: `commit 0123456789ab: good signature by ${FPR}`,
      fingerprint: FPR,
    });
  });

  it('allowed fingerprints narrow the keyring (spaces and case ignored)', () => {
    const spaced = FPR.toLowerCase().replace(/(.{4})/g, '$1 ');
    expect(readSignatureStatus(commit, 0, good, [spaced]).ok).toBe(true);
    expect(readSignatureStatus(commit, 0, good, ['0'.repeat(40)])).toMatchObject({
      ok: false,
      reason: /not one of the allowed fingerprints/,
    });
  });
});
