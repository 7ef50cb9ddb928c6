/**
 * `uplink status` (the built CLI) over a controller state dir: exit 0 only when every site
 * is in sync and nothing else needs attention, 1 for each site state and each fleet problem
 * (halted rollout, refused commit, suspension, failing fetch), 2 for usage errors; the text,
 * wide and json views count the same; `status SITE` with its timeline and "did you mean";
 * `suspend`, `resume`, `retry` write the control files; the defaults file and environment
 * make the flags unnecessary (`uplink config` says where each default came from).
 */

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSiteDetail, ApiStatus } from '../controller/src/http/api-status.js';
import { SITE_STATES, type SiteState } from '../controller/src/report/site-state.js';
import {
  CONTROLLER_STATE_FILE,
  emptyControllerState,
  writeControllerState,
} from '../controller/src/state/index.js';
import { buildDist, ROOT } from './build-dist.js';
import { FIXTURE_COMMIT, statusWithSites } from './support/status-fixtures.js';

const run = promisify(execFile);
let dir: string;
/** A clean environment: no defaults file of the machine's user. */
let env: NodeJS.ProcessEnv;

async function uplink(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'dist/uplink.mjs'), ...args], {
      cwd: dir,
      env: { ...env, ...extraEnv },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function stateDirWith(name: string, status: ApiStatus): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'status.json'), JSON.stringify(status));
  return d;
}

