/** GitSource against real temporary repositories: a bare remote and an operator's clone. */
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFleetRemote,
  createGpgKey,
  createKeyring,
  type FleetRemote,
  type GpgKey,
  git,
  hasGpg,
  stopGpgAgent,
} from '../../../test/git/fleet-remote.js';
import { UplinkError } from '../errors.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { loadFleet } from '../spec/load-fleet.js';
import { GitSource } from './git-source.js';

const EXAMPLE = join(import.meta.dirname, '../../../fleet-repo-example');

let example: Map<string, string>;
let remote: FleetRemote;
let stateDir: string;
let first: string;
let second: string;

beforeAll(async () => {
  example = await readFleetFiles(EXAMPLE);
  remote = await createFleetRemote();
  stateDir = await mkdtemp(join(tmpdir(), 'uplink-state-'));
  first = await remote.commit(
    { ...Object.fromEntries(example), 'README.md': '# fleet\n', 'sites/old/nested.yaml': 'name: nested\n' },
    'first fleet',
  );
  const home = example.get('sites/home-pppoe.yaml')!;
  second = await remote.commit(
    {
      'sites/home-pppoe.yaml': `${home}\n# touched\n`,
      'sites/lartc-split.yaml': null,
    },
    'touch home, drop lartc',
  );
});

