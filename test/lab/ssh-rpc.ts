/** One JSON-lines exchange with the agent over SSH (OpenSSH client), as the tests drive it. */
import type { Lab } from './lab.js';
import { type NamespaceSshd, sshArgv } from './sshd-in-namespace.js';

/**
 * One SSH connection from namespace `ns` as root with `key`: `input` is sent, then EOF. Never
 * throws on a non-zero exit; `answers` are stdout's lines, parsed as JSON.
 */
export async function sshRpc(
  lab: Lab,
  ns: string,
  sshd: NamespaceSshd,
  key: string,
  input: string,
  remote: readonly string[] = [],
) {
  const result = await lab.exec(ns, sshArgv(sshd, key, 'root', remote), {
    stdin: input,
    allowFailure: true,
    timeoutMs: 60_000,
  });
  const answers = result.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...result, answers };
}
