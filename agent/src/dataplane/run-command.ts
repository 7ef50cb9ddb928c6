/**
 * Runs external commands with argument arrays (never a shell) and counts them, so tests and
 * benchmarks can check that the number of processes does not grow with the number of rules.
 *
 * A program that is not installed (spawn ENOENT, EACCES) is a ToolMissingError naming it
 * (D103), and every command has a deadline: a kernel command that hangs is killed, so an
 * apply — and the revert behind it — can never wait forever (D100).
 */
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { errnoCode, ToolMissingError } from '../errors.js';

export interface CommandResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. */
  readonly stdin?: string;
  /** Kill the child (SIGKILL) after this long; default the runner's. */
  readonly timeoutMs?: number;
}

/** Default deadline of one command: a reconcile of 20,000 rules takes a few seconds. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;

export class CommandRunner {
  #count = 0;
  readonly #timeoutMs: number;

  constructor(options: { readonly timeoutMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  /** How many processes this runner has started. */
  get count(): number {
    return this.#count;
  }

  /**
   * Runs `argv[0]` with `argv.slice(1)`; resolves with the exit status, never throws on one.
   * Rejects with ToolMissingError when the program cannot be started. A child killed at its
   * deadline resolves with signal SIGKILL and a note on stderr.
   */
  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new Error('runCommand: empty argument list'));
    this.#count++;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', (error) => {
        clearTimeout(timer);
        const code = errnoCode(error);
        reject(
          code === 'ENOENT' || code === 'EACCES'
            ? new ToolMissingError(basename(file), `spawn ${file} ${code}`)
            : error,
        );
      });
      // A child that exits before reading its stdin makes the write fail with EPIPE; the
      // exit status and stderr say why, so that error is not the interesting one.
      child.stdin.on('error', () => {});
      child.on('close', (exitCode, signal) => {
        clearTimeout(timer);
        const note = timedOut ? `\n(killed: no exit within ${timeoutMs} ms)` : '';
        resolve({
          exitCode,
          signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8') + note,
        });
      });
      child.stdin.end(options.stdin ?? '');
    });
  }
}

/**
 * `ip netns exec NS tool …` cannot say "not installed" with a spawn error: ip execs the tool
 * itself and prints `exec of "nft" failed: No such file or directory`. The tool it names, if any.
 */
export function missingToolInNetnsExec(stderr: string): string | undefined {
  return /exec of "([^"]+)" failed: (?:No such file or directory|Permission denied)/.exec(stderr)?.[1];
}

/** `cmd arg …` for messages; arguments with unusual characters are JSON-quoted. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
}
