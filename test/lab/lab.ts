/**
 * A throwaway network lab for kernel tests: named namespaces with a per-run unique prefix,
 * veth pairs, addresses, routes, commands and long-running processes inside them.
 *
 * Cleanup deletes exactly what the lab created — namespaces and host-side links by name,
 * processes by pid — and runs from afterAll/afterEach (see `useLab`), and, as a last
 * resort, from a process 'exit'/SIGTERM/SIGINT hook (this file does not depend on vitest, so
 * lab scripts can use it too), so a failing or interrupted test does
 * not leave namespaces behind. Nothing here ever matches by pattern.
 *
 * Every command is spawned with an argument array, never through a shell.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';

export class LabCommandError extends Error {
  override readonly name = 'LabCommandError';
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} exited ${exitCode}: ${stderr.trim() || stdout.trim()}`);
  }
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly stdin?: string;
  /** Resolve with a non-zero exit instead of throwing. */
  readonly allowFailure?: boolean;
  /** Kill the command after this many ms (default 30 s). */
  readonly timeoutMs?: number;
}

export interface VethEnd {
  /** Namespace name (from `lab.netns`), or null for the host's namespace. */
  readonly ns: string | null;
  /** Interface name, ≤ 15 bytes. Host-side names must be unique on the host: use `lab.hostIfName`. */
  readonly name: string;
  /** CIDR to assign, e.g. `198.51.100.2/29`. */
  readonly address?: string;
  /** Point-to-point peer address (`ip addr add A peer P`), e.g. a PPP-like link. */
  readonly peer?: string;
}

const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;
const live = new Set<Lab>();
let exitHookInstalled = false;

export class Lab {
  /** `ul-<tag>-<pid36>-<n>`: unique per process and lab; every name this lab creates starts with it. */
  readonly prefix: string;
  readonly #namespaces: string[] = [];
  readonly #hostLinks: string[] = [];
  readonly #children = new Map<number, ChildProcess>();
  #hostLinkCounter = 0;

