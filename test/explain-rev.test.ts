import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import { type CliResult, git, uplinkCli as uplink } from './uplink-cli.js';

const ROOT = join(import.meta.dirname, '..');
const SITE_FILE = 'sites/branch-adsl-vpn.yaml';
const SMTP = [
  '--dst',
  '203.0.113.25',
  '--src',
  '172.20.2.50',
  '--iif',
  'lan0',
  '--proto',
  'tcp',
  '--dport',
  '25',
];

/** The SMTP policy of branch-adsl-vpn sent via `provider` instead of isp1. */
async function routeSmtpVia(repo: string, provider: string): Promise<void> {
  const path = join(repo, SITE_FILE);
  const text = await readFile(path, 'utf8');
  const edited = text.replace(/(- name: smtp\n(?:\s+\w+: .*\n)*?\s+via: )\[[^\]]*\]/, `$1[${provider}]`);
  if (edited === text) throw new Error('the smtp policy was not found in the example site');
  await writeFile(path, edited);
}

describe('uplink explain --rev', () => {
  let dir: string;
  let repo: string;
  let first: string;
  let second: string;

  beforeAll(async () => {
    buildDist();
    dir = await mkdtemp(join(tmpdir(), 'uplink-explain-rev-'));
    repo = join(dir, 'fleet');
    await cp(join(ROOT, 'fleet-repo-example'), repo, { recursive: true });
    git(repo, 'init', '--quiet', '--initial-branch', 'main');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'smtp via isp1');
    first = git(repo, 'rev-parse', 'HEAD');
    await routeSmtpVia(repo, 'isp2');
    git(repo, 'commit', '--quiet', '-am', 'smtp via isp2');
    second = git(repo, 'rev-parse', 'HEAD');
    // Uncommitted: what the work tree says differs from both commits.
    await routeSmtpVia(repo, 'vpn');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const verdict = (r: CliResult) => r.stdout.split('\n')[0];

  it('answers from each commit, and from the work tree without --rev', async () => {
    const atFirst = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, '--rev', first, ...SMTP);
    expect(atFirst.stderr).toBe('');
    expect(atFirst.code).toBe(0);
    expect(verdict(atFirst)).toContain('leaves via isp1 (wan1)');
    expect(atFirst.stdout).toContain(`the spec as committed at ${first.slice(0, 12)} (--rev ${first})`);

    const atHead = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, '--rev', 'HEAD', ...SMTP);
    expect(atHead.code).toBe(0);
    expect(verdict(atHead)).toContain('leaves via isp2 (wan2)');
    expect(atHead.stdout).toContain(`the spec as committed at ${second.slice(0, 12)} (--rev HEAD)`);

    const byName = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, '--rev', 'main~1', ...SMTP);
    expect(verdict(byName)).toBe(verdict(atFirst));

    const workTree = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, ...SMTP);
    expect(workTree.code).toBe(0);
    expect(verdict(workTree)).toContain('leaves via vpn (tun0)');
    expect(workTree.stdout).not.toContain('the spec as committed at');
  });

  it('JSON output carries the revision note too', async () => {
    const r = await uplink(
      'explain',
      'branch-adsl-vpn',
      '--repo',
      repo,
      '--rev',
      first,
      ...SMTP,
      '--format',
      'json',
    );
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as { notes: string[] };
    expect(parsed.notes).toContain(`the spec as committed at ${first.slice(0, 12)} (--rev ${first})`);
  });

  it('an unknown revision is a usage error that names it', async () => {
    const r = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, '--rev', 'no-such-branch', ...SMTP);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^uplink: revision no-such-branch: not a commit in /);
  });

  it('a revision that looks like an option is refused', async () => {
    const r = await uplink('explain', 'branch-adsl-vpn', '--repo', repo, '--rev=--all', ...SMTP);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not a revision; write a commit id, branch or tag');
  });

  it('--rev refuses a directory inside a bigger repository (the fleet would be read from its root)', async () => {
    const r = await uplink(
      'explain',
      'branch-adsl-vpn',
      '--repo',
      join(repo, 'sites'),
      '--rev',
      'HEAD',
      ...SMTP,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is the subdirectory sites/ of a git repository');
  });

  it('--rev needs a git repository', async () => {
    const plain = await mkdtemp(join(tmpdir(), 'uplink-not-git-'));
    try {
      await cp(join(ROOT, 'fleet-repo-example'), plain, { recursive: true });
      const refused = await uplink('explain', 'branch-adsl-vpn', '--repo', plain, '--rev', 'HEAD', ...SMTP);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('not a git repository');
      expect(refused.stderr).toContain('pass --repo with a clone of the fleet repository');
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  });
});
