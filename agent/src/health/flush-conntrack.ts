/**
 * Drops the conntrack entries pinned to one uplink: those whose ct mark, under Uplink's
 * mask, is that provider's mark (track saved it when the connection arrived there). Never
 * the whole table: connections over the other uplinks and unmarked ones stay (D34).
 */
import type { CommandRunner } from '../dataplane/run-command.js';

export function conntrackFlushCommand(mark: number, markMask: number): string[] {
  return ['conntrack', '-D', '-f', 'ipv4', '-m', `${hex(mark)}/${hex(markMask)}`];
}

/** Resolves with how many entries were deleted; throws when conntrack fails. */
export async function flushConntrackMark(
  runner: CommandRunner,
  mark: number,
  markMask: number,
): Promise<number> {
  const result = await runner.run(conntrackFlushCommand(mark, markMask));
  // conntrack exits 1 when nothing matched; its summary line is on stderr either way.
  const match = /(\d+) flow entries have been deleted/.exec(result.stderr);
  if (match !== null) return Number(match[1]);
  throw new Error(`conntrack -D exited ${result.exitCode}: ${result.stderr.trim().slice(0, 200)}`);
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
