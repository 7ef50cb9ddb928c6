/**
 * `uplink drift` end to end: dist/uplink.mjs (ssh2) in a controller namespace against a
 * router namespace with sshd, the installed agent and its daemon (test/lab/managed-router.ts).
 * Exit 0 when the router matches git; 1 after someone deletes an Uplink rule by hand (once
 * the agent has noticed) and when git moved on without an apply; 2 when a second site of
 * the fleet cannot be reached. The JUnit report is parsed as XML.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { CONTROLLER, ManagedRouter, ROUTER_MGMT } from './lab/managed-router.js';
import { writeManagedRouterFleet } from './managed-router-fleet.js';

const SITE = 'lab-1';
/** A site whose management address is the controller namespace's own, on a closed port: refused at once. */
const GONE = 'lab-gone';

describe.skipIf(!requireRoot())('uplink drift (dist/uplink.mjs, ssh2) against sshd + agent daemon', () => {
  const lab = useLab('driftcli');
  let m: ManagedRouter;

  async function writeRepo(name: string, options: { unreachable?: boolean; policies?: string } = {}) {
    const repo = join(m.dir, 'repos', name);
    await writeManagedRouterFleet(repo, SITE, m.hostKey, options.policies, { commit: true });
    if (options.unreachable) {
      await writeFile(
        join(repo, 'sites', `${GONE}.yaml`),
        `name: ${GONE}
management:
  address: ${CONTROLLER}
  port: 9
  user: root
  hostKey: ${m.hostKey}
providers:
  - name: isp1
    interface: isp1
    gateway: 198.51.100.1
`,
      );
    }
    return repo;
  }

  function uplink(args: readonly string[]) {
    return lab.current.exec(m.ctrl, [process.execPath, 'dist/uplink.mjs', ...args], {
      allowFailure: true,
      timeoutMs: 120_000,
    });
  }

  const drift = (repo: string, args: readonly string[] = []) =>
    uplink(['drift', '--repo', repo, '--identity', m.controllerKey, ...args]);

  /** Parses a JUnit report; returns its test cases as name → failure/error/system-out text. */
  async function readJunit(file: string) {
    const suites = create(await readFile(file, 'utf8')).root().node as unknown as Element;
    expect(suites.tagName).toBe('testsuites');
    const cases = [...suites.getElementsByTagName('testcase')];
    const text = (c: Element, tag: string) => c.getElementsByTagName(tag)[0]?.textContent ?? null;
    return {
      counts: ['tests', 'failures', 'errors'].map((a) => suites.getAttribute(a)),
      cases: Object.fromEntries(
        cases.map((c) => [
          c.getAttribute('name'),
          {
            failure: text(c, 'failure'),
            error: c.getElementsByTagName('error')[0]?.getAttribute('message') ?? null,
            out: text(c, 'system-out'),
          },
        ]),
      ),
    };
  }

  beforeAll(async () => {
    buildDist();
    m = await ManagedRouter.start(lab.current, 'drift-cli');
  }, 120_000);

  afterAll(async () => {
    await m?.close();
  });

  it('exit 0 when the router runs what git says and nothing was touched', async () => {
    const repo = await writeRepo('clean');
    const apply = await uplink(['apply', SITE, '--repo', repo, '--identity', m.controllerKey]);
    expect(apply.exitCode, `${apply.stdout}${apply.stderr}`).toBe(0);
    const out = await drift(repo, ['--format', 'junit', '--output', join(m.dir, 'clean.xml')]);
    expect(out.exitCode, `${out.stdout}${out.stderr}\ndaemon: ${m.daemonProcess?.stderr}`).toBe(0);
    expect(out.stdout).toMatch(
      new RegExp(`^ok ${SITE} \\(${ROUTER_MGMT.replaceAll('.', '\\.')}\\): in sync`, 'm'),
    );
    const junit = await readJunit(join(m.dir, 'clean.xml'));
    expect(junit.counts).toEqual(['1', '0', '0']);
    expect(junit.cases[SITE]).toMatchObject({ failure: null, error: null });
  }, 120_000);

  it('exit 1 when the applied generation is not what git says (git moved on, no apply)', async () => {
    const repo = await writeRepo('moved-on', {
      policies: 'policies:\n  - name: web\n    proto: tcp\n    dport: 443\n    via: [isp1]\n',
    });
    const out = await drift(repo);
    expect(out.exitCode, `${out.stdout}${out.stderr}`).toBe(1);
    expect(out.stdout).toMatch(
      /out of date applied generation: expected desired state [0-9a-f]{12} from git, found generation/,
    );
  }, 120_000);

  it('exit 1 after `ip rule del` of an Uplink rule, once the agent reports it; JUnit has the failure', async () => {
    const repo = await writeRepo('clean');
    await lab.current.exec(m.router, ['ip', 'rule', 'del', 'priority', '2000']);
    let out = await drift(repo, ['--format', 'junit', '--output', join(m.dir, 'tampered.xml')]);
    // The agent notices a kernel event within about a second; poll a little longer.
    for (let i = 0; i < 20 && out.exitCode === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      out = await drift(repo, ['--format', 'junit', '--output', join(m.dir, 'tampered.xml')]);
    }
    expect(out.exitCode, `${out.stdout}${out.stderr}\ndaemon: ${m.daemonProcess?.stderr}`).toBe(1);
    expect(out.stdout).toMatch(new RegExp(`^DRIFT ${SITE} .*: drift: \\d+ differences? from git`, 'm'));
    expect(out.stdout).toMatch(/^\s+missing .*2000.*198\.51\.100\.2/m);
    const junit = await readJunit(join(m.dir, 'tampered.xml'));
    expect(junit.counts).toEqual(['1', '1', '0']);
    expect(junit.cases[SITE]!.failure).toMatch(/missing .*2000/);
  }, 120_000);

  it('exit 2 when another site of the fleet cannot be reached; the reachable one is still reported', async () => {
    const repo = await writeRepo('with-gone', { unreachable: true });
    const out = await drift(repo, ['--format', 'junit', '--output', join(m.dir, 'gone.xml')]);
    expect(out.exitCode, `${out.stdout}${out.stderr}`).toBe(2);
    expect(out.stderr).toMatch(new RegExp(`not checked: ${GONE} \\(transport`));
    const junit = await readJunit(join(m.dir, 'gone.xml'));
    expect(junit.counts[0]).toBe('2');
    expect(junit.counts[2]).toBe('1');
    expect(junit.cases[GONE]!.error).toMatch(/ECONNREFUSED|refused/i);
    expect(Object.keys(junit.cases)).toContain(SITE);
    // --sites narrows the check to the reachable site.
    const only = await drift(repo, ['--sites', SITE]);
    expect(only.stdout).not.toContain(GONE);
    expect([0, 1]).toContain(only.exitCode);
  }, 120_000);
});
