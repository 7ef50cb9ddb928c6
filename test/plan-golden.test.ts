/**
 * Golden `uplink plan` outputs for commit pairs in a real temporary git repository built
 * from fleet-repo-example: test/golden/plan/<case>/{plan.txt,plan.md,plan.json,exit-code}.
 * Commits carry fixed authors and dates, so their ids (and the goldens) are reproducible.
 * Regenerate after an intended change with `UPDATE_GOLDEN=1 npx vitest run test/plan-golden.test.ts`
 * and review the diff.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';

const GOLDEN = join(ROOT, 'test/golden/plan');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const FORMATS = { text: 'plan.txt', markdown: 'plan.md', json: 'plan.json' } as const;

let repo: string;
const commits: Record<string, string> = {};
let tick = 0;

function git(args: readonly string[]): string {
  tick++;
  const date = `2024-01-0${Math.min(tick, 9)}T12:00:${String(tick).padStart(2, '0')}Z`;
  const run = spawnSync('git', ['-c', 'commit.gpgsign=false', '-c', 'core.hooksPath=/dev/null', ...args], {
    cwd: repo,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: repo,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Fleet Admin',
      GIT_AUTHOR_EMAIL: 'admin@example.net',
      GIT_COMMITTER_NAME: 'Fleet Admin',
      GIT_COMMITTER_EMAIL: 'admin@example.net',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
    },
  });
  if (run.status !== 0) throw new Error(`git ${args.join(' ')}: ${run.stderr}`);
  return run.stdout.trim();
}

function edit(file: string, from: string | RegExp, to: string): void {
  const path = join(repo, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`${file}: ${String(from)} not found`);
  writeFileSync(path, next);
}

function commit(name: string, message: string): void {
  git(['add', '-A']);
  git(['commit', '-q', '--allow-empty', '-m', message]);
  commits[name] = git(['rev-parse', 'HEAD']);
}

/** base commit name, head commit name. */
const CASES = {
  'new-fleet': ['empty', 'example'],
  'no-change': ['example', 'comment-only'],
  'one-site-changed': ['comment-only', 'smtp-via-isp2'],
  'group-change': ['smtp-via-isp2', 'group-edit'],
  'invalid-head': ['group-edit', 'broken'],
  'canary-stand-in': ['group-edit', 'three-sites'],
} as const;

function plan(base: string, head: string, format: keyof typeof FORMATS) {
  const run = spawnSync(
    process.execPath,
    [
      join(ROOT, 'dist/uplink.mjs'),
      'plan',
      '--repo',
      repo,
      '--base',
      base,
      '--head',
      head,
      '--format',
      format,
    ],
    { encoding: 'utf8' },
  );
  return { stdout: run.stdout, stderr: run.stderr, code: run.status };
}

beforeAll(() => {
  buildDist();
  repo = mkdtempSync(join(tmpdir(), 'uplink-plan-golden-'));
  git(['init', '-q', '-b', 'main']);
  writeFileSync(join(repo, 'README.md'), 'fleet\n');
  commit('empty', 'start the repository');
  cpSync(join(ROOT, 'fleet-repo-example'), repo, { recursive: true });
  commit('example', 'the example fleet');
  edit('sites/home-pppoe.yaml', /^/, '# reviewed\n');
  commit('comment-only', 'a comment, no routing change');
  edit('sites/branch-adsl-vpn.yaml', /dport: 25\n(\s+)via: \[isp1\]/, 'dport: 25\n$1via: [isp2]');
  commit('smtp-via-isp2', 'branch-adsl-vpn: mail via isp2');
  edit('groups/base.yaml', 'net.ipv4.conf.all.rp_filter: 2', 'net.ipv4.conf.all.rp_filter: 1');
  edit('groups/dual-isp.yaml', /(- name: isp2[\s\S]*?)track: true/, '$1track: false');
  commit('group-edit', 'groups: strict rp_filter everywhere, no track on isp2');
  edit('sites/branch-adsl-vpn.yaml', /dport: 25\n(\s+)via: \[isp2\]/, 'dport: 25\n$1via: [isp3]');
  commit('broken', 'branch-adsl-vpn: a typo');
  edit('sites/branch-adsl-vpn.yaml', /dport: 25\n(\s+)via: \[isp3\]/, 'dport: 25\n$1via: [isp2]');
  for (const site of ['branch-adsl-vpn', 'dmz-redundant', 'home-pppoe'])
    edit(`sites/${site}.yaml`, /$/, 'sysctls:\n  net.ipv4.conf.all.log_martians: 1\n');
  commit('three-sites', 'log martians on three sites, no canary among them');
}, 120_000);

