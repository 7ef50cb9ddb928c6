/**
 * Runs external commands with argument arrays (never a shell) and counts them, so tests and
 * benchmarks can check that the number of processes does not grow with the number of rules.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. */
  readonly stdin?: string;
}

export class CommandRunner {
  #count = 0;

  /** How many processes this runner has started. */
  get count(): number {
    return this.#count;
  }

  /** Runs `argv[0]` with `argv.slice(1)`; resolves with the exit status, never throws on one. */
  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new Error('runCommand: empty argument list'));
    this.#count++;
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', reject);
      // A child that exits before reading its stdin makes the write fail with EPIPE; the
      // exit status and stderr say why, so that error is not the interesting one.
      child.stdin.on('error', () => {});
      child.on('close', (exitCode, signal) =>
        resolve({
          exitCode,
          signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }),
      );
      child.stdin.end(options.stdin ?? '');
    });
  }
}

/** `cmd arg …` for messages; arguments with unusual characters are JSON-quoted. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
}
