/**
 * The fleet repository as the controller sees it: a bare mirror of one branch in the
 * controller's state dir, fetched on demand, from which any revision is read WITHOUT a
 * checkout (ls-tree + cat-file), so the daemon, `uplink rollout --rev` and
 * `uplink plan --base A --head B` compile any commit while a fetch may run.
 *
 * Why a bare mirror and not a clone with a working tree: nothing ever needs the files on
 * disk, a bare repo cannot be left half-checked-out by a crash, and fetching into
 * `refs/heads/<branch>` with `+` follows force-pushes exactly (the remote is the truth).
 * `GitSource.open` reads an existing repository (a working clone, bare or not) in place and
 * never fetches — for `uplink plan`/`rollout --repo DIR`.
 *
 * Porcelain-ish commands go through simple-git; `cat-file --batch` (stdin) and
 * `verify-commit` (exit code + gpg status on stderr) are spawned directly with an argument
 * array, because simple-git neither writes stdin nor reports an exit code with empty stderr.
 * Calls on one GitSource are not meant to overlap with `fetch`; the daemon serialises them.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { type SimpleGit, simpleGit } from 'simple-git';
import { UplinkError, UsageError } from '../errors.js';
import { parseCatFileBatch, parseLsTree, selectFleetEntries } from './fleet-tree.js';
import { readSignatureStatus, type SignatureVerdict } from './signature-status.js';

export interface GitMirrorOptions {
  /** Repository URL (https://, ssh://, user@host:path) or local path (relative to the cwd). */
  readonly url: string;
  readonly branch: string;
  /** Directory of the bare mirror, e.g. `<stateDir>/fleet.git`; created when missing. */
  readonly dir: string;
  /** Extra environment for git, e.g. GIT_SSH_COMMAND with a deploy key. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface VerifyCommitOptions {
  /** GNUPGHOME holding the trusted public keys (the keyring is the policy); default gpg's own. */
  readonly gpgHome?: string;
  /** Narrow further: only signatures by these (primary or signing) key fingerprints pass. */
  readonly allowedFingerprints?: readonly string[];
}

export type { SignatureVerdict } from './signature-status.js';

const FLEET_PATHSPECS = ['fleet.yaml', 'fleet.yml', 'groups', 'sites'];
const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

export class GitSource {
  private constructor(
    /** Repository directory (the bare mirror, or the opened repository). */
    readonly dir: string,
    /** The ref `headCommit` reads: `refs/heads/<branch>` in a mirror, `HEAD` (or the given ref) when opened. */
    readonly headRef: string,
    private readonly git: SimpleGit,
    private readonly env: NodeJS.ProcessEnv,
    private readonly remote?: { readonly url: string; readonly branch: string },
  ) {}

