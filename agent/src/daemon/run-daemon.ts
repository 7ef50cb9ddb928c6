/** The daemon as a process: start, log to stderr (journald), stop cleanly on SIGTERM/SIGINT. */
import type { Dataplane } from '../dataplane/dataplane.js';
import { startDaemon } from './daemon.js';

export interface RunDaemonOptions {
  readonly stateDir: string;
  readonly socketPath: string;
  readonly dataplane: (markMask: number | undefined) => Dataplane;
  readonly stderr: (text: string) => void;
}

/** Resolves when the daemon has stopped after a signal. Startup errors reject. */
export async function runDaemon(options: RunDaemonOptions): Promise<void> {
  const log = (line: string) => options.stderr(`uplink-agent: ${line}\n`);
  const daemon = await startDaemon({
    stateDir: options.stateDir,
    socketPath: options.socketPath,
    dataplane: options.dataplane,
    log,
  });
  log(`listening on ${daemon.socketPath} (state in ${options.stateDir})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      log(`${signal}: stopping`);
      void daemon.close().then(resolve, (error: unknown) => {
        log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
