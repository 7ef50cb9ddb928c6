/**
 * install.sh checks the router's tools before installing anything (D85): `ip`, `nft` and
 * `sysctl` are required (missing: exit 1, nothing installed), `ping`, `conntrack` and `socat`
 * are warned about. The script runs for real into a temporary root; the tools it may find
 * are a directory of symlinks to the host's own, named by UPLINK_TOOL_PATH.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './build-dist.js';
import { requireRoot } from './lab/index.js';

const TOOLS = ['ip', 'nft', 'sysctl', 'ping', 'conntrack', 'socat'] as const;
type Tool = (typeof TOOLS)[number];

/** Where the host has each tool (all six must be installed to run these tests). */
function locate(tool: string): string {
  const found = spawnSync('sh', ['-c', `PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v ${tool}`], {
    encoding: 'utf8',
  });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') throw new Error(`${tool} is not installed on this machine`);
  return path;
}

// install.sh refuses to run unless root.
describe.skipIf(!requireRoot())('install.sh checks the router prerequisites', () => {
  let dir: string;
  let keyFile: string;
  let agentFile: string;
  let runs = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uplink-install-'));
    keyFile = join(dir, 'controller.pub');
    await writeFile(
      keyFile,
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4 controller\n',
    );
    agentFile = join(dir, 'uplink-agent.mjs');
    await writeFile(agentFile, '// not run by these tests\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs install.sh into a fresh root with only `tools` findable; returns its result and root. */
  async function install(tools: readonly Tool[], extra: readonly string[] = []) {
    runs++;
    const bin = join(dir, `bin${runs}`);
    const root = join(dir, `root${runs}`);
    await mkdir(bin);
    for (const tool of tools) await symlink(locate(tool), join(bin, tool));
    const result = spawnSync(
      'sh',
      [
        join(ROOT, 'deploy/agent/install.sh'),
        '--controller-key',
        keyFile,
        '--agent',
        agentFile,
        '--prefix',
        root,
        '--user',
        'root',
        '--no-systemd',
        ...extra,
      ],
      { encoding: 'utf8', env: { ...process.env, UPLINK_TOOL_PATH: bin } },
    );
    const installed = await readdir(root).catch(() => []);
    return { status: result.status, stderr: result.stderr, stdout: result.stdout, installed };
  }

  const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('install.sh: warning:'));

  it('every tool present: installs, no warning', async () => {
    const r = await install(TOOLS);
    expect(r.stderr).not.toMatch(/missing|warning/);
    expect(r.status).toBe(0);
    // --no-systemd: no etc/; root/ holds root's .ssh (the --user's home under the prefix).
    expect(r.installed.sort()).toEqual(['root', 'run', 'usr', 'var']);
  });

  it.each([
    [
      ['nft'],
      /^install\.sh: missing on this router: nft \(Debian package nftables\);.*apt-get install nftables\)/m,
    ],
    [['ip'], /missing on this router: ip \(Debian package iproute2\);/],
    [['sysctl'], /missing on this router: sysctl \(Debian package procps\);/],
    [
      ['ip', 'sysctl'],
      /missing on this router: ip \(Debian package iproute2\), sysctl \(Debian package procps\);.*apt-get install iproute2 procps\)/,
    ],
  ] as const)('without %j: exit 1, says which package, installs nothing', async (absent, message) => {
    const r = await install(TOOLS.filter((t) => !(absent as readonly string[]).includes(t)));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('Nothing was installed.');
    expect(r.installed).toEqual([]);
  });

  it('without ping, conntrack and socat: installs, with one warning each naming the package', async () => {
    const r = await install(['ip', 'nft', 'sysctl']);
    expect(r.status).toBe(0);
    expect(r.installed).toContain('usr');
    const lines = warnings(r.stderr);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^install\.sh: warning: ping not found \(Debian package iputils-ping\): ICMP/);
    expect(lines[1]).toMatch(
      /^install\.sh: warning: conntrack not found \(Debian package conntrack\): .*flushed/,
    );
    expect(lines[2]).toMatch(/^install\.sh: warning: socat not found \(Debian package socat\): TCP/);
  });

  it('only conntrack missing: only its warning', async () => {
    const r = await install(TOOLS.filter((t) => t !== 'conntrack'));
    expect(r.status).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      'install.sh: warning: conntrack not found (Debian package conntrack): connections through a dead uplink are not flushed on failover',
    ]);
  });

  it('--rpc-bridge socat without socat: exit 1, installs nothing', async () => {
    const r = await install(
      TOOLS.filter((t) => t !== 'socat'),
      ['--rpc-bridge', 'socat'],
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--rpc-bridge socat: socat is not installed \(Debian package socat\)/);
    expect(r.installed).toEqual([]);
  });
});
