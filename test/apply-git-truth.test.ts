/**
 * Git is the truth for `uplink apply` (specOrigin, on real git repositories): a clean work
 * tree whose HEAD is on the branch as pushed is git's truth; uncommitted edits to the fleet
 * files, a commit not pushed, a commit of another branch and a directory outside git are not
 * (each said in words), and the built CLI refuses them without --break-glass.
 */
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specOrigin } from '../controller/src/commands/apply-command.js';
import { buildDist, ROOT } from './build-dist.js';
import { git, uplinkCli } from './uplink-cli.js';

let dir: string;
let clone: string;

beforeAll(() => {
  buildDist();
  dir = mkdtempSync(join(tmpdir(), 'uplink-git-truth-'));
  const bare = join(dir, 'fleet.git');
  git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
  const seed = join(dir, 'seed');
  cpSync(join(ROOT, 'fleet-repo-example'), seed, { recursive: true });
  git(seed, 'init', '-q', '-b', 'main');
  git(seed, 'add', '-A');
  git(seed, 'commit', '-qm', 'the fleet');
  git(seed, 'push', '-q', bare, 'main');
  clone = join(dir, 'clone');
  git(dir, 'clone', '-q', bare, clone);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('specOrigin', () => {
  it('a clean work tree on origin/main is git’s truth', async () => {
    const head = git(clone, 'rev-parse', 'HEAD');
    expect(await specOrigin(clone, 'main', undefined)).toEqual({ base: head.slice(0, 12), problems: [] });
  });

  it('uncommitted edits to the fleet files (not other files) are not', async () => {
    writeFileSync(join(clone, 'NOTES.txt'), 'not a fleet file\n');
    expect((await specOrigin(clone, 'main', undefined)).problems).toEqual([]);
    appendFileSync(join(clone, 'sites', 'home-pppoe.yaml'), '# edited\n');
    const o = await specOrigin(clone, 'main', undefined);
    expect(o.base).toMatch(/^[0-9a-f]{12}\+dirty$/);
    expect(o.problems).toEqual(['the work tree has uncommitted changes (sites/home-pppoe.yaml)']);
    const r = await uplinkCli('apply', 'home-pppoe', '--repo', clone, '--identity', '/nonexistent');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^uplink: apply refused: git is the truth, and the work tree has uncommitted changes/,
    );
    git(clone, 'checkout', '--', 'sites/home-pppoe.yaml');
  });

  it('a commit not pushed, or of another branch, is not on the branch', async () => {
    appendFileSync(join(clone, 'sites', 'home-pppoe.yaml'), '# committed, not pushed\n');
    git(clone, 'commit', '-qam', 'local only');
    const local = await specOrigin(clone, 'main', undefined);
    expect(local.problems).toEqual([
      `commit ${git(clone, 'rev-parse', 'HEAD').slice(0, 12)} is not on origin/main (not pushed?)`,
    ]);
    git(clone, 'push', '-q', 'origin', 'main');
    expect((await specOrigin(clone, 'main', undefined)).problems).toEqual([]);
    git(clone, 'checkout', '-q', '-b', 'experiment');
    appendFileSync(join(clone, 'sites', 'home-pppoe.yaml'), '# on a branch\n');
    git(clone, 'commit', '-qam', 'experiment');
    const other = git(clone, 'rev-parse', 'HEAD');
    expect((await specOrigin(clone, 'main', other)).problems).toEqual([
      `commit ${other.slice(0, 12)} is not on origin/main (not pushed?)`,
    ]);
    expect((await specOrigin(clone, 'release', other)).problems).toEqual([
      'there is no branch release here (set it with --branch or UPLINK_BRANCH)',
    ]);
    git(clone, 'checkout', '-q', 'main');
  });

  it('a directory outside git is not', async () => {
    const plain = join(dir, 'plain');
    cpSync(join(ROOT, 'fleet-repo-example'), plain, { recursive: true });
    expect(await specOrigin(plain, 'main', undefined)).toEqual({
      base: 'local',
      problems: [`${plain} is not a git repository`],
    });
  });
});
