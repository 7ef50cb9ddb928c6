/**
 * Kernel events for the daemon: `ip -o monitor label link address rule route` (both
 * families: IPv6 rules, routes and addresses are owned and followed too, D180), one line
 * per netlink notification, classified by its `[LINK]`/`[ADDR]`/`[RULE]`/`[ROUTE]` label and
 * nothing more (the daemon re-reads the kernel itself; the line only says "look now"). The
 * daemon runs inside the router's network namespace, so the monitor sees exactly that
 * kernel. A monitor that dies is restarted with backoff; `close` stops it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { CommandRunner } from '../dataplane/run-command.js';

/** `nft`: a change in table inet uplink (`nft monitor`, D152). */
/** `facts`: a delegated-prefix record changed (D155), not the kernel, but followed like a link event. */
export type KernelEventKind = 'link' | 'address' | 'rule' | 'route' | 'nft' | 'facts';

export interface KernelEvent {
  readonly kind: KernelEventKind;
  /** The interface of a link or address event, when the line names one. */
  readonly iface?: string;
  /** `inet6` for an IPv6 address event (link-local DAD, lifetime refreshes on every RA). */
  readonly family?: 'inet6';
}

/** Where kernel change notifications come from (ip monitor in production, anything in tests). */
export interface KernelEvents {
  onEvent(listener: (event: KernelEvent) => void): void;
  close(): Promise<void>;
}

export const IP_MONITOR_ARGV: readonly string[] = [
  'ip',
  '-o',
  'monitor',
  'label',
  'link',
  'address',
  'rule',
  'route',
];

const LABELS: Readonly<Record<string, KernelEventKind>> = {
  '[LINK]': 'link',
  '[ADDR]': 'address',
  '[RULE]': 'rule',
  '[ROUTE]': 'route',
};

/**
 * One `ip -o monitor label` line: `[LINK]3: ppp1@NONE: <…`, `[ADDR]Deleted 3: ppp1    inet …`,
 * `[RULE]…`, `[ROUTE]…`; undefined for anything else.
 */
export function parseMonitorLine(line: string): KernelEvent | undefined {
  const end = line.indexOf(']');
  const kind = end < 0 ? undefined : LABELS[line.slice(0, end + 1)];
  if (kind === undefined) return undefined;
  if (kind !== 'link' && kind !== 'address') return { kind };
  const match = /^(?:Deleted )?\d+: ([^\s:@]+)/.exec(line.slice(end + 1));
  const family = kind === 'address' && /\sinet6\s/.test(line) ? { family: 'inet6' as const } : {};
  return match === null ? { kind, ...family } : { kind, iface: match[1]!, ...family };
}

/**
 * `nft monitor` prints one line per netfilter change (`add rule inet uplink postrouting …`,
 * `delete rule inet uplink … handle 7`, `# new generation …`): the ruleset's own event
 * stream, where a poll of `nft list` cost the idle daemon a process every 500 ms (D152).
 */
export const NFT_MONITOR_ARGV: readonly string[] = ['nft', 'monitor'];

/** A change to table inet uplink (or the table itself) in `nft monitor` output; undefined for anything else. */
export function parseNftMonitorLine(line: string): KernelEvent | undefined {
  return /^(?:add|delete|destroy|replace|update|flush|reset) \S+ inet uplink(?:\s|$)/.test(line)
    ? { kind: 'nft' }
    : undefined;
}

/** Several event sources as one (ip monitor and nft monitor). */
export function mergeKernelEvents(...sources: readonly KernelEvents[]): KernelEvents {
  return {
    onEvent: (listener) => {
      for (const source of sources) source.onEvent(listener);
    },
    close: async () => {
      await Promise.all(sources.map((source) => source.close()));
    },
  };
}

export interface IpMonitorOptions {
  readonly log: (line: string) => void;
  readonly argv?: readonly string[];
  /** Classifies a line (default parseMonitorLine, for `ip monitor`). */
  readonly parse?: (line: string) => KernelEvent | undefined;
  /** Sent on each restart, for what happened while no monitor ran (default a link event: follow). */
  readonly restartEvent?: KernelEvent;
  /** First restart delay after the monitor dies (doubles up to 30 s; default 200 ms). */
  readonly restartMs?: number;
  /** Called each time a monitor process has started (tests, benchmarks). */
  readonly onStart?: () => void;
}

export class IpMonitor implements KernelEvents {
  readonly #options: IpMonitorOptions;
  readonly #listeners: ((event: KernelEvent) => void)[] = [];
  #child: ChildProcess | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #delay: number;
  #started = 0;
  #closed = false;
  /** Why the monitor last died, as logged: the same reason again is not logged again. */
  #lastWhy: string | undefined;

  constructor(options: IpMonitorOptions) {
    this.#options = options;
    this.#delay = options.restartMs ?? 200;
    this.#spawn();
  }

  onEvent(listener: (event: KernelEvent) => void): void {
    this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
  }

  #spawn(): void {
    const [file, ...args] = this.#options.argv ?? IP_MONITOR_ARGV;
    const startedAt = Date.now();
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    this.#child = child;
    let pending = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const event = (this.#options.parse ?? parseMonitorLine)(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        if (event !== undefined) for (const listener of this.#listeners) listener(event);
        newline = pending.indexOf('\n');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-500);
    });
    child.on('error', (error) => this.#died(child, startedAt, error.message));
    child.on('close', (code, signal) =>
      this.#died(child, startedAt, `exited ${signal ?? code}${stderr.trim() ? `: ${stderr.trim()}` : ''}`),
    );
    this.#options.onStart?.();
    // Whatever happened while no monitor ran is caught by the check a restart triggers.
    if (this.#started++ > 0)
      for (const listener of this.#listeners) listener(this.#options.restartEvent ?? { kind: 'link' });
  }

  #died(child: ChildProcess, startedAt: number, why: string): void {
    if (this.#child !== child || this.#closed) return;
    this.#child = undefined;
    // A monitor that ran a while was healthy: start over from the short delay.
    if (Date.now() - startedAt > 30_000) {
      this.#delay = this.#options.restartMs ?? 200;
      this.#lastWhy = undefined;
    }
    // Logged once per reason (a missing `ip` fails every restart the same way), not per restart.
    if (why !== this.#lastWhy) {
      this.#options.log(
        `kernel monitor (${(this.#options.argv ?? IP_MONITOR_ARGV).join(' ')}) ${why}; restarting with backoff (first in ${this.#delay} ms, at most 30 s)`,
      );
    }
    this.#lastWhy = why;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#closed) this.#spawn();
    }, this.#delay);
    this.#delay = Math.min(this.#delay * 2, 30_000);
  }
}

/**
 * Netfilter changes raise no rtnetlink event: the daemon polls table inet uplink with one
 * `nft -j list table inet uplink` and looks closer only when the text changes.
 */
export function nftTableFingerprint(): () => Promise<string> {
  const runner = new CommandRunner();
  return async () => {
    const result = await runner.run(['nft', '-j', 'list', 'table', 'inet', 'uplink']);
    return result.exitCode === 0 ? result.stdout : `exit ${result.exitCode}`;
  };
}