  /** Creates (or reuses) the bare mirror of `branch` of `url` in `dir`. Does not fetch. */
  static async mirror(options: GitMirrorOptions): Promise<GitSource> {
    const branch = checkBranchName(options.branch);
    const url = isUrl(options.url) ? options.url : resolve(options.url);
    const dir = resolve(options.dir);
    const env = gitEnv(options.env);
    await mkdir(dir, { recursive: true });
    const git = openGit(dir, env);
    try {
      if (!existsSync(join(dir, 'HEAD'))) await git.raw(['init', '--quiet', '--bare']);
      await git.raw(['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
      const remotes = await git.getRemotes(true);
      const origin = remotes.find((r) => r.name === 'origin');
      if (!origin) await git.raw(['remote', 'add', 'origin', url]);
      else if (origin.refs.fetch !== url) await git.raw(['remote', 'set-url', 'origin', url]);
    } catch (e) {
      throw new UplinkError('failed', `${dir}: cannot prepare the fleet repository mirror: ${message(e)}`);
    }
    return new GitSource(dir, `refs/heads/${branch}`, git, env, { url, branch });
  }

  /** Reads an existing repository in place (working clone or bare); `fetch` is a no-op. */
  static async open(
    repoDir: string,
    options: { ref?: string; env?: Record<string, string> } = {},
  ): Promise<GitSource> {
    const dir = resolve(repoDir);
    const env = gitEnv(options.env);
    const git = openGit(dir, env);
    try {
      await git.raw(['rev-parse', '--git-dir']);
    } catch (e) {
      throw new UsageError(
        `${dir}: not a git repository (${message(e)}); pass --repo with a clone of the fleet repository`,
      );
    }
    return new GitSource(dir, options.ref ?? 'HEAD', git, env);
  }

  /** Fetches the branch (and tags) from the remote; returns the branch's commit. */
  async fetch(): Promise<string> {
    if (this.remote) {
      const { url, branch } = this.remote;
      try {
        await this.git.raw([
          'fetch',
          '--quiet',
          '--no-tags',
          '--force',
          'origin',
          `+refs/heads/${branch}:refs/heads/${branch}`,
          '+refs/tags/*:refs/tags/*',
        ]);
      } catch (e) {
        const text = message(e);
        const missing = /couldn't find remote ref/i.test(text);
        throw new UplinkError(
          missing ? 'usage' : 'transport',
          missing
            ? `${url}: branch ${branch} does not exist; push it or configure the branch the fleet lives on`
            : `${url}: fetching ${branch} failed: ${text}`,
          !missing,
        );
      }
    }
    return this.headCommit();
  }

  /** The commit the branch (or the opened ref) points at now. */
  async headCommit(): Promise<string> {
    try {
      return await this.resolveRev(this.headRef);
    } catch (e) {
      if (this.remote && e instanceof UplinkError && e.kind === 'usage') {
        throw new UplinkError(
          'usage',
          `${this.remote.url}: nothing fetched of ${this.remote.branch} yet; fetch first`,
        );
      }
      throw e;
    }
  }

  /** Full commit id of `rev` (a sha, a prefix, a branch or tag name, `HEAD~2`, …). */
  async resolveRev(rev: string): Promise<string> {
    if (rev === '' || rev.startsWith('-') || /[\s\0]/.test(rev)) {
      throw new UsageError(
        `revision ${JSON.stringify(rev)}: not a revision; write a commit id, branch or tag`,
      );
    }
    let out: string;
    try {
      out = (await this.git.raw(['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`])).trim();
    } catch (e) {
      throw new UsageError(`revision ${rev}: not a commit in ${this.dir} (${firstLine(message(e))})`);
    }
    if (!SHA.test(out)) throw new UsageError(`revision ${rev}: not a commit in ${this.dir}`);
    return out;
  }

  /**
   * fleet.yaml, groups/*.yaml and sites/*.yaml as they are at `rev`: path → text, ready for
   * loadFleet. Reads objects only; nothing is checked out.
   */
  async readFleetFilesAt(rev: string): Promise<Map<string, string>> {
    const commit = await this.resolveRev(rev);
    let listing: string;
    try {
      listing = await this.git.raw(['ls-tree', '-r', '-z', '--full-tree', commit, '--', ...FLEET_PATHSPECS]);
    } catch (e) {
      throw new UplinkError('failed', `commit ${commit}: cannot list its files: ${message(e)}`);
    }
    const entries = selectFleetEntries(parseLsTree(listing)).sort((a, b) => a.path.localeCompare(b.path));
    const objects = [...new Set(entries.map((e) => e.object))];
    const files = new Map<string, string>();
    if (objects.length === 0) return files;
    const run = await this.run(['cat-file', '--batch'], `${objects.join('\n')}\n`);
    if (run.code !== 0)
      throw new UplinkError('failed', `commit ${commit}: git cat-file failed: ${run.stderr.trim()}`);
    const blobs = parseCatFileBatch(run.stdout, objects);
    const decoder = new TextDecoder('utf-8');
    for (const e of entries) files.set(e.path, decoder.decode(blobs.get(e.object)!));
    return files;
  }

  /**
   * Checks the commit's signature with `git verify-commit`. Never throws for a bad or
   * missing signature: the verdict says why, for status and logs.
   */
  async verifyCommit(rev: string, options: VerifyCommitOptions = {}): Promise<SignatureVerdict> {
    const commit = await this.resolveRev(rev);
    const env = options.gpgHome ? { ...this.env, GNUPGHOME: resolve(options.gpgHome) } : this.env;
    const run = await this.run(['verify-commit', '--raw', commit], undefined, env);
    if (
      /cannot run gpg|gpg failed|No such file or directory/i.test(run.stderr) &&
      !run.stderr.includes('[GNUPG:]')
    ) {
      return {
        ok: false,
        reason: `commit ${commit.slice(0, 12)}: cannot check the signature: ${firstLine(run.stderr)}`,
      };
    }
    return readSignatureStatus(commit, run.code, run.stderr, options.allowedFingerprints);
  }

  private run(
    args: string[],
    input?: string,
    env: NodeJS.ProcessEnv = this.env,
  ): Promise<{ code: number; stdout: Buffer; stderr: string }> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn('git', args, { cwd: this.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) =>
        reject(new UplinkError('failed', `git ${args[0]}: cannot run git: ${e.message}`)),
      );
      child.on('close', (code) =>
        resolvePromise({
          code: code ?? 1,
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err).toString('utf8'),
        }),
      );
      child.stdin.on('error', () => {}); // an early exit is reported through the exit code
      child.stdin.end(input ?? '');
    });
  }
}

/**
 * Variables naming programs that none of our git commands needs (editors, pagers, askpass,
 * external diff); dropped so a stray one can neither run nor trip simple-git's guard.
 */
const UNNEEDED_ENV = [
  'EDITOR',
  'VISUAL',
  'GIT_EDITOR',
  'GIT_SEQUENCE_EDITOR',
  'PAGER',
  'GIT_PAGER',
  'GIT_ASKPASS',
  'SSH_ASKPASS',
  'GIT_EXTERNAL_DIFF',
];

function gitEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of UNNEEDED_ENV) delete env[key];
  // Never wait for a password prompt in a daemon; fail and report instead.
  return { ...env, GIT_TERMINAL_PROMPT: '0', ...extra };
}

/**
 * The environment is the operator's (GIT_SSH_COMMAND with a deploy key, GIT_CONFIG_* in CI),
 * so it is trusted; every argument is ours. simple-git guards against untrusted input, which
 * we do not pass it.
 */
function openGit(baseDir: string, env: NodeJS.ProcessEnv): SimpleGit {
  return simpleGit({
    baseDir,
    allowEnvironment: Object.keys(env),
    unsafe: {
      allowUnsafeSshCommand: true,
      allowUnsafeConfigPaths: true,
      allowUnsafeConfigEnvCount: true,
      allowUnsafeGitProxy: true,
    },
  }).env(env);
}

function checkBranchName(branch: string): string {
  if (
    !/^[A-Za-z0-9._/-]+$/.test(branch) ||
    branch.startsWith('-') ||
    branch.includes('..') ||
    branch.endsWith('/')
  ) {
    throw new UsageError(`branch ${JSON.stringify(branch)}: not a branch name; write e.g. main`);
  }
  return branch;
}

/** URL or scp-like address (user@host:path); anything else is a local path. */
function isUrl(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || (!isAbsolute(url) && /^[^/:]+@[^/:]+:/.test(url));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message.trim() : String(e);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
