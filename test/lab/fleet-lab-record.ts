/**
 * What a fleet lab created, persisted as `<dir>/lab.json` after every step, so that `down`
 * (another process, maybe after a crash of `up`) deletes exactly that: processes by pid
 * (checked against their start time, so a recycled pid is never killed), host links and
 * namespaces by name, and the lab directory. Nothing here ever matches by pattern.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LabProcessRecord {
  /** What the process is, e.g. `sshd home-pppoe`, `agent home-pppoe`, `controller`. */
  readonly name: string;
  readonly pid: number;
  /** Field 22 of /proc/PID/stat when started: tells our process from a later one with the same pid. */
  readonly startTime: string;
  readonly argv: readonly string[];
  readonly log: string;
}

export interface FleetLabRecord {
  readonly version: 1;
  readonly dir: string;
  /** Every namespace created, in creation order. */
  namespaces: string[];
  /** Host-side links (the management bridge and veth ends), deleted before the namespaces. */
  hostLinks: string[];
  processes: LabProcessRecord[];
  /** The lab's description for `status` and for tests (sites, addresses, keys); set when up. */
  lab?: unknown;
}

export const RECORD_FILE = 'lab.json';

export function readRecord(dir: string): FleetLabRecord | undefined {
  const file = join(dir, RECORD_FILE);
  if (!existsSync(file)) return undefined;
  const value = JSON.parse(readFileSync(file, 'utf8')) as FleetLabRecord;
  if (value.version !== 1 || !Array.isArray(value.namespaces) || !Array.isArray(value.processes))
    throw new Error(`${file}: not a fleet lab record (version 1)`);
  return value;
}

/** Atomic: a crash never leaves a half-written record behind. */
export function writeRecord(record: FleetLabRecord): void {
  const file = join(record.dir, RECORD_FILE);
  writeFileSync(`${file}.new`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.new`, file);
}

/** Start time of `pid` from /proc, or undefined when there is no such process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function isRecordedProcessAlive(p: LabProcessRecord): boolean {
  return processStartTime(p.pid) === p.startTime;
}

/** Kills the recorded processes (SIGTERM, SIGKILL after 3 s) — only those still being the ones we started. */
export async function killRecordedProcesses(processes: readonly LabProcessRecord[]): Promise<void> {
  const alive = () => processes.filter(isRecordedProcessAlive);
  for (const p of alive()) signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const p of alive()) signal(p.pid, 'SIGKILL');
  while (alive().some((p) => !isZombie(p.pid))) await new Promise((r) => setTimeout(r, 20));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Deletes everything the record lists, then (when `removeDir`) the lab directory. Safe to run
 * twice and after a partial `up`. Returns what could not be deleted (empty: nothing is left).
 */
export async function teardownRecord(record: FleetLabRecord, removeDir: boolean): Promise<string[]> {
  const problems: string[] = [];
  await killRecordedProcesses(record.processes);
  for (const p of record.processes)
    if (isRecordedProcessAlive(p) && !isZombie(p.pid)) problems.push(`process ${p.name} (pid ${p.pid})`);
  for (const link of [...record.hostLinks].reverse()) {
    const r = spawnSync('ip', ['link', 'del', link], { encoding: 'utf8' });
    if (r.status !== 0 && !/Cannot find device/.test(r.stderr))
      problems.push(`link ${link}: ${r.stderr.trim()}`);
  }
  for (const ns of [...record.namespaces].reverse()) {
    const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
    if (r.status !== 0 && !/No such file/.test(r.stderr)) problems.push(`netns ${ns}: ${r.stderr.trim()}`);
  }
  if (removeDir) rmSync(record.dir, { recursive: true, force: true });
  return problems;
}
