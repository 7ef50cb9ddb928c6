/**
 * Real temporary git repositories for tests: a bare "remote" and a working clone that
 * commits and pushes, as a fleet operator would. Optional throwaway GPG keys for
 * signed-commit tests. Git runs with the user's and system config switched off.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const GIT_TEST_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Fleet Operator',
  GIT_AUTHOR_EMAIL: 'ops@example.org',
  GIT_COMMITTER_NAME: 'Fleet Operator',
  GIT_COMMITTER_EMAIL: 'ops@example.org',
};

export async function git(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv = GIT_TEST_ENV,
): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export interface CommitOptions {
  /** Sign with this key (fingerprint) from `gpgHome`. */
  readonly signingKey?: string;
  readonly gpgHome?: string;
  /** Push after committing (default true). */
  readonly push?: boolean;
}

export interface FleetRemote {
  /** Temporary directory holding everything; removed by cleanup. */
  readonly root: string;
  /** The bare repository: the URL/path the controller fetches from. */
  readonly bare: string;
  /** The operator's working clone. */
  readonly work: string;
  readonly branch: string;
  /** Writes (string) or deletes (null) files, commits them all, pushes; returns the commit id. */
  commit(
    files: Readonly<Record<string, string | null>>,
    message: string,
    options?: CommitOptions,
  ): Promise<string>;
  cleanup(): Promise<void>;
}

export async function createFleetRemote(branch = 'main'): Promise<FleetRemote> {
  const root = await mkdtemp(join(tmpdir(), 'uplink-git-'));
  const bare = join(root, 'remote.git');
  const work = join(root, 'work');
  await git(root, ['init', '--quiet', '--bare', '--initial-branch', branch, bare]);
  await git(root, ['init', '--quiet', '--initial-branch', branch, work]);
  await git(work, ['remote', 'add', 'origin', bare]);
  return {
    root,
    bare,
    work,
    branch,
    async commit(files, message, options = {}) {
      for (const [path, text] of Object.entries(files)) {
        const file = join(work, path);
        if (text === null) await rm(file, { force: true });
        else {
          await mkdir(dirname(file), { recursive: true });
          await writeFile(file, text);
        }
      }
      await git(work, ['add', '--all']);
      const sign = options.signingKey ? [`--gpg-sign=${options.signingKey}`] : ['--no-gpg-sign'];
      const env = options.gpgHome ? { ...GIT_TEST_ENV, GNUPGHOME: options.gpgHome } : GIT_TEST_ENV;
      await git(work, ['commit', '--quiet', '--allow-empty', ...sign, '-m', message], env);
      if (options.push !== false) await git(work, ['push', '--quiet', '--force', 'origin', `HEAD:${branch}`]);
      return git(work, ['rev-parse', 'HEAD']);
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export async function hasGpg(): Promise<boolean> {
  try {
    await run('gpg', ['--version']);
    return true;
  } catch {
    return false;
  }
}

export interface GpgKey {
  readonly home: string;
  readonly fingerprint: string;
  /** ASCII-armoured public key, to import into a verifier's keyring. */
  readonly publicKey: string;
}

/** A throwaway, passphrase-less ed25519 signing key in its own GNUPGHOME under `root`. */
export async function createGpgKey(root: string, name: string): Promise<GpgKey> {
  const home = await mkdtemp(join(root, 'gpg-'));
  const env = { ...process.env, GNUPGHOME: home };
  await run(
    'gpg',
    [
      '--batch',
      '--passphrase',
      '',
      '--quick-gen-key',
      `${name} <${name}@example.org>`,
      'ed25519',
      'sign',
      'never',
    ],
    { env },
  );
  const { stdout } = await run('gpg', ['--batch', '--with-colons', '--list-keys'], { env });
  const fingerprint = stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))
    ?.split(':')[9];
  if (!fingerprint) throw new Error(`gpg: no fingerprint for the key just made in ${home}`);
  const exported = await run('gpg', ['--batch', '--armor', '--export', fingerprint], { env });
  return { home, fingerprint, publicKey: exported.stdout };
}

/** A GNUPGHOME holding only the given public keys: the verifier's keyring. */
export async function createKeyring(root: string, publicKeys: readonly string[]): Promise<string> {
  const home = await mkdtemp(join(root, 'keyring-'));
  for (const [i, key] of publicKeys.entries()) {
    const file = join(home, `key-${i}.asc`);
    await writeFile(file, key);
    await run('gpg', ['--batch', '--import', file], { env: { ...process.env, GNUPGHOME: home } });
  }
  return home;
}

/** Stops the gpg-agent a GNUPGHOME started (it would outlive the test otherwise). */
export async function stopGpgAgent(home: string): Promise<void> {
  await run('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => {});
}
