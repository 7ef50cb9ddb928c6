/**
 * The operator's hook: a command run on every health transition (e.g. to notify), with the
 * transition in its environment. It never blocks the probes: the monitor does not wait for
 * it, it is killed after `timeoutMs`, and at most `MAX_RUNNING` run at once (more are
 * skipped and logged). No shell: the command is a path, run with no arguments (D35).
 */
import { spawn } from 'node:child_process';

export interface TransitionEvent {
  readonly site: string;
  readonly provider: string;
  readonly state: 'up' | 'down' | 'unknown';
  readonly previous: 'up' | 'down' | 'unknown';
  readonly reason: string;
  readonly at: number;
}

export const MAX_RUNNING = 4;

export class TransitionHook {
  #running = 0;

  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts the hook and resolves when it has finished (callers need not wait). */
  run(event: TransitionEvent): Promise<void> {
    if (this.#running >= MAX_RUNNING) {
      this.log(`on-transition: ${MAX_RUNNING} hooks still running; skipped ${event.provider} ${event.state}`);
      return Promise.resolve();
    }
    this.#running++;
    return new Promise<void>((resolve) => {
      const child = spawn(this.command, [], {
        shell: false,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          SITE: event.site,
          PROVIDER: event.provider,
          STATE: event.state,
          PREVIOUS: event.previous,
          REASON: event.reason,
          AT: new Date(event.at).toISOString(),
        },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < 1000) stderr += chunk;
      });
      const timer = setTimeout(() => {
        this.log(`on-transition: ${this.command} ran over ${this.timeoutMs}ms; killed`);
        child.kill('SIGKILL');
      }, this.timeoutMs);
      // A failed spawn (ENOENT, EACCES) emits `error` and then `close`: finish once, so the
      // count stays true and the cap holds, and the failure is not logged again as an exit.
      let finished = false;
      const done = () => {
        if (finished) return false;
        finished = true;
        clearTimeout(timer);
        this.#running--;
        resolve();
        return true;
      };
      child.on('error', (error) => {
        if (done()) this.log(`on-transition: ${this.command}: ${error.message}`);
      });
      child.on('close', (code, signal) => {
        if (!done()) return;
        if (code !== 0 && signal === null)
          this.log(`on-transition: ${this.command} exited ${code}: ${stderr.trim().slice(0, 200)}`);
      });
    });
  }
}
