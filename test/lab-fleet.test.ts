/**
 * The fleet lab (test/lab/fleet-lab.ts) as `make demo` and the e2e tests use it: built from
 * fleet-repo-example, every router reachable over real SSH with the installed agent behind
 * the restricted key, the controller's `uplink apply` works against it, and `down` removes
 * every namespace, host link, process and file it created — also when run from another process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import { type FleetLab, listNamespaces, startFleetLab } from './lab/fleet-lab.js';
import type { FleetLabRecord } from './lab/fleet-lab-record.js';
import { isRecordedProcessAlive } from './lab/fleet-lab-record.js';
import { requireRoot } from './lab/index.js';

const hostLinks = () =>
  (
    JSON.parse(spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout) as { ifname: string }[]
  ).map((l) => l.ifname);

/** Asserts that nothing the record lists exists any more. */
function expectNothingLeft(record: FleetLabRecord): void {
  expect(record.namespaces.length).toBeGreaterThan(0);
  const namespaces = new Set(listNamespaces());
  expect(record.namespaces.filter((ns) => namespaces.has(ns))).toEqual([]);
  const links = new Set(hostLinks());
  expect(record.hostLinks.filter((l) => links.has(l))).toEqual([]);
  expect(record.processes.length).toBeGreaterThan(0);
  expect(record.processes.filter(isRecordedProcessAlive).map((p) => p.name)).toEqual([]);
  expect(existsSync(record.dir)).toBe(false);
}

