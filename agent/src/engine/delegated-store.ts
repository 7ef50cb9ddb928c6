/**
 * The delegated-prefix records in the state directory (D155): `uplink-agent delegated`
 * writes them (atomically: a temporary file, fsync, rename, fsync of the directory), the
 * agent reads them with the kernel's facts, and the daemon watches the directory.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type DelegatedRecord, delegatedRecord, mergeDelegated } from '../core/delegated-facts.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { StateError } from '../errors.js';

export function delegatedDir(stateDir: string): string {
  return join(stateDir, 'delegated');
}

/** Every readable record; one that is not (half-written by hand, another version) is skipped and named. */
export async function readDelegated(
  stateDir: string,
): Promise<{ records: DelegatedRecord[]; unreadable: string[] }> {
  const dir = delegatedDir(stateDir);
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  const records: DelegatedRecord[] = [];
  const unreadable: string[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json')) continue;
    try {
      const parsed = delegatedRecord.safeParse(JSON.parse(await readFile(join(dir, name), 'utf8')));
      if (parsed.success && `${parsed.data.interface}.json` === name) records.push(parsed.data);
      else unreadable.push(name);
    } catch {
      unreadable.push(name);
    }
  }
  return { records, unreadable };
}

/** Replaces the interface's record; `prefixes` empty removes it (`--clear`). */
export async function writeDelegated(stateDir: string, record: DelegatedRecord): Promise<void> {
  const dir = delegatedDir(stateDir);
  const file = join(dir, `${record.interface}.json`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    if (record.prefixes.length === 0) await rm(file, { force: true });
    else {
      const temporary = `${file}.tmp-${process.pid}`;
      const handle = await open(temporary, 'w', 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(record)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, file);
    }
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch (error) {
    throw new StateError(
      `cannot record the delegated prefix of ${record.interface} in ${dir}: ${(error as Error).message}`,
    );
  }
}

/** The dataplane whose facts carry the delegated prefixes still valid (read on every call). */
export function withDelegatedFacts(dataplane: Dataplane, stateDir: string, now: () => number): Dataplane {
  const merge = async <T extends { facts: Parameters<typeof mergeDelegated>[0] }>(read: T): Promise<T> => {
    const { records } = await readDelegated(stateDir);
    return records.length === 0 ? read : { ...read, facts: mergeDelegated(read.facts, records, now()) };
  };
  const wrapped: Dataplane = {
    readFacts: async () => (await merge({ facts: await dataplane.readFacts() })).facts,
    readKernel: (request) => dataplane.readKernel(request),
    apply: (steps) => dataplane.apply(steps),
  };
  const readCurrent = dataplane.readCurrent?.bind(dataplane);
  if (readCurrent !== undefined) wrapped.readCurrent = async (request) => merge(await readCurrent(request));
  return wrapped;
}
