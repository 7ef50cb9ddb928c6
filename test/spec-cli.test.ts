import { readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import { uplinkCli as uplink } from './uplink-cli.js';

/** The example fleet's sites, sorted: what validate reports and compile lists. */
const EXAMPLE_SITES = readdirSync(join(import.meta.dirname, '../fleet-repo-example/sites'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();

const ROOT = join(import.meta.dirname, '..');
const EXAMPLE = join(ROOT, 'fleet-repo-example');

let temp: string;

beforeAll(async () => {
  buildDist();
  temp = await mkdtemp(join(tmpdir(), 'uplink-spec-cli-'));
});

afterAll(async () => {
  if (temp) await rm(temp, { recursive: true, force: true });
});

describe('uplink validate', () => {
  it('accepts the example fleet', async () => {
    const r = await uplink('validate', '--repo', 'fleet-repo-example');
    expect(r).toEqual({ code: 0, stdout: `fleet valid: ${EXAMPLE_SITES.length} sites\n`, stderr: '' });
  });

  it('rejects a typo with its location and a suggestion', async () => {
    const repo = join(temp, 'typo');
    await cp(EXAMPLE, repo, { recursive: true });
    const file = join(repo, 'sites/branch-adsl-vpn.yaml');
    const text = await readFile(file, 'utf8');
    expect(text).toContain('    gateway: 198.51.100.5\n');
    await writeFile(file, text.replace('    gateway: 198.51.100.5\n', '    gatway: 198.51.100.5\n'));

    const r = await uplink('validate', '--repo', repo);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      [
        'sites/branch-adsl-vpn.yaml:22:5: error: providers[1].gatway: unknown key "gatway"; did you mean "gateway"?',
        'fleet invalid: 1 error(s), 0 warning(s)',
        '',
      ].join('\n'),
    );

    const json = await uplink('validate', '--repo', repo, '--format', 'json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { valid: boolean; sites: string[]; diagnostics: unknown[] };
    expect(report.valid).toBe(false);
    expect(report.sites).toEqual(EXAMPLE_SITES.filter((site) => site !== 'branch-adsl-vpn'));
    expect(report.diagnostics).toEqual([
      {
        severity: 'error',
        file: 'sites/branch-adsl-vpn.yaml',
        line: 22,
        col: 5,
        path: 'providers[1].gatway',
        message: 'providers[1].gatway: unknown key "gatway"; did you mean "gateway"?',
      },
    ]);
  });

  it('--format json on a valid fleet', async () => {
    const r = await uplink('validate', '--repo', 'fleet-repo-example', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      sites: EXAMPLE_SITES,
      diagnostics: [],
    });
  });

  it('a missing repository is a usage error', async () => {
    const r = await uplink('validate', '--repo', join(temp, 'does-not-exist'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read the fleet repository');
  });
});

describe('uplink compile', () => {
  it('--format script prints the golden script', async () => {
    const r = await uplink('compile', 'home-pppoe', '--repo', 'fleet-repo-example', '--format', 'script');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(await readFile(join(ROOT, 'test/golden/compile/home-pppoe/script.sh'), 'utf8'));
  });

  it('--format json (the default) prints the golden desired state', async () => {
    const r = await uplink('compile', 'shorewall-style', '--repo', 'fleet-repo-example');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      await readFile(join(ROOT, 'test/golden/compile/shorewall-style/desired.json'), 'utf8'),
    );
  });

  it('an unknown site is a usage error that lists the known ones', async () => {
    const r = await uplink('compile', 'atlantis', '--repo', 'fleet-repo-example');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `uplink: site atlantis: not found in fleet-repo-example; known sites: ${EXAMPLE_SITES.join(', ')}\n`,
    );
  });

  it('an invalid site prints its own diagnostics and exits 1', async () => {
    const repo = join(temp, 'invalid-site');
    await cp(EXAMPLE, repo, { recursive: true });
    const file = join(repo, 'sites/home-pppoe.yaml');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('uid: 108', 'uid: 108\n    traffic: forwarded'),
    );
    const r = await uplink('compile', 'home-pppoe', '--repo', repo);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'sites/home-pppoe.yaml:32:10: error: policies p2p-user: uid only matches traffic the router itself sends; remove uid or use traffic: local\n',
    );
  });

  it('a bad --format is a usage error', async () => {
    const r = await uplink('compile', 'home-pppoe', '--repo', 'fleet-repo-example', '--format', 'yaml');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'yaml' is invalid");
  });
});

describe('uplink --help', () => {
  it('exits 0 and names the commands', async () => {
    const r = await uplink('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: uplink');
    expect(r.stdout).toMatch(/validate \[options\]/);
    expect(r.stdout).toMatch(/compile \[options\] <site>/);
  });

  it('compile --help exits 0', async () => {
    const r = await uplink('compile', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--format <format>');
  });
});