beforeAll(async () => {
  buildDist();
  dir = mkdtempSync(join(tmpdir(), 'uplink-status-cli-'));
  env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'xdg') };
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('uplink status exit codes', () => {
  it.each(SITE_STATES)('a site %s: exit 0 only when in-sync', async (state: SiteState) => {
    const d = stateDirWith(`one-${state}`, statusWithSites(['in-sync', state]));
    const r = await uplink(['status', '--state-dir', d]);
    expect(r.code, r.stdout + r.stderr).toBe(state === 'in-sync' ? 0 : 1);
    expect(r.stdout).toMatch(new RegExp(`^${state}\\s+${state}`, 'm'));
    if (state !== 'in-sync')
      expect(r.stdout).toMatch(new RegExp(`needs attention \\(1\\):\\n  ${state}: ${state}: `));
    const one = await uplink(['status', state, '--state-dir', d]);
    expect(one.code).toBe(state === 'in-sync' ? 0 : 1);
    expect(one.stdout).toMatch(new RegExp(`^state:\\s+${state}`, 'm'));
  });

  it.each([
    [
      'a halted rollout',
      (s: ReturnType<typeof emptyControllerState>) => ({
        ...s,
        rollout: {
          plan: {
            commit: FIXTURE_COMMIT,
            waves: [],
            unchanged: [],
            rollbackOnFailure: false,
            confirmWithinMs: 1000,
            siteTimeoutMs: 1000,
          },
          waveIndex: 0,
          perSite: [],
          phase: 'halted' as const,
          halt: { wave: 'canary', reason: 'wave canary: 1 site(s) failed', failed: ['x'] },
        },
      }),
      /rollout of abc123def456 halted: wave canary/,
    ],
    [
      'a refused commit',
      (s: ReturnType<typeof emptyControllerState>) => ({
        ...s,
        lastInvalidCommit: {
          commit: 'f'.repeat(40),
          at: 2,
          reason: 'invalid-spec' as const,
          message: '1 error',
          diagnostics: [],
        },
      }),
      /commit ffffffffffff refused \(invalid-spec\): 1 error/,
    ],
  ])('%s alone: exit 1, and said', async (_, extra, said) => {
    const d = stateDirWith(`fleet-${_.replace(/ /g, '-')}`, statusWithSites(['in-sync'], 5_000, extra));
    const r = await uplink(['status', '--state-dir', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(said);
  });

  it('usage: no controller named, an unknown site ("did you mean"), a bad -o', async () => {
    const none = await uplink(['status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/status: pass --config FILE or --state-dir DIR/);
    const d = stateDirWith('names', statusWithSites(['in-sync', 'degraded']));
    const typo = await uplink(['status', 'degradde', '--state-dir', d]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe('uplink: site degradde: not found; did you mean degraded?\n');
    const bad = await uplink(['status', '-o', 'yaml', '--state-dir', d]);
    expect(bad.code).toBe(2);
  });

  it('text, wide and json count the same sites per state', async () => {
    const states: SiteState[] = [
      'in-sync',
      'drifted',
      'degraded',
      'overridden',
      'out-of-date',
      'unreachable',
    ];
    const doc = statusWithSites(states);
    const d = stateDirWith('views', doc);
    const json = JSON.parse((await uplink(['status', '-o', 'json', '--state-dir', d])).stdout) as ApiStatus;
    expect(json.summary).toEqual(doc.summary);
    const text = (await uplink(['status', '--state-dir', d])).stdout;
    const wide = (await uplink(['status', '-o', 'wide', '--state-dir', d])).stdout;
    for (const view of [text, wide]) {
      const counted = /^sites:\s+(\d+) \((.*)\)$/m.exec(view)!;
      expect(Number(counted[1])).toBe(states.length);
      const parts = Object.fromEntries(counted[2]!.split(', ').map((p) => p.split(' ').reverse()));
      expect(parts).toEqual(Object.fromEntries(states.map((s) => [s, '1'])));
    }
    expect(wide).toMatch(/^SITE\s+STATE\s+RUNS\s+WAVE\s+PROVIDERS\s+DRIFT\s+LAST SEEN\s+NOTE$/m);
    expect(wide).toMatch(/^degraded\s+degraded\s+\S+\s+—\s+isp1:down —\/100%/m);
  });
});

describe('uplink status --watch', () => {
  it('prints a new view when the state changes, and exits with the last view’s code on Ctrl-C', async () => {
    const d = stateDirWith('watch', statusWithSites(['in-sync']));
    const child = spawn(
      process.execPath,
      [join(ROOT, 'dist/uplink.mjs'), 'status', '--watch', '--interval', '200ms', '--state-dir', d],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const views = () => out.split(/^target:/m).length - 1;
    const waitFor = async (n: number) => {
      for (let i = 0; i < 100 && views() < n; i++) await new Promise((r) => setTimeout(r, 100));
    };
    await waitFor(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(views()).toBe(1); // nothing changed: not printed again
    writeFileSync(join(d, 'status.json'), JSON.stringify(statusWithSites(['in-sync', 'degraded'])));
    await waitFor(2);
    expect(views()).toBe(2);
    expect(out).toMatch(/needs attention \(1\):\n {2}degraded: degraded: provider isp1 down/);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
  });
});

describe('suspend, resume, retry and the defaults', () => {
  it('suspend and resume are persisted and shown; retry leaves a request for the daemon', async () => {
    const d = join(dir, 'control');
    mkdirSync(d, { recursive: true });
    await writeControllerState(join(d, CONTROLLER_STATE_FILE), emptyControllerState());
    const s = await uplink(['suspend', '--reason', 'maintenance window', '--state-dir', d], {
      UPLINK_ACTOR: 'ops@test',
    });
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(d, 'control.json'), 'utf8')).fleet).toMatchObject({
      by: 'ops@test',
      reason: 'maintenance window',
    });
    const shown = await uplink(['status', '--state-dir', d]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/^SUSPENDED: by ops@test at .*: maintenance window$/m);
    expect((await uplink(['retry', '--state-dir', d])).code).toBe(2);
    expect((await uplink(['resume', '--state-dir', d])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(d, 'control.json'), 'utf8')).fleet).toBeNull();
    const site = await uplink(['suspend', 'branch-1', '--reason', 'router swap', '--state-dir', d]);
    expect(site.code).toBe(0);
    expect(Object.keys(JSON.parse(readFileSync(join(d, 'control.json'), 'utf8')).sites)).toEqual([
      'branch-1',
    ]);
    expect((await uplink(['resume', 'branch-2', '--state-dir', d])).stderr).toMatch(
      /branch-2 is not suspended; suspended: branch-1/,
    );
    expect((await uplink(['retry', '--state-dir', d])).code).toBe(0);
    expect(existsSync(join(d, 'retry-request.json'))).toBe(true);
    expect((await uplink(['suspend', '--reason', 'x', '--state-dir', join(dir, 'nowhere')])).stderr).toMatch(
      /no controller state here/,
    );
  });

  it('the defaults file and the environment stand in for the flags; `uplink config` says where each came from', async () => {
    const d = stateDirWith('defaults', statusWithSites(['in-sync']));
    mkdirSync(join(dir, 'xdg', 'uplink'), { recursive: true });
    writeFileSync(
      join(dir, 'xdg', 'uplink', 'config.yaml'),
      `stateDir: ${d}\noutput: json\nrepo: ../fleet\n`,
    );
    try {
      const r = await uplink(['status']);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as ApiStatus).summary.sites).toBe(1);
      const text = await uplink(['status', '-o', 'text']);
      expect(text.stdout).toMatch(/^target:/);
      const shown = await uplink(['config', '-o', 'text'], { UPLINK_REPO: '/srv/fleet' });
      expect(shown.stdout).toMatch(/^repo\s+\/srv\/fleet\s+\(UPLINK_REPO\)$/m);
      expect(shown.stdout).toMatch(
        new RegExp(`^stateDir\\s+${d.replace(/[.]/g, '\\.')}\\s+\\(.*config\\.yaml:1:11\\)$`, 'm'),
      );
      writeFileSync(join(dir, 'xdg', 'uplink', 'config.yaml'), 'stateDir: [1]\nbogus: 2\n');
      const bad = await uplink(['status']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/config\.yaml:1:\d+: error/);
    } finally {
      rmSync(join(dir, 'xdg'), { recursive: true, force: true });
    }
  });

  it('status SITE shows its timeline from the state dir', async () => {
    const d = stateDirWith('timeline', statusWithSites(['degraded']));
    mkdirSync(join(d, 'timeline'), { recursive: true });
    writeFileSync(
      join(d, 'timeline', 'degraded.jsonl'),
      `${JSON.stringify({ at: 4_000, level: 'warn', kind: 'provider-down', provider: 'isp1', message: 'isp1 up → down: 3 failed rounds in a row (loss 100%, latency —)' })}\n`,
    );
    const r = await uplink(['status', 'degraded', '--state-dir', d]);
    expect(r.stdout).toMatch(
      /timeline \(1, newest last\):\n {2}1970-01-01T00:00:04Z {2}warn {2}provider-down {4}isp1 up → down/,
    );
    const json = JSON.parse(
      (await uplink(['status', 'degraded', '-o', 'json', '--state-dir', d])).stdout,
    ) as ApiSiteDetail;
    expect(json.timeline).toHaveLength(1);
    expect(json.site.conditions[0]!.state).toBe('degraded');
  });
});
