/**
 * A real OpenSSH server on 127.0.0.1 for transport tests, with a fake agent as the forced
 * command. Everything lives in one mkdtemp directory under /tmp: host keys (ed25519, the
 * pinned one, and ecdsa), the client key, sshd_config, authorized_keys with
 * `restrict,command="node fake-agent.mjs <dir>"`, a known_hosts file, and the fake agent's
 * state and log. sshd runs in the foreground (-D) as our child and is stopped by its pid.
 *
 *   describe.skipIf(!requireSshd())('…', () => {
 *     const sshd = useSshd();                 // started in beforeAll, stopped in afterAll
 *     beforeEach(() => sshd.current.reset());  // empty log and state, mode 'normal'
 *     it('…', async () => { const target = sshd.current.target('site-a'); … });
 *   });
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import type { SshTarget } from '../../controller/src/transport/ssh-transport.js';

export const SSHD_PATH = '/usr/sbin/sshd';
const SSH_KEYGEN = 'ssh-keygen';

/** How the fake agent behaves; read at the start of every session. */
export interface FakeAgentMode {
  readonly mode?:
    | 'normal'
    /** apply → conflict (a refusal) */
    | 'refuse-apply'
    /** every request → busy (retryable) */
    | 'busy'
    /** apply → no changes, nothing pending */
    | 'no-changes'
    /** any request → an answer line over MAX_LINE_BYTES */
    | 'oversized'
    /** any request → a line that is not JSON */
    | 'malformed-json'
    /** any request → JSON that is not a valid response */
    | 'malformed-schema'
    /** any request → an answer to an id that was never sent */
    | 'wrong-id'
    /** the session ends before reading anything */
    | 'close-immediately'
    /** the session ends when apply arrives, without answering */
    | 'close-on-apply';
  /** Wait this long before answering each request (to make sessions overlap). */
  readonly holdMs?: number;
  /**
   * The agent's protocol revision (D91): 1 behaves like an agent from before negotiation, 5
   * like one a revision ahead (extra fields everywhere, unknown error codes). Default 4.
   */
  readonly revision?: 1 | 2 | 3 | 4 | 5;
}

export interface FakeAgentEvent {
  readonly event: 'session' | 'request';
  readonly pid: number;
  /** The client's source port from SSH_CONNECTION: distinct ports = distinct connections. */
  readonly sourcePort: number;
  /** Live fake-agent sessions when this was logged. */
  readonly active: number;
  readonly method?: string;
  readonly id?: number | string;
  readonly generation?: string;
  readonly command?: string | null;
}

export interface SshdHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly dir: string;
  /** The pinned host key (ed25519 public key line). */
  readonly hostKeyLine: string;
  /** The server's other host key (ecdsa), also served. */
  readonly ecdsaHostKeyLine: string;
  /** An ed25519 key the server does not have: pin it to provoke a mismatch. */
  readonly wrongHostKeyLine: string;
  readonly clientPrivateKey: Buffer;
  /** A known_hosts file with `[127.0.0.1]:port` → the ed25519 host key. */
  readonly knownHostsPath: string;
  /** An SshTarget for this server, pinned to the ed25519 host key. */
  target(site?: string, overrides?: Partial<SshTarget>): SshTarget;
  setMode(mode: FakeAgentMode): void;
  /** The fake agent's log, oldest first. */
  events(): FakeAgentEvent[];
  /** The fake agent's state (pending / applied generation). */
  agentState(): { pending: { generation: string; deadline: number } | null; applied: string | null };
  /** Empty the log and state, back to mode 'normal'. */
  reset(): void;
  stop(): Promise<void>;
}

export type SshdSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function probeSshdSupport(): SshdSupport {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return {
      ok: false,
      reason: `not root (uid ${process.getuid()}); sshd must run as root to log in as root`,
    };
  }
  if (!existsSync(SSHD_PATH))
    return { ok: false, reason: `${SSHD_PATH} not found (apt-get install openssh-server)` };
  const keygen = spawnSync(SSH_KEYGEN, ['-?'], { encoding: 'utf8' });
  if (keygen.error !== undefined)
    return { ok: false, reason: `ssh-keygen not usable: ${keygen.error.message}` };
  return { ok: true };
}

