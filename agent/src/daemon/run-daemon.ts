/** The daemon as a process: start, log to stderr (journald), stop cleanly on SIGTERM/SIGINT. */
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Failpoints } from '../faults/failpoints.js';
import { startDaemon } from './daemon.js';
import { watchDelegated } from './delegated-watch.js';
import type { WatchOptions } from './drift-watch.js';
import type { HealthSource } from './health-source.js';
import {
  IpMonitor,
  mergeKernelEvents,
  NFT_MONITOR_ARGV,
  nftTableFingerprint,
  parseNftMonitorLine,
} from './kernel-watch.js';

/** With nft monitor, the table poll is a fallback only (D152). */
export const NFT_FALLBACK_POLL_MS = 15_000;

export interface RunDaemonOptions {
  readonly stateDir: string;
  readonly socketPath: string;
  readonly dataplane: (markMask: number | undefined) => Dataplane;
  /** Fault injection at every state write (D102); the dataplane factory wraps its own. */
  readonly failpoints?: Failpoints;
  readonly stderr: (text: string) => void;
  /** Provider health (the probe engine); default: every provider up. Closed when the daemon stops. */
  readonly health?: HealthSource;
  /**
   * Overrides for the kernel watch (follow + drift). By default it watches `ip monitor` and
   * `nft monitor`, polls table inet uplink every 15 s (in case nft monitor missed a change or
   * cannot run) and runs a full check every 30 s.
   */
  readonly watch?: Partial<WatchOptions>;
}

/** Resolves when the daemon has stopped after a signal. Startup errors reject. */
export async function runDaemon(options: RunDaemonOptions): Promise<void> {
  const log = (line: string) => options.stderr(`uplink-agent: ${line}\n`);
  const watch: WatchOptions = {
    events: mergeKernelEvents(
      await watchDelegated(options.stateDir, log),
      new IpMonitor({ log }),
      new IpMonitor({
        log,
        argv: NFT_MONITOR_ARGV,
        parse: parseNftMonitorLine,
        restartEvent: { kind: 'nft' },
      }),
    ),
    fingerprint: nftTableFingerprint(),
    pollMs: NFT_FALLBACK_POLL_MS,
    ...options.watch,
  };
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon({
      stateDir: options.stateDir,
      socketPath: options.socketPath,
      dataplane: options.dataplane,
      log,
      watch,
      ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
      ...(options.health === undefined ? {} : { health: options.health }),
    });
  } catch (error) {
    await watch.events?.close();
    await options.health?.close();
    throw error;
  }
  log(`listening on ${daemon.socketPath} (state in ${options.stateDir})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      log(`${signal}: stopping`);
      void daemon
        .close()
        .then(() => options.health?.close())
        .then(resolve, (error: unknown) => {
          log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
          resolve();
        });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