  /**
   * `options.prefix` fixes the prefix instead (e.g. the demo's `uplink-home-pppoe`, so the
   * names printed for a user stay the same from one run to the next).
   */
  constructor(tag: string, options: { readonly prefix?: string } = {}) {
    const safeTag =
      tag
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 8) || 'lab';
    if (options.prefix !== undefined && !/^[a-z0-9][a-z0-9-]{0,40}$/.test(options.prefix))
      throw new Error(`lab prefix ${JSON.stringify(options.prefix)}: use a-z 0-9 -`);
    this.prefix = options.prefix ?? `ul-${safeTag}-${process.pid.toString(36)}-${nextLabNumber()}`;
    live.add(this);
    installExitHook();
  }

  /** Namespaces created so far, in creation order. */
  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  /** Creates namespace `<prefix>-<name>` with loopback up; returns its full name. */
  async netns(name: string): Promise<string> {
    if (!/^[a-z0-9-]{1,24}$/.test(name)) throw new Error(`lab netns ${JSON.stringify(name)}: use a-z 0-9 -`);
    const full = `${this.prefix}-${name}`;
    await this.run(['ip', 'netns', 'add', full]);
    this.#namespaces.push(full);
    await this.run(['ip', '-n', full, 'link', 'set', 'dev', 'lo', 'up']);
    return full;
  }

  /** A host-side interface name unique to this lab (≤ 15 bytes). */
  hostIfName(role: string): string {
    const id = `${process.pid.toString(36)}${(this.#hostLinkCounter++).toString(36)}`;
    const name = `ul${role.replace(/[^a-z0-9]/g, '').slice(0, 13 - id.length)}${id}`;
    return assertIfName(name.slice(0, 15));
  }

  /** A veth pair between two namespaces (or a namespace and the host), both ends up. */
  async veth(a: VethEnd, b: VethEnd): Promise<void> {
    assertIfName(a.name);
    assertIfName(b.name);
    const peerNs = b.ns === null ? [] : ['netns', b.ns];
    await this.run([
      ...ipIn(a.ns),
      'link',
      'add',
      'name',
      a.name,
      'type',
      'veth',
      'peer',
      'name',
      b.name,
      ...peerNs,
    ]);
    // A host-side end would outlive the namespaces; remember it by name to delete it.
    if (a.ns === null) this.#hostLinks.push(a.name);
    else if (b.ns === null) this.#hostLinks.push(b.name);
    for (const end of [a, b]) {
      if (end.address !== undefined) await this.addr(end.ns, end.name, end.address, end.peer);
      await this.run([...ipIn(end.ns), 'link', 'set', 'dev', end.name, 'up']);
    }
  }

  async addr(ns: string | null, dev: string, cidr: string, peer?: string): Promise<void> {
    const args = peer === undefined ? [cidr] : [cidr.split('/')[0]!, 'peer', peer];
    await this.run([...ipIn(ns), 'addr', 'add', ...args, 'dev', assertIfName(dev)]);
  }

  /** `ip route replace <args>` inside `ns`, e.g. `route(ns, 'default', 'via', '198.51.100.1')`. */
  async route(ns: string, ...args: string[]): Promise<void> {
    await this.run(['ip', '-n', ns, 'route', 'replace', ...args]);
  }

  /** IPv4 forwarding on/off, and rp_filter off so asymmetric test paths are not dropped. */
  async forwarding(ns: string, on = true): Promise<void> {
    await this.exec(ns, [
      'sysctl',
      '-q',
      '-w',
      `net.ipv4.ip_forward=${on ? 1 : 0}`,
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
  }

  /** Runs argv inside `ns` (`ip netns exec`); throws a LabCommandError on non-zero exit. */
  exec(ns: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.run(['ip', 'netns', 'exec', ns, ...argv], options);
  }

  /** Runs argv in the host namespace; throws a LabCommandError on non-zero exit. */
  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new Error('lab.run: empty argv'));
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        args,
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 30_000 },
        (error, stdout, stderr) => {
          const exitCode = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
          if (error !== null && (exitCode === null || !options.allowFailure)) {
            reject(new LabCommandError(argv, exitCode, stdout, stderr));
            return;
          }
          resolve({ exitCode, stdout, stderr });
        },
      );
      child.stdin?.on('error', () => {});
      child.stdin?.end(options.stdin ?? '');
    });
  }

  /**
   * Starts a long-running process inside `ns` (a server, tcpdump, sshd -D); it and whatever it
   * forks are killed by process group (its pid) on cleanup. Its output is collected in the returned object. `env` is added to ours.
   */
  start(
    ns: string | null,
    argv: readonly string[],
    options: { readonly env?: Readonly<Record<string, string | undefined>> } = {},
  ): LabProcess {
    const full = ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
    // Its own process group, so cleanup reaches what it forks (socat's per-connection children).
    const child = spawn(full[0]!, full.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
    });
    const proc = new LabProcess(child, full);
    if (child.pid !== undefined) {
      this.#children.set(child.pid, child);
      child.on('exit', () => this.#children.delete(child.pid!));
    }
    return proc;
  }

  /** Kills started processes, deletes host links and namespaces; safe to call twice. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    await Promise.all([...this.#children.values()].map((child) => stopChild(child)));
    this.#children.clear();
    for (const link of this.#hostLinks.splice(0)) {
      const result = await this.run(['ip', 'link', 'del', link], { allowFailure: true });
      if (result.exitCode !== 0 && !/Cannot find device/.test(result.stderr))
        errors.push(result.stderr.trim());
    }
    for (const ns of this.#namespaces.splice(0).reverse()) {
      const result = await this.run(['ip', 'netns', 'del', ns], { allowFailure: true });
      if (result.exitCode !== 0 && !/No such file/.test(result.stderr)) errors.push(result.stderr.trim());
    }
    live.delete(this);
    if (errors.length > 0) throw new Error(`lab ${this.prefix} cleanup: ${errors.join('; ')}`);
  }

  /**
   * Forgets the namespaces and host links (returning them) without deleting anything, so they
   * outlive this process — for a lab script whose `down` deletes them later by name.
   * Processes started with `start` are not released (their output pipes die with us).
   */
  release(): { readonly namespaces: readonly string[]; readonly hostLinks: readonly string[] } {
    const released = { namespaces: this.#namespaces.splice(0), hostLinks: this.#hostLinks.splice(0) };
    live.delete(this);
    return released;
  }

  /** Synchronous cleanup for the process exit hook (no event loop left there). */
  cleanupSync(): void {
    for (const child of this.#children.values()) {
      try {
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.#children.clear();
    for (const link of this.#hostLinks.splice(0)) spawnSync('ip', ['link', 'del', link]);
    for (const ns of this.#namespaces.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns]);
    live.delete(this);
  }
}

export class LabProcess {
  #stdout = '';
  #stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly argv: readonly string[],
  ) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.#stdout += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString('utf8');
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.on('error', () => resolve(null));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Stops this process now (SIGTERM, then SIGKILL after 2 s). */
  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** Creates a lab and runs `fn` with it, cleaning up whatever happens. */
export async function withLab<T>(tag: string, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = new Lab(tag);
  try {
    return await fn(lab);
  } finally {
    await lab.cleanup();
  }
}

function ipIn(ns: string | null): string[] {
  return ns === null ? ['ip'] : ['ip', '-n', ns];
}

function assertIfName(name: string): string {
  if (!INTERFACE_NAME.test(name))
    throw new Error(`lab: ${JSON.stringify(name)} is not a valid interface name (≤15)`);
  return name;
}

/** Signals the process group a started child leads (its pid), then the child itself. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    process.kill(pid, signal);
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return Promise.resolve();
  if (child.exitCode !== null || child.signalCode !== null) {
    // The leader is gone; what it forked may not be.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // no group left
    }
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        killGroup(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 2000);
    child.once('exit', () => {
      clearTimeout(timer);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // no group left
      }
      resolve();
    });
    try {
      killGroup(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  });
}

let labCounter = 0;
function nextLabNumber(): string {
  return (labCounter++).toString(36);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanupAll = () => {
    for (const lab of [...live]) lab.cleanupSync();
  };
  process.on('exit', cleanupAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupAll();
      process.kill(process.pid, signal);
    });
  }
}
