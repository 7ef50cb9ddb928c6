/**
 * Reading `git verify-commit --raw` (gpg's `--status-fd` lines) into a verdict. Pure.
 *
 * git accepts any good signature by a key in the keyring; the keyring (a dedicated
 * GNUPGHOME holding only the fleet's signing keys) is therefore the trust policy. An
 * optional list of fingerprints narrows it further.
 */

export interface SignatureVerdict {
  readonly ok: boolean;
  /** Why not, or who signed; always set, for status and logs. */
  readonly reason: string;
  /** Primary key fingerprint of a valid signature. */
  readonly fingerprint?: string;
}

export function readSignatureStatus(
  commit: string,
  exitCode: number,
  status: string,
  allowedFingerprints?: readonly string[],
): SignatureVerdict {
  const lines = status
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice('[GNUPG:] '.length).split(' '));
  const find = (keyword: string) => lines.find((l) => l[0] === keyword);
  const short = commit.slice(0, 12);
  if (lines.length === 0) {
    return {
      ok: false,
      reason: `commit ${short}: not signed; sign it (git commit -S) with a fleet signing key`,
    };
  }
  const bad = find('BADSIG');
  if (bad)
    return {
      ok: false,
      reason: `commit ${short}: BAD signature by key ${bad[1]} (${bad.slice(2).join(' ')})`,
    };
  const noKey = find('NO_PUBKEY') ?? find('ERRSIG');
  if (noKey) {
    return {
      ok: false,
      reason: `commit ${short}: signed by key ${noKey[1]}, which is not in the trusted keyring`,
    };
  }
  for (const [keyword, what] of [
    ['EXPKEYSIG', 'an expired key'],
    ['REVKEYSIG', 'a revoked key'],
    ['EXPSIG', 'an expired signature'],
  ] as const) {
    const hit = find(keyword);
    if (hit) return { ok: false, reason: `commit ${short}: signed with ${what} (${hit[1]})` };
  }
  const valid = find('VALIDSIG');
  if (exitCode !== 0 || !find('GOODSIG') || !valid) {
    return {
      ok: false,
      reason: `commit ${short}: signature not verified (git verify-commit exit ${exitCode})`,
    };
  }
  // VALIDSIG <signing key fpr> <date> <ts> <expire> <ver> <rsvd> <pk algo> <hash algo> <class> <primary fpr>
  const fingerprint = (valid[10] ?? valid[1])!.toUpperCase();
  const signingKey = valid[1]!.toUpperCase();
  if (allowedFingerprints && allowedFingerprints.length > 0) {
    const allowed = allowedFingerprints.map((f) => f.replace(/\s+/g, '').toUpperCase());
    if (!allowed.includes(fingerprint) && !allowed.includes(signingKey)) {
      return {
        ok: false,
        reason: `commit ${short}: signed by ${fingerprint}, which is not one of the allowed fingerprints`,
        fingerprint,
      };
    }
  }
  return { ok: true, reason: `commit ${short}: good signature by ${fingerprint}`, fingerprint };
}
