/**
 * A router managed the way a user would set it up: a router namespace with a management
 * veth to a controller namespace and one uplink to an ISP namespace, OpenSSH sshd inside
 * the router, the agent installed by deploy/agent/install.sh into a temporary root (the
 * controller's key restricted to `uplink-agent rpc`), and the daemon running.
 *
 *   ctrl ns  eth0 192.0.2.1/24 ── mgmt0 192.0.2.2/24  router ns  isp1 198.51.100.2/29 ── cust 198.51.100.1/29  isp ns
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';
import { waitOperUp } from './site-topology.js';
import { type NamespaceSshd, startSshdInNamespace } from './sshd-in-namespace.js';

export const ROUTER_MGMT = '192.0.2.2';
export const CONTROLLER = '192.0.2.1';

export class ManagedRouter {
  private daemon: LabProcess | undefined;

  private constructor(
    readonly lab: Lab,
    /** Temporary directory holding keys, the install root and sshd's files. */
    readonly dir: string,
    readonly router: string,
    readonly ctrl: string,
    /** Private key the controller uses; `${controllerKey}.pub` is installed restricted. */
    readonly controllerKey: string,
    readonly sshd: NamespaceSshd,
    /** The router sshd's host key, `ssh-ed25519 AAAA…` (no comment). */
    readonly hostKey: string,
  ) {}

  static async start(lab: Lab, tag: string): Promise<ManagedRouter> {
    const dir = await mkdtemp(join(tmpdir(), `uplink-${tag}-`));
    const root = join(dir, 'root');
    const controllerKey = join(dir, 'controller');
    await lab.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'controller', '-f', controllerKey]);
    await lab.run([
      'sh',
      'deploy/agent/install.sh',
      '--controller-key',
      `${controllerKey}.pub`,
      '--prefix',
      root,
      '--user',
      'root',
      '--no-systemd',
    ]);
    const router = await lab.netns('router');
    const ctrl = await lab.netns('ctrl');
    const isp = await lab.netns('isp');
    await lab.veth(
      { ns: router, name: 'mgmt0', address: `${ROUTER_MGMT}/24` },
      { ns: ctrl, name: 'eth0', address: `${CONTROLLER}/24` },
    );
    await lab.veth(
      { ns: router, name: 'isp1', address: '198.51.100.2/29' },
      { ns: isp, name: 'cust', address: '198.51.100.1/29' },
    );
    await lab.exec(router, ['sysctl', '-qw', 'net.ipv4.conf.isp1.rp_filter=1']);
    // kernelText() is compared byte for byte: wait until the kernel has added the links' IPv6
    // multicast and link-local routes (after carrier and duplicate address detection).
    await waitOperUp(lab, router, ['mgmt0', 'isp1'], 15_000);
    const sshd = await startSshdInNamespace(lab, router, {
      address: ROUTER_MGMT,
      dir: join(dir, 'sshd'),
      authorizedKeysFile: `${root}%h/.ssh/authorized_keys`,
    });
    const hostKey = (await readFile(join(dir, 'sshd', 'host_ed25519.pub'), 'utf8'))
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(' ');
    const managed = new ManagedRouter(lab, dir, router, ctrl, controllerKey, sshd, hostKey);
    await managed.startDaemon();
    return managed;
  }

  /** Where install.sh put the agent, its state and its socket. */
  get paths() {
    const root = join(this.dir, 'root');
    return {
      agent: join(root, 'usr/local/bin/uplink-agent'),
      stateDir: join(root, 'var/lib/uplink-agent'),
      socket: join(root, 'run/uplink-agent/agent.sock'),
    };
  }

  get daemonProcess(): LabProcess | undefined {
    return this.daemon;
  }

  /** `env` is added to the daemon's environment (e.g. UPLINK_AGENT_FAILPOINTS, a narrower PATH). */
  async startDaemon(env?: Readonly<Record<string, string | undefined>>): Promise<void> {
    const p = this.paths;
    const daemon = this.lab.start(
      this.router,
      [p.agent, 'daemon', '--state-dir', p.stateDir, '--socket', p.socket],
      env === undefined ? {} : { env },
    );
    this.daemon = daemon;
    const deadline = Date.now() + 20_000;
    while (!daemon.stderr.includes('listening on')) {
      if (daemon.child.exitCode !== null) throw new Error(`daemon exited: ${daemon.stderr}`);
      if (Date.now() > deadline) throw new Error(`daemon did not start: ${daemon.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.daemon;
    if (proc === undefined) return;
    this.daemon = undefined;
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
    await proc.exited;
  }

  /** What the kernel holds in the router namespace, as text: rules, every route, nft, the sysctl. */
  async kernelText(): Promise<string> {
    const run = async (argv: string[]) => (await this.lab.exec(this.router, argv)).stdout;
    return [
      await run(['ip', 'rule', 'show']),
      await run(['ip', 'route', 'show', 'table', 'all']),
      await run(['nft', 'list', 'ruleset']),
      await run(['sysctl', '-n', 'net.ipv4.conf.isp1.rp_filter']),
    ].join('\n----\n');
  }

  /** Stops the daemon and removes the temporary directory (namespaces belong to the lab). */
  async close(): Promise<void> {
    await this.stopDaemon();
    await rm(this.dir, { recursive: true, force: true });
  }
}
