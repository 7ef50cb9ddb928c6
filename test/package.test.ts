/**
 * The installable package (scripts/pack.mjs → dist/uplink-VERSION.tgz), installed the way a
 * user installs it — `npm install -g ./uplink-VERSION.tgz`, offline, into an empty prefix —
 * and run from outside the checkout with a bare environment (only the prefix's bin, /usr/bin
 * and /bin on PATH; a fresh HOME): `uplink` and `uplink-agent` are on PATH, need nothing from
 * the checkout or the network, and the controller daemon starts, serves its page, API and
 * metrics, and stops on SIGTERM.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './build-dist.js';
import { createFleetRemote, type FleetRemote } from './git/fleet-remote.js';
import { smallFleetFiles } from './git/small-fleet.js';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
let prefix: string;
let tarball: string;
let env: NodeJS.ProcessEnv;

function sh(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    return {
      code: 0,
      out: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options }),
    };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'uplink-package-'));
  tarball = execFileSync(process.execPath, ['scripts/pack.mjs'], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .at(-1)!;
  prefix = join(dir, 'prefix');
  const install = sh(
    'npm',
    ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball],
    {
      cwd: dir,
    },
  );
  if (install.code !== 0) throw new Error(`npm install -g failed:\n${install.out}`);
  env = { PATH: `${join(prefix, 'bin')}:/usr/bin:/bin`, HOME: join(dir, 'home'), LANG: 'C.UTF-8' };
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the npm package', () => {
  it('is small and self-contained: no dependencies, no node_modules, nothing from the checkout', () => {
    expect(statSync(tarball).size).toBeLessThan(5 * 1024 * 1024);
    const installed = join(prefix, 'lib', 'node_modules', 'uplink');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.bin).toEqual({ uplink: 'dist/uplink.mjs', 'uplink-agent': 'dist/uplink-agent.mjs' });
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'deploy', 'dist', 'package.json']);
    expect(readdirSync(join(installed, 'deploy')).sort()).toEqual([
      'agent',
      'ci',
      'controller',
      'prometheus',
    ]);
    expect(readFileSync(join(installed, 'dist', 'uplink.mjs'), 'utf8')).not.toContain(ROOT);
  });

  it('puts uplink and uplink-agent on PATH; they run from anywhere', () => {
    const fleet = join(dir, 'fleet');
    cpSync(join(ROOT, 'fleet-repo-example'), fleet, { recursive: true });
    expect(sh('uplink', ['--version'], { cwd: dir, env }).out.trim()).toBe(VERSION);
    const valid = sh('uplink', ['validate', '--repo', 'fleet'], { cwd: dir, env });
    const sites = readdirSync(join(fleet, 'sites')).length;
    expect(valid).toEqual({ code: 0, out: `fleet valid: ${sites} sites\n` });
    const script = sh('uplink', ['compile', 'branch-adsl-vpn', '-o', 'script'], { cwd: fleet, env });
    expect(script.code).toBe(0);
    expect(script.out).toMatch(/^#!\/bin\/sh\n# Uplink desired state for site branch-adsl-vpn/);
    expect(sh('uplink-agent', ['--help'], { cwd: dir, env }).out).toContain('Uplink agent');
    // The defaults file works for an installed uplink too.
    writeFileSync(join(dir, 'defaults.yaml'), `repo: ${fleet}\n`);
    const typo = sh('uplink', ['compile', 'home-ppoe'], {
      cwd: dir,
      env: { ...env, UPLINK_CONFIG: join(dir, 'defaults.yaml') },
    });
    expect(typo).toEqual({
      code: 2,
      out: 'uplink: site home-ppoe: not found in ' + fleet + '; did you mean home-pppoe?\n',
    });
  });

  describe('the installed controller daemon', () => {
    let remote: FleetRemote;
    beforeAll(async () => {
      remote = await createFleetRemote();
      // One site whose management address is a closed port on loopback: it is tried and refused.
      const files = smallFleetFiles({
        sites: [{ name: 'solo', address: '127.0.0.1', hostKey: HOST_KEY }],
        version: 1,
      });
      files['sites/solo.yaml'] = files['sites/solo.yaml']!.replace(
        '  user: root\n',
        '  user: root\n  port: 1\n',
      );
      files['fleet.yaml'] = 'rollout:\n  confirmWithin: 10s\n  waves:\n    - name: all\n';
      await remote.commit(files, 'one site');
    });
    afterAll(() => remote?.cleanup());

    it('starts, serves the page, /api/status and /metrics, and stops on SIGTERM', async () => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_ed25519')]);
      const config = join(dir, 'controller.yaml');
      writeFileSync(
        config,
        `repo: { url: ${remote.bare}, branch: ${remote.branch}, pollInterval: 1h }\nssh: { identity: ${join(dir, 'id_ed25519')}, connectTimeout: 2s }\nhttp: { listen: 127.0.0.1:0 }\nstateDir: ${join(dir, 'state')}\nstatus: { pollInterval: 1h }\n`,
      );
      const child = spawn('uplink', ['run', '--config', config], {
        cwd: dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      child.stdout.on('data', (d: Buffer) => {
        log += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        log += d.toString();
      });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no "listening" line:\n${log}`)), 30_000);
          const check = () => {
            const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
            if (m) {
              clearTimeout(t);
              resolve(m[1]!);
            } else setTimeout(check, 100);
          };
          check();
        });
        let status = (await (await fetch(`${url}/api/status`)).json()) as {
          target: { commit: string } | null;
          sites: { name: string; state: string }[];
        };
        for (
          let i = 0;
          i < 100 && status.sites[0]?.state !== 'failed' && status.sites[0]?.state !== 'unreachable';
          i++
        ) {
          await new Promise((r) => setTimeout(r, 200));
          status = (await (await fetch(`${url}/api/status`)).json()) as typeof status;
        }
        expect(status.target?.commit, log).toMatch(/^[0-9a-f]{40}$/);
        expect(status.sites.map((s) => s.name)).toEqual(['solo']);
        expect(['unreachable', 'failed']).toContain(status.sites[0]!.state);
        expect(await (await fetch(`${url}/`)).text()).toContain('<tr data-site="solo">');
        expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^uplink_sites\{state="in-sync"\} 0$/m);
      } finally {
        child.kill('SIGTERM');
        const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
        expect(code, log).toBe(0);
      }
    }, 90_000);
  });
});
