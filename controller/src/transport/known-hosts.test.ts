import { describe, expect, it } from 'vitest';
import {
  blobOf,
  ECDSA_LINE,
  ED25519_LINE,
  HASHED_KNOWN_HOSTS,
  RSA_LINE,
} from '../../../test/transport/fixture-keys.js';
import { findHostKeys, knownHostsName, matchWildcard, parseKnownHosts } from './known-hosts.js';

const ed = ED25519_LINE.split(' ').slice(0, 2).join(' ');
const ec = ECDSA_LINE.split(' ').slice(0, 2).join(' ');
const rsa = RSA_LINE.split(' ').slice(0, 2).join(' ');

function trustedBlobs(text: string, host: string, port: number): Buffer[] {
  return findHostKeys(parseKnownHosts(text), host, port).trusted.map((k) => k.blob);
}

describe('knownHostsName', () => {
  it('brackets the host with a non-standard port, as OpenSSH does', () => {
    expect(knownHostsName('192.0.2.1', 22)).toBe('192.0.2.1');
    expect(knownHostsName('192.0.2.1', 2222)).toBe('[192.0.2.1]:2222');
  });
});

describe('matchWildcard', () => {
  it.each([
    ['*.example.net', 'r1.example.net', true],
    ['*.example.net', 'example.net', false],
    ['r?.example.net', 'r1.example.net', true],
    ['R1.EXAMPLE.NET', 'r1.example.net', true],
    ['192.0.2.1', '192.0.2.10', false],
    ['192.0.2.*', '192.0.2.10', true],
    ['[192.0.2.1]:2222', '[192.0.2.1]:2222', true],
  ])('%s vs %s → %s', (pattern, name, expected) => {
    expect(matchWildcard(pattern, name)).toBe(expected);
  });
});

describe('findHostKeys', () => {
  const text = [
    '# comment',
    '',
    `router1.example.net,192.0.2.1 ${ed} root@router1`,
    `[192.0.2.1]:2222 ${ec}`,
    `*.example.net,!bad.example.net ${rsa}`,
  ].join('\n');

  it('matches plain host lists, [host]:port entries and wildcards with negation', () => {
    expect(trustedBlobs(text, '192.0.2.1', 22)).toEqual([blobOf(ED25519_LINE)]);
    expect(trustedBlobs(text, '192.0.2.1', 2222)).toEqual([blobOf(ECDSA_LINE)]);
    expect(trustedBlobs(text, 'router1.example.net', 22)).toEqual([blobOf(ED25519_LINE), blobOf(RSA_LINE)]);
    expect(trustedBlobs(text, 'bad.example.net', 22)).toEqual([]);
    expect(trustedBlobs(text, '192.0.2.2', 22)).toEqual([]);
  });

  it('matches entries hashed by ssh-keygen -H (HMAC-SHA1 of the looked-up name)', () => {
    expect(trustedBlobs(HASHED_KNOWN_HOSTS, 'router1.example.net', 22)).toEqual([blobOf(ED25519_LINE)]);
    expect(trustedBlobs(HASHED_KNOWN_HOSTS, '192.0.2.10', 2222)).toEqual([blobOf(ECDSA_LINE)]);
    expect(trustedBlobs(HASHED_KNOWN_HOSTS, '192.0.2.10', 22)).toEqual([]);
    expect(trustedBlobs(HASHED_KNOWN_HOSTS, 'router2.example.net', 22)).toEqual([]);
  });

  it('collects @revoked keys and skips what it cannot use, saying which line', () => {
    const parsed = parseKnownHosts(
      [
        `@revoked * ${ec}`,
        `@cert-authority *.example.net ${ed}`,
        `@bogus host ${ed}`,
        'host-only',
        `host ssh-dss ${ed.split(' ')[1]}`,
        `|1|bad|hash ${ed}`,
        `host ${ed}`,
      ].join('\n'),
    );
    expect(parsed.entries.map((e) => e.line)).toEqual([1, 7]);
    expect(parsed.skipped).toEqual([
      'line 2: @cert-authority entries are not supported (pin the host key instead)',
      'line 3: unknown marker @bogus',
      'line 4: expected "<hosts> <type> <base64>"',
      expect.stringMatching(/^line 5: key type "ssh-dss" is not supported/),
      'line 6: malformed hashed host "|1|bad|hash"',
    ]);
    const found = findHostKeys(parsed, 'host', 22);
    expect(found.trusted.map((k) => k.blob)).toEqual([blobOf(ED25519_LINE)]);
    expect(found.revoked.map((k) => k.blob)).toEqual([blobOf(ECDSA_LINE)]);
  });
});
