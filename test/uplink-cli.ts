/** The built `uplink` CLI (dist/uplink.mjs) run from the checkout's root, and git with a test identity. */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './build-dist.js';

const CLI = join(ROOT, 'dist/uplink.mjs');
const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `uplink ARGS`; a non-zero exit is a result, not an error. */
export async function uplinkCli(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `git -C repo ARGS` as a test committer; returns stdout, trimmed. */
export function git(repo: string, ...args: string[]): string {
  return execFileSync(
    'git',
    ['-C', repo, '-c', 'user.name=Uplink Test', '-c', 'user.email=test@example.org', ...args],
    { encoding: 'utf8' },
  ).trim();
}