afterAll(() => {
  if (repo) rmSync(repo, { recursive: true, force: true });
});

describe('uplink plan golden outputs', () => {
  it.each(Object.keys(CASES))('%s', (name) => {
    const [base, head] = CASES[name as keyof typeof CASES];
    const dir = join(GOLDEN, name);
    if (UPDATE) mkdirSync(dir, { recursive: true });
    const codes = new Set<number | null>();
    for (const [format, file] of Object.entries(FORMATS)) {
      const out = plan(commits[base]!, commits[head]!, format as keyof typeof FORMATS);
      expect(out.stderr, `${name} ${format}`).toBe('');
      codes.add(out.code);
      if (UPDATE) writeFileSync(join(dir, file), out.stdout);
      expect(out.stdout, `${name}/${file} differs from the golden copy (UPDATE_GOLDEN=1 to accept)`).toBe(
        readFileSync(join(dir, file), 'utf8'),
      );
    }
    expect(codes.size, 'every format exits alike').toBe(1);
    const [code] = codes;
    if (UPDATE) writeFileSync(join(dir, 'exit-code'), `${code}\n`);
    expect(`${code}\n`).toBe(readFileSync(join(dir, 'exit-code'), 'utf8'));
  });

  it('the goldens say what each case is about', () => {
    const read = (name: string, file = 'plan.json') =>
      JSON.parse(readFileSync(join(GOLDEN, name, file), 'utf8')) as {
        summary: Record<string, number>;
        sites: { site: string; status: string; wave: string | null; moves: string[] }[];
      };
    expect(read('no-change').summary).toMatchObject({ changed: 0, added: 0, invalid: 0 });
    const exampleSites = readdirSync(join(import.meta.dirname, '../fleet-repo-example/sites')).length;
    expect(read('new-fleet').summary).toMatchObject({ added: exampleSites });
    const one = read('one-site-changed');
    expect(one.sites.filter((s) => s.status === 'changed').map((s) => s.site)).toEqual(['branch-adsl-vpn']);
    expect(one.sites.find((s) => s.site === 'branch-adsl-vpn')!.moves.join('\n')).toMatch(
      /policy smtp: isp1 \(wan1\) → isp2 \(wan2\)/,
    );
    // groups/base.yaml changes: every site extends it.
    expect(read('group-change').summary.changed).toBe(exampleSites);
    const broken = read('invalid-head');
    expect(broken.sites.find((s) => s.site === 'branch-adsl-vpn')!.status).toBe('invalid');
    expect(readFileSync(join(GOLDEN, 'invalid-head', 'exit-code'), 'utf8')).toBe('2\n');
    expect(readFileSync(join(GOLDEN, 'invalid-head', 'plan.txt'), 'utf8')).toMatch(
      /sites\/branch-adsl-vpn\.yaml:\d+:\d+: error: .*isp3/,
    );
    // No canary site changes: the first two changed sites stand in for the canary wave (D122).
    const standIn = read('canary-stand-in') as ReturnType<typeof read> & {
      rollout: { wave: string; sites: string[]; standInFrom: string | null }[];
    };
    expect(standIn.rollout).toEqual([
      { wave: 'canary', sites: ['branch-adsl-vpn', 'dmz-redundant'], standInFrom: 'early', bakeMs: 30_000 },
      { wave: 'rest', sites: ['home-pppoe'], standInFrom: null, bakeMs: 0 },
    ]);
    expect(readFileSync(join(GOLDEN, 'canary-stand-in', 'plan.txt'), 'utf8')).toContain(
      'rollout: canary [stand-in] (branch-adsl-vpn, dmz-redundant, bake 30s) → rest (home-pppoe)',
    );
  });

  it('a base that is not a commit is a usage error, not "every site is new"', () => {
    const out = plan('no-such-branch', commits.example!, 'text');
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(/revision no-such-branch: not a commit/);
  });
});