/** True when sshd tests can run; otherwise throws under CI=true, else warns and returns false. */
export function requireSshd(): boolean {
  const support = probeSshdSupport();
  if (support.ok) return true;
  const message = `sshd transport tests need root and OpenSSH's sshd: ${support.reason}`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: refusing to skip)`);
  console.warn(`skipping: ${message}`);
  return false;
}

/** A TCP port on 127.0.0.1 that nothing listens on (right now). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(argv: readonly string[]): void {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`${argv.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

function keygen(path: string, type: 'ed25519' | 'ecdsa'): string {
  run([SSH_KEYGEN, '-q', '-t', type, '-N', '', '-C', `uplink-test-${type}`, '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

/** Paths go into authorized_keys' command, which sshd hands to the user's shell: keep them plain. */
function assertShellSafe(path: string): string {
  if (!/^[A-Za-z0-9._/-]+$/.test(path)) throw new Error(`path not safe for a forced command: ${path}`);
  return path;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if afterAll never runs: stop our own sshd children, by pid.
  process.once('exit', () => {
    for (const child of live) child.kill('SIGTERM');
  });
}

export async function startSshd(): Promise<SshdHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'uplink-sshd-'));
  try {
    return await startIn(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startIn(dir: string): Promise<SshdHandle> {
  assertShellSafe(dir);
  const user = userInfo().username;
  const hostKeyLine = keygen(join(dir, 'ssh_host_ed25519_key'), 'ed25519');
  const ecdsaHostKeyLine = keygen(join(dir, 'ssh_host_ecdsa_key'), 'ecdsa');
  const wrongHostKeyLine = keygen(join(dir, 'wrong_host_key'), 'ed25519');
  const clientPublic = keygen(join(dir, 'client_key'), 'ed25519');
  const clientPrivateKey = readFileSync(join(dir, 'client_key'));

  const agentScript = join(dir, 'fake-agent.mjs');
  copyFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fake-agent.mjs'), agentScript);
  const stateDir = join(dir, 'agent');
  mkdirSync(stateDir);
  const command = [assertShellSafe(process.execPath), agentScript, stateDir].join(' ');
  writeFileSync(join(dir, 'authorized_keys'), `restrict,command="${command}" ${clientPublic}\n`, {
    mode: 0o600,
  });

  const port = await freePort();
  const config = [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
    `HostKey ${join(dir, 'ssh_host_ecdsa_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowAgentForwarding no',
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'MaxStartups 100',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, config);
  const [hostKeyType, hostKeyData] = hostKeyLine.split(' ');
  const knownHostsPath = join(dir, 'known_hosts');
  writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostKeyType} ${hostKeyData}\n`);

  // sshd's privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  run([SSHD_PATH, '-t', '-f', configPath]);
  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  installExitHook();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`sshd did not start listening within 10 s: ${stderr.trim()}`));
    }, 10_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
      if (stderr.includes(`Server listening on 127.0.0.1 port ${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code ?? signal}) before listening: ${stderr.trim()}`));
    });
  });

  const handle: SshdHandle = {
    host: '127.0.0.1',
    port,
    user,
    dir,
    hostKeyLine,
    ecdsaHostKeyLine,
    wrongHostKeyLine,
    clientPrivateKey,
    knownHostsPath,
    target: (site = 'test-site', overrides = {}) => ({
      site,
      host: '127.0.0.1',
      port,
      user,
      hostKey: hostKeyLine,
      privateKey: clientPrivateKey,
      ...overrides,
    }),
    setMode: (mode) => writeFileSync(join(stateDir, 'mode.json'), JSON.stringify(mode)),
    events: () => {
      const path = join(stateDir, 'log.jsonl');
      if (!existsSync(path)) return [];
      return readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as FakeAgentEvent);
    },
    agentState: () => {
      const path = join(stateDir, 'state.json');
      return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : { pending: null, applied: null };
    },
    reset: () => {
      for (const name of ['log.jsonl', 'state.json', 'mode.json', 'active']) {
        rmSync(join(stateDir, name), { recursive: true, force: true });
      }
    },
    stop: async () => {
      if (live.has(child)) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
        live.delete(child);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** Start one sshd for a describe block (beforeAll) and stop it by pid (afterAll). */
export function useSshd(): { readonly current: SshdHandle } {
  let handle: SshdHandle | undefined;
  beforeAll(async () => {
    handle = await startSshd();
  });
  afterAll(async () => {
    await handle?.stop();
  });
  return {
    get current(): SshdHandle {
      if (handle === undefined)
        throw new Error('sshd is not started (use inside tests of the describe block)');
      return handle;
    },
  };
}
