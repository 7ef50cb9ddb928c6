/**
 * Drops the conntrack entries tied to one dead uplink, never the whole table:
 * - by mark: those whose ct mark, under Uplink's mask, is that provider's mark (track saved
 *   it when the connection arrived there) (D34);
 * - by NAT address: those whose reply destination is the provider's address, i.e. LAN
 *   connections source-NATed to it when they left by it through the main or balanced route.
 *   They carry no mark; kept, their packets would take the new route with the dead uplink's
 *   address and stall (D84).
 * Connections over the other uplinks stay.
 */
import type { CommandRunner } from '../dataplane/run-command.js';

type Runner = Pick<CommandRunner, 'run'>;

export function conntrackFlushCommand(
  mark: number,
  markMask: number,
  family: 'ipv4' | 'ipv6' = 'ipv4',
): string[] {
  return ['conntrack', '-D', '-f', family, '-m', `${hex(mark)}/${hex(markMask)}`];
}

/** `address` is a validated IPv4 address (from the facts or the spec). */
export function conntrackNatFlushCommand(address: string): string[] {
  return ['conntrack', '-D', '-f', 'ipv4', '--reply-dst', address];
}

/** Resolves with how many entries were deleted; throws when conntrack fails. */
export function flushConntrackMark(
  runner: Runner,
  mark: number,
  markMask: number,
  family: 'ipv4' | 'ipv6' = 'ipv4',
): Promise<number> {
  return deleted(runner, conntrackFlushCommand(mark, markMask, family));
}

/** Resolves with how many entries NATed to `address` were deleted; throws when conntrack fails. */
export function flushConntrackNat(runner: Runner, address: string): Promise<number> {
  return deleted(runner, conntrackNatFlushCommand(address));
}

async function deleted(runner: Runner, argv: readonly string[]): Promise<number> {
  const result = await runner.run(argv);
  // conntrack exits 1 when nothing matched (0 deleted, not an error); its summary line is on
  // stderr either way.
  const match = /(\d+) flow entries have been deleted/.exec(result.stderr);
  if (match !== null) return Number(match[1]);
  throw new Error(`conntrack -D exited ${result.exitCode}: ${result.stderr.trim().slice(0, 200)}`);
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