describe.skipIf(!requireRoot())('fleet lab', () => {
  beforeAll(() => buildDist(), 120_000);

  describe('startFleetLab (controller in a namespace)', () => {
    let lab: FleetLab;
    let record: FleetLabRecord;

    beforeAll(async () => {
      lab = await startFleetLab({
        dir: join(mkdtempSync(join(tmpdir(), 'uplink-fleetlab-')), 'lab'),
        sites: ['lartc-split', 'home-pppoe'],
      });
      record = JSON.parse(readFileSync(join(lab.dir, 'lab.json'), 'utf8')) as FleetLabRecord;
    }, 120_000);

    afterAll(async () => {
      await lab?.stop();
    });

    it("builds each site's uplinks from its spec and pins the lab's host keys in the fleet copy", async () => {
      const site = lab.site('home-pppoe');
      expect(site.uplinks.map((u) => [u.interface, u.kind])).toEqual([
        ['ppp0', 'point-to-point'],
        ['ppp1', 'point-to-point'],
      ]);
      const links = await lab.run(site.ns, ['ip', '-br', 'link']);
      for (const name of ['ppp0', 'ppp1', 'lan0', 'mgmt0'])
        expect(links.stdout).toMatch(new RegExp(`^${name}@`, 'm'));
      // The internet host answers through each ISP.
      for (const u of site.uplinks)
        await lab.run(site.ns, ['ping', '-c1', '-W2', '-I', u.interface, site.internetHosts[0]!]);
      const spec = readFileSync(join(lab.repo.work, 'sites', 'home-pppoe.yaml'), 'utf8');
      expect(spec).toContain(`hostKey: ${site.hostKey}`);
      expect(spec).toContain('address: 192.0.2.11');
      expect(readFileSync(lab.knownHosts, 'utf8')).toContain(`192.0.2.11 ${site.hostKey}`);
      // The repository holds only the lab's sites, and its first commit is on the bare repo's main.
      const log = spawnSync('git', ['-C', lab.repo.bare, 'rev-parse', 'main'], { encoding: 'utf8' });
      expect(log.stdout.trim()).toBe(lab.repo.commit);
      expect(existsSync(join(lab.repo.work, 'sites', 'dmz-redundant.yaml'))).toBe(false);
    });

    it('the controller key is restricted to the agent protocol: a shell command is not run', async () => {
      const site = lab.site('lartc-split');
      const ssh = [
        'ssh',
        '-F',
        '/dev/null',
        '-i',
        lab.controllerKey,
        '-o',
        `UserKnownHostsFile=${lab.knownHosts}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        `root@${site.mgmtAddress}`,
      ];
      const result = await lab.run(lab.controllerNs, [...ssh, 'touch', join(lab.dir, 'escaped')], {
        allowFailure: true,
        stdin: '',
      });
      expect(existsSync(join(lab.dir, 'escaped'))).toBe(false);
      // What ran instead is the rpc bridge, which answers a status request.
      const status = await lab.run(lab.controllerNs, ssh, {
        stdin: `${JSON.stringify({ v: 1, id: 1, method: 'status', params: {} })}\n`,
      });
      expect(JSON.parse(status.stdout.trim())).toMatchObject({ id: 1, ok: true });
      expect(result.exitCode).not.toBe(null);
    });

    it('uplink apply from the controller namespace reaches every site and the kernel changes', async () => {
      const result = await lab.run(
        lab.controllerNs,
        [
          process.execPath,
          'dist/uplink.mjs',
          'apply',
          'lartc-split',
          'home-pppoe',
          '--repo',
          lab.repo.work,
          '--identity',
          lab.controllerKey,
          '--known-hosts',
          lab.knownHosts,
        ],
        { allowFailure: true, timeoutMs: 120_000 },
      );
      expect(result.exitCode, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^lartc-split: applied/m);
      expect(result.stdout).toMatch(/^home-pppoe: applied/m);
      const rules = await lab.run(lab.site('lartc-split').ns, ['ip', 'rule', 'show']);
      expect(rules.stdout).toMatch(
        /from 172\.20\.7\.0\/24 iif lan0 ipproto tcp dport 80 lookup \d+ proto 252/,
      );
    }, 120_000);

    it('stop() removes every namespace, process and file it recorded', async () => {
      await lab.stop();
      expectNothingLeft(record);
    });
  });

  it('uplink-lab up twice, status, spawn, then down from another process leaves nothing behind', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'uplink-fleetlab-cli-')), 'lab');
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['dist/uplink-lab.mjs', ...args, '--dir', dir], {
        encoding: 'utf8',
        timeout: 120_000,
      });
    const up = ['up', '--sites', 'shorewall-style', '--name-prefix', `t${process.pid}`];
    const first = cli(...up);
    expect(first.status, first.stderr).toBe(0);
    const firstRecord = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as FleetLabRecord;
    try {
      // A second `up` on the same directory replaces the first lab (the demo run twice).
      const second = cli(...up);
      expect(second.status, second.stderr).toBe(0);
      expect(firstRecord.processes.filter(isRecordedProcessAlive)).toEqual([]);
      const record = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as FleetLabRecord;
      expect(record.namespaces).toContain(`t${process.pid}-shorewall-style-router`);
      // The controller namespace reaches the router on its management address.
      const ping = spawnSync(
        'ip',
        ['netns', 'exec', `t${process.pid}-ctrl`, 'ping', '-c1', '-W2', '192.0.2.14'],
        { encoding: 'utf8' },
      );
      expect(ping.status, ping.stdout).toBe(0);
      const spawned = spawnSync(
        process.execPath,
        [
          'dist/uplink-lab.mjs',
          'spawn',
          '--dir',
          dir,
          '--name',
          'sleeper',
          '--log',
          join(dir, 's.log'),
          '--',
          'sleep',
          '600',
        ],
        { encoding: 'utf8' },
      );
      expect(spawned.status, spawned.stderr).toBe(0);
      const status = cli('status');
      expect(status.status, status.stdout).toBe(0);
      expect(status.stdout).toMatch(/^running {2}sleeper \(pid \d+\)$/m);
      expect(status.stdout).toMatch(/^running {2}agent shorewall-style/m);
      const full = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as FleetLabRecord;
      const down = cli('down');
      expect(down.status, down.stderr).toBe(0);
      expectNothingLeft(full);
    } finally {
      cli('down');
    }
  }, 180_000);
});
