/**
 * One simulated router: the real agent daemon (startDaemon: CommitConfirmed, request
 * parsing, sessions) on a unix socket in the site's own state directory, over the memory
 * dataplane, behind an SSH server (ssh2's Server) on a loopback TCP port. Each exec channel
 * is bridged to the daemon by the real `uplink-agent rpc` bridge (runRpcBridge), exactly as
 * OpenSSH's forced command does on a router — so the controller talks to the same code
 * path, only the kernel and sshd are stand-ins.
 *
 * Faults act where they act on a real router: at TCP (refused, black-holed, cut after an
 * apply), on the wire (latency), in the kernel (a failing step, drift by hand).
 */
import { timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, type Socket, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import ssh2, { type Connection, type ParsedKey, type ServerChannel } from 'ssh2';
import { type RunningDaemon, startDaemon } from '../../agent/src/daemon/daemon.js';
import type { WatchOptions } from '../../agent/src/daemon/drift-watch.js';
import type { HealthSource } from '../../agent/src/daemon/health-source.js';
import { runRpcBridge } from '../../agent/src/daemon/rpc-bridge.js';
import { MemoryDataplane } from '../../agent/src/dataplane/memory.js';
import type { DesiredState } from '../../agent/src/model/desired-state.js';
import type { Facts } from '../../agent/src/model/kernel-state.js';
import { applyDrift, type DriftChange } from './apply-drift.js';
import { DelayedWriter } from './delayed-writer.js';
import { MemoryEvents } from './memory-events.js';

// ssh2 is CommonJS; Node's ESM loader does not see `Server` as a named export.
const SshServer = ssh2.Server;
type SshServer = InstanceType<typeof ssh2.Server>;

import { seedKernel } from './seed-kernel.js';

/** What a simulated router is: its name, what only it knows (facts), and how it is reached. */
export interface SimSiteSpec {
  readonly name: string;
  /** Interfaces and addresses, e.g. from the spec (synthesizeFacts). */
  readonly facts: Facts;
  /** The main table's default route before Uplink owns anything: how the controller's packets leave. */
  readonly mainDefault?: { readonly dev: string; readonly gateway: string } | undefined;
  /**
   * The router address the controller connects to (SSH_CONNECTION's server address), so the
   * agent's management-path guard runs as on a real router; unset: no SSH_CONNECTION, no guard.
   */
  readonly managementAddress?: string | undefined;
  /** The SSH user the controller logs in as (default `uplink`). */
  readonly user?: string | undefined;
  /** Start with this generation applied and confirmed (through the real commit-confirmed code). */
  readonly desired?: { readonly state: DesiredState; readonly generation: string } | undefined;
  /** Provider health as the agent sees it; unset: no probing, every provider up, none reported. */
  readonly health?: HealthSource | undefined;
}

export type SimFault =
  /** Every TCP connection is reset at once: the router is unreachable. */
  | { readonly kind: 'refuse' }
  /** Connections are accepted and never answered: the controller's connect timeout decides. */
  | { readonly kind: 'blackhole' }
  /**
   * While an apply is pending confirmation, new connections are reset: the new routing cut
   * the management path, so the confirm cannot arrive and the agent reverts at its deadline.
   */
  | { readonly kind: 'drop-confirm' }
  /** Extra one-way latency on every answer and connection of this site. */
  | { readonly kind: 'slow'; readonly latencyMs: number }
  /** The kernel refuses the first step of the next apply (the engine restores the snapshot). */
  | { readonly kind: 'kernel-fail' };

export type SimFaultKind = SimFault['kind'];

export interface SimSiteContext {
  readonly stateRoot: string;
  readonly hostPrivateKey: string;
  readonly controllerPublicKey: ParsedKey;
  readonly controllerAddress: string;
  /** Fleet-wide one-way latency (ms), read on every use so it can change at run time. */
  readonly latencyMs: () => number;
  readonly log: (site: string, line: string) => void;
  /**
   * Run the agent's drift watch (periodic checks; the simulator's hand edits raise kernel
   * events as `ip monitor` would). Unset: no watch, status carries no drift report.
   */
  readonly watch?: Omit<WatchOptions, 'events'> | undefined;
}

export class SimSite {
  readonly dataplane: MemoryDataplane;
  readonly events = new MemoryEvents();
  /** TCP connections accepted (including refused ones), for "at most one connection" checks. */
  connections = 0;
  /** Exec channels bridged to the daemon. */
  sessions = 0;
  readonly #faults = new Map<SimFaultKind, SimFault>();
  readonly #sockets = new Set<Socket>();
  #tcp: TcpServer | undefined;
  #daemon: RunningDaemon | undefined;
  #port = 0;

  private constructor(
    readonly spec: SimSiteSpec,
    readonly stateDir: string,
    private readonly context: SimSiteContext,
  ) {
    this.dataplane = new MemoryDataplane(seedKernel(spec.facts, spec.mainDefault));
  }

  static async start(spec: SimSiteSpec, context: SimSiteContext): Promise<SimSite> {
    const stateDir = join(context.stateRoot, spec.name);
    await mkdir(stateDir, { recursive: true, mode: 0o750 });
    const site = new SimSite(spec, stateDir, context);
    await site.#start();
    return site;
  }

  get port(): number {
    return this.#port;
  }

  get daemon(): RunningDaemon {
    if (this.#daemon === undefined) throw new Error(`${this.spec.name}: not started`);
    return this.#daemon;
  }

  inject(fault: SimFault): void {
    if (fault.kind === 'kernel-fail') {
      this.dataplane.injectFault({ match: (_step, position) => position === 1, effect: 'throw' });
      return;
    }
    this.#faults.set(fault.kind, fault);
  }

  /** Removes one kind of fault, or all (an armed kernel fault stays until an apply takes it). */
  heal(kind?: SimFaultKind): void {
    if (kind === undefined) this.#faults.clear();
    else this.#faults.delete(kind);
  }

  /** Changes the kernel behind the agent's back, like an administrator would. */
  async drift(change: DriftChange): Promise<void> {
    await applyDrift(this.dataplane, change);
    if (change === 'delete-rule' || change === 'foreign-rule') this.events.emit({ kind: 'rule' });
    else if (change === 'delete-route') this.events.emit({ kind: 'route' });
    // No netlink event for these: on a router `nft monitor` (D152) or the periodic
    // check finds them; here the simulator stands in for them.
    else this.#daemon?.watch?.trigger(change === 'flush-nft' ? 'nft' : 'periodic');
  }

  async close(): Promise<void> {
    const tcp = this.#tcp;
    this.#tcp = undefined;
    if (tcp !== undefined) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
      await closed;
    }
    await this.#daemon?.close();
  }

  async #start(): Promise<void> {
    this.#daemon = await startDaemon({
      stateDir: this.stateDir,
      socketPath: join(this.stateDir, 'agent.sock'),
      dataplane: () => this.dataplane,
      // A simulated router has no programs of its own: the host's PATH says nothing about it.
      toolPath: null,
      ...(this.spec.health === undefined ? {} : { health: this.spec.health }),
      log: (line) => this.context.log(this.spec.name, line),
      ...(this.context.watch === undefined ? {} : { watch: { ...this.context.watch, events: this.events } }),
    });
    const initial = this.spec.desired;
    if (initial !== undefined) {
      // Through the same commit-confirmed code an SSH apply takes, without a connection.
      await this.#daemon.commit.apply(
        { desired: initial.state, generation: initial.generation, confirmWithinMs: 60_000 },
        undefined,
      );
      if (this.#daemon.commit.record.pending !== null) await this.#daemon.commit.confirm(initial.generation);
    }
    const ssh = new SshServer({ hostKeys: [this.context.hostPrivateKey] }, (client, info) =>
      this.#serveClient(client, info.port),
    );
    ssh.on('error', () => {});
    this.#tcp = createServer((socket) => this.#accept(socket, ssh));
    await new Promise<void>((resolve, reject) => {
      this.#tcp!.once('error', reject);
      this.#tcp!.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.#tcp.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP port');
    this.#port = address.port;
  }

  #latency(): number {
    const slow = this.#faults.get('slow');
    return this.context.latencyMs() + (slow?.kind === 'slow' ? slow.latencyMs : 0);
  }

  #accept(socket: Socket, ssh: SshServer): void {
    this.connections++;
    socket.on('error', () => {});
    if (this.#faults.has('refuse')) {
      socket.resetAndDestroy();
      return;
    }
    if (this.#faults.has('drop-confirm') && this.#daemon?.commit.record.pending != null) {
      socket.resetAndDestroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#faults.has('blackhole')) return;
    const latency = this.#latency();
    if (latency <= 0) ssh.injectSocket(socket);
    else setTimeout(() => socket.destroyed || ssh.injectSocket(socket), latency);
  }

  #serveClient(client: Connection, clientPort: number): void {
    const user = this.spec.user ?? 'uplink';
    const key = this.context.controllerPublicKey;
    const keyData = key.getPublicSSH();
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (
        ctx.method !== 'publickey' ||
        ctx.username !== user ||
        ctx.key.algo !== key.type ||
        ctx.key.data.length !== keyData.length ||
        !timingSafeEqual(ctx.key.data, keyData)
      ) {
        ctx.reject(['publickey']);
        return;
      }
      // Without a signature the client only asks whether the key would do.
      if (ctx.signature !== undefined && key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
        ctx.reject(['publickey']);
        return;
      }
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        // The forced command: whatever the client asks to run, it gets the rpc bridge.
        session.once('exec', (acceptExec) => void this.#bridge(acceptExec(), clientPort));
      });
    });
  }

  async #bridge(channel: ServerChannel, clientPort: number): Promise<void> {
    this.sessions++;
    const managementAddress = this.spec.managementAddress;
    const out = new DelayedWriter(channel, () => this.#latency());
    const outcome = await runRpcBridge(
      { socketPath: this.daemon.socketPath },
      {
        stdin: channel,
        stdout: out,
        stderr: (text) => channel.stderr.write(text),
        env: {
          SSH_CONNECTION:
            managementAddress === undefined
              ? undefined
              : `${this.context.controllerAddress} ${clientPort} ${managementAddress} 22`,
        },
      },
    );
    await out.flushed();
    if (channel.destroyed) return;
    channel.exit(outcome === 'ok' ? 0 : 1);
    channel.end();
  }
}
