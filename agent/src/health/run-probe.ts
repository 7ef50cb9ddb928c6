/**
 * One probe to one target, out of one uplink specifically (docs/decisions.md D30, D33).
 *
 * Both methods set two socket options on the probe:
 * - SO_MARK = the provider's mark, so Uplink's track rule (`fwmark M/mask lookup <table>`)
 *   routes it through the provider's own table, never main's default;
 * - SO_BINDTODEVICE = the provider's interface, so if that table cannot route it (the
 *   provider is unavailable, a route is missing) the kernel will not send it out of another
 *   uplink where it would answer and declare a dead link up.
 *
 * ICMP: one `ping -c1 -W` per target per round (iputils: `-m` mark, `-I` device). TCP: a
 * connect by `socat` (`so-bindtodevice`, `setsockopt-int=SOL_SOCKET:SO_MARK:M`) — Node's
 * `net` can set neither option. Commands get argument arrays; the targets are validated
 * IPv4 addresses and the interface a validated name. A probe whose program cannot be
 * started is inconclusive, not failed (D83).
 */
import { spawn } from 'node:child_process';
import type { ProbeOutcome } from './provider-verdict.js';

export interface ProbeRequest {
  /** `inet6`: an IPv6 probe (`ping -6`, socat `TCP6`) of the provider's IPv6 half (D183). */
  readonly family?: 'inet6' | undefined;
  readonly method: 'icmp' | 'tcp';
  readonly target: string;
  readonly tcpPort?: number | undefined;
  readonly interface: string;
  readonly mark: number;
  readonly timeoutMs: number;
}

export type ProbeRunner = (request: ProbeRequest) => Promise<ProbeOutcome>;

const SOL_SOCKET = 1;
const SO_MARK = 36;

/** The argument array of a probe (exported for tests and the docs). */
export function probeCommand(request: ProbeRequest): string[] {
  const seconds = (Math.max(request.timeoutMs, 1) / 1000).toFixed(3);
  if (request.method === 'icmp') {
    return [
      'ping',
      ...(request.family === 'inet6' ? ['-6'] : []),
      '-n',
      '-c',
      '1',
      '-W',
      seconds,
      '-m',
      String(request.mark),
      '-I',
      request.interface,
      request.target,
    ];
  }
  if (request.tcpPort === undefined) throw new Error('tcp probe without a port');
  return [
    'socat',
    '-T',
    seconds,
    '-u',
    'OPEN:/dev/null',
    `${request.family === 'inet6' ? `TCP6:[${request.target}]` : `TCP4:${request.target}`}:${request.tcpPort},connect-timeout=${seconds},so-bindtodevice=${request.interface},setsockopt-int=${SOL_SOCKET}:${SO_MARK}:${request.mark}`,
  ];
}

export interface ProcessProbeOptions {
  /** Prepended to every probe command (tests: `ip netns exec <ns>`). */
  readonly prefix?: readonly string[];
  /** Measures TCP connect time (ping reports its own round trip). */
  readonly now?: () => number;
}

/** Runs probes as child processes. */
export function processProbeRunner(options: ProcessProbeOptions = {}): ProbeRunner {
  const now = options.now ?? (() => performance.now());
  return (request) =>
    new Promise((resolve) => {
      const argv = [...(options.prefix ?? []), ...probeCommand(request)];
      const started = now();
      const cannotRun = (error: unknown) =>
        resolve({
          target: request.target,
          ok: false,
          inconclusive: true,
          error: spawnError(argv[0]!, error),
        });
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
      } catch (error) {
        cannotRun(error);
        return;
      }
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        if (stdout.length < 4096) stdout += chunk;
      });
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < 4096) stderr += chunk;
      });
      // ping and socat time out themselves; this only guards against a stuck child.
      const guard = setTimeout(() => child.kill('SIGKILL'), request.timeoutMs + 1000);
      const finish = (outcome: ProbeOutcome) => {
        clearTimeout(guard);
        resolve(outcome);
      };
      // 'error' is a spawn failure (no such program, not executable, no process slot): the
      // probe never ran, which says nothing about the uplink (D83). Node still emits 'close'
      // after it; the first outcome wins.
      child.on('error', (error) => {
        clearTimeout(guard);
        cannotRun(error);
      });
      child.on('close', (code) => {
        const elapsed = now() - started;
        if (code === 0) {
          const rtt = request.method === 'icmp' ? parsePingRtt(stdout) : elapsed;
          finish({ target: request.target, ok: true, ...(rtt === undefined ? {} : { rttMs: rtt }) });
          return;
        }
        const detail = firstLine(stderr);
        finish({
          target: request.target,
          ok: false,
          error: detail === '' ? `no reply within ${request.timeoutMs}ms` : detail,
        });
      });
    });
}

/** `cannot run ping: spawn ping ENOENT (not installed? Debian package iputils-ping)`. */
export function spawnError(program: string, error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const pkg = PACKAGES.get(program);
  const hint = code === 'ENOENT' && pkg !== undefined ? ` (not installed? Debian package ${pkg})` : '';
  return `cannot run ${program}: ${text}${hint}`;
}

/** The Debian package of each probe program, for the hint. */
const PACKAGES: ReadonlyMap<string, string> = new Map([
  ['ping', 'iputils-ping'],
  ['socat', 'socat'],
]);

/** `64 bytes from 203.0.113.1: icmp_seq=1 ttl=64 time=0.061 ms` → 0.061. */
export function parsePingRtt(stdout: string): number | undefined {
  const match = /time[=<]([\d.]+) ms/.exec(stdout);
  return match === null ? undefined : Number(match[1]);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 200) ?? '';
}