afterAll(async () => {
  await remote?.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

describe('GitSource mirror', () => {
  it('fetches into a bare mirror and picks up later pushes', async () => {
    const dir = join(stateDir, 'fetch.git');
    const source = await GitSource.mirror({ url: remote.bare, branch: 'main', dir });
    await expect(source.headCommit()).rejects.toThrow(/nothing fetched of main yet/);
    expect(await source.fetch()).toBe(second);
    expect(await git(dir, ['rev-parse', '--is-bare-repository'])).toBe('true');

    const third = await remote.commit({ 'groups/extra.yaml': 'name: extra\n' }, 'third');
    expect(await source.headCommit()).toBe(second); // not fetched yet
    expect(await source.fetch()).toBe(third);

    // A controller restart reopens the same mirror.
    const again = await GitSource.mirror({ url: remote.bare, branch: 'main', dir });
    expect(await again.headCommit()).toBe(third);
    await git(remote.work, ['reset', '--quiet', '--hard', second]);
    await git(remote.work, ['push', '--quiet', '--force', 'origin', 'HEAD:main']);
  });

  it('follows a force-push', async () => {
    const dir = join(stateDir, 'force.git');
    const source = await GitSource.mirror({ url: remote.bare, branch: 'main', dir });
    await source.fetch();
    const side = await remote.commit({ 'fleet.yaml': example.get('fleet.yaml')! }, 'empty-ish', {
      push: false,
    });
    await git(remote.work, ['reset', '--quiet', '--hard', first]);
    await git(remote.work, ['push', '--quiet', '--force', 'origin', 'HEAD:main']);
    expect(await source.fetch()).toBe(first);
    await git(remote.work, ['reset', '--quiet', '--hard', second]);
    await git(remote.work, ['push', '--quiet', '--force', 'origin', 'HEAD:main']);
    expect(await source.fetch()).toBe(second);
    expect(side).toMatch(/^[0-9a-f]{40}$/);
  });

  it('reads the fleet files of any revision without a checkout', async () => {
    const source = await GitSource.mirror({
      url: remote.bare,
      branch: 'main',
      dir: join(stateDir, 'read.git'),
    });
    await source.fetch();
    const atFirst = await source.readFleetFilesAt(first);
    const atSecond = await source.readFleetFilesAt('main');
    // Exactly what readFleetFiles finds in a directory: no README, nothing nested.
    expect(atFirst).toEqual(example);
    expect([...atSecond.keys()]).toEqual(
      [...example.keys()].filter((k) => k !== 'sites/lartc-split.yaml').sort(),
    );
    expect(atSecond.get('sites/home-pppoe.yaml')).toMatch(/# touched\n$/);
    expect(atFirst.get('sites/home-pppoe.yaml')).not.toMatch(/# touched/);

    const loadFirst = loadFleet(atFirst);
    const loadSecond = loadFleet(atSecond);
    expect(loadFirst.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(loadFirst.fleet?.sites.map((s) => s.name)).toContain('lartc-split');
    expect(loadSecond.fleet?.sites.map((s) => s.name)).not.toContain('lartc-split');
  });

  it('resolves revisions and refuses what is not one', async () => {
    const source = await GitSource.mirror({
      url: remote.bare,
      branch: 'main',
      dir: join(stateDir, 'rev.git'),
    });
    await git(remote.work, ['tag', 'v1', first]);
    await git(remote.work, ['push', '--quiet', 'origin', 'v1']);
    await source.fetch();
    expect(await source.resolveRev('main')).toBe(second);
    expect(await source.resolveRev('main~1')).toBe(first);
    expect(await source.resolveRev(first.slice(0, 10))).toBe(first);
    expect(await source.resolveRev('v1')).toBe(first);
    for (const bad of ['nope', '--output=/tmp/x', '', 'a b', 'deadbeef'.repeat(5)]) {
      await expect(source.resolveRev(bad), bad).rejects.toMatchObject({ kind: 'usage' });
    }
  });

  it('a missing branch is a usage error, an unreachable remote a retryable transport error', async () => {
    const wrongBranch = await GitSource.mirror({
      url: remote.bare,
      branch: 'prod',
      dir: join(stateDir, 'b.git'),
    });
    await expect(wrongBranch.fetch()).rejects.toMatchObject({
      kind: 'usage',
      message: /branch prod does not exist/,
    });
    const gone = await GitSource.mirror({
      url: join(stateDir, 'no-such.git'),
      branch: 'main',
      dir: join(stateDir, 'c.git'),
    });
    const error = await gone.fetch().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UplinkError);
    expect(error).toMatchObject({ kind: 'transport', retryable: true });
  });

  it('skips symlinks and reads an opened working clone in place', async () => {
    await symlink('home-pppoe.yaml', join(remote.work, 'sites/link.yaml'));
    const withLink = await remote.commit({}, 'a symlink', { push: false });
    const source = await GitSource.open(remote.work);
    expect(await source.headCommit()).toBe(withLink);
    expect(await source.fetch()).toBe(withLink);
    expect((await source.readFleetFilesAt('HEAD')).has('sites/link.yaml')).toBe(false);
    await git(remote.work, ['reset', '--quiet', '--hard', second]);
    await expect(GitSource.open(stateDir)).rejects.toMatchObject({ kind: 'usage' });
  });
});

const gpg = await hasGpg();
// CI must have gpg (Debian package gnupg); elsewhere the signed cases are skipped without it.
const skipSigned = !gpg && process.env.CI !== 'true';

describe('GitSource.verifyCommit', () => {
  let trusted: GpgKey;
  let stranger: GpgKey;
  let keyring: string;

  beforeAll(async () => {
    if (skipSigned) return;
    trusted = await createGpgKey(remote.root, 'fleet-signer');
    stranger = await createGpgKey(remote.root, 'stranger');
    keyring = await createKeyring(remote.root, [trusted.publicKey]);
  });
  afterAll(async () => {
    for (const home of [trusted?.home, stranger?.home, keyring]) if (home) await stopGpgAgent(home);
  });

  it('refuses an unsigned commit and says so', async () => {
    const source = await GitSource.open(remote.work);
    const verdict = await source.verifyCommit(second, { gpgHome: keyring ?? join(stateDir, 'no-keyring') });
    expect(verdict.ok).toBe(false);
    expect(verdict.reason).toMatch(/not signed/);
  });

  it.skipIf(skipSigned)('accepts a commit signed by a key in the keyring', async () => {
    const signed = await remote.commit({}, 'signed', {
      signingKey: trusted.fingerprint,
      gpgHome: trusted.home,
    });
    const source = await GitSource.mirror({
      url: remote.bare,
      branch: 'main',
      dir: join(stateDir, 'sig.git'),
    });
    await source.fetch();
    const verdict = await source.verifyCommit('main', { gpgHome: keyring });
    expect(verdict).toEqual({
      ok: true,
      reason: `commit ${signed.slice(0, 12)}: good signature by ${trusted.fingerprint}`,
      fingerprint: trusted.fingerprint,
    });
    expect(
      await source.verifyCommit('main', { gpgHome: keyring, allowedFingerprints: [stranger.fingerprint] }),
    ).toMatchObject({ ok: false, reason: /not one of the allowed fingerprints/ });
  });

  it.skipIf(skipSigned)('refuses a commit signed by a key outside the keyring', async () => {
    await remote.commit({}, 'signed by a stranger', {
      signingKey: stranger.fingerprint,
      gpgHome: stranger.home,
    });
    const source = await GitSource.open(remote.work);
    const verdict = await source.verifyCommit('HEAD', { gpgHome: keyring });
    expect(verdict.ok).toBe(false);
    expect(verdict.reason).toMatch(/not in the trusted keyring/);
  });
});
