/**
 * The agent's persistent state, in one directory (default /var/lib/uplink-agent):
 * - `snapshot.json` — what Uplink owned before the last apply that changed something; revert target;
 * - `applied.json`  — the last desired state applied (re-resolved by `reconcile`, basis for drift);
 * - `journal.jsonl` — one line per apply/revert, for people;
 * - `lock`          — held while an apply or revert runs.
 * Files are replaced atomically (temp file, fsync, rename, fsync dir), so a crash leaves the old
 * or the new version, never half of one. All I/O of the engine lives here.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { StateError } from '../errors.js';
import { desiredState } from '../model/desired-state.js';
import { formatIssues } from '../model/format-issues.js';
import { kernelState } from '../model/kernel-state.js';

export const DEFAULT_STATE_DIR = '/var/lib/uplink-agent';

const ownershipScopeSchema = z
  .object({
    protocols: z.array(z.number().int()),
    tables: z.array(z.number().int()),
    adoptTables: z.array(z.number().int()),
    sysctls: z.array(z.string()),
  })
  .strict();

export const appliedRecord = z
  .object({ version: z.literal(1), appliedAt: z.string(), desired: desiredState })
  .strict();
export type AppliedRecord = z.infer<typeof appliedRecord>;

export const snapshotRecord = z
  .object({
    version: z.literal(1),
    createdAt: z.string(),
    /** Owned state (rules, routes, nft, previous sysctl values) before the apply. */
    state: kernelState,
    /** Ownership at the time: what a revert may create and delete. */
    scope: ownershipScopeSchema,
    markMask: z.number().int(),
    /** The applied record that `state` corresponds to; restored by revert. */
    previous: appliedRecord.nullable(),
  })
  .strict();
export type SnapshotRecord = z.infer<typeof snapshotRecord>;

export class StateStore {
  constructor(readonly dir: string) {}

  readSnapshot(): Promise<SnapshotRecord | undefined> {
    return this.read('snapshot.json', snapshotRecord);
  }

  writeSnapshot(snapshot: SnapshotRecord): Promise<void> {
    return this.write('snapshot.json', snapshot);
  }

  removeSnapshot(): Promise<void> {
    return this.remove('snapshot.json');
  }

  readApplied(): Promise<AppliedRecord | undefined> {
    return this.read('applied.json', appliedRecord);
  }

  writeApplied(record: AppliedRecord): Promise<void> {
    return this.write('applied.json', record);
  }

  removeApplied(): Promise<void> {
    return this.remove('applied.json');
  }

  /**
   * Another component's record in this directory (the daemon's commit journal), read and
   * validated like the engine's own files.
   */
  readRecord<T>(name: string, schema: z.ZodType<T>): Promise<T | undefined> {
    return this.read(checkRecordName(name), schema);
  }

  /** Written the same atomic way as the engine's own files (temp, fsync, rename, fsync dir). */
  writeRecord(name: string, value: unknown): Promise<void> {
    return this.write(checkRecordName(name), value);
  }

  async appendJournal(entry: Readonly<Record<string, unknown>>): Promise<void> {
    await this.ensureDir();
    const file = await open(join(this.dir, 'journal.jsonl'), 'a', 0o600);
    try {
      await file.appendFile(`${JSON.stringify(entry)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
  }

  /**
   * Runs `fn` holding the state directory's lock, so two applies (CLI and daemon) never
   * interleave. A lock left by a dead process is taken over.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensureDir();
    const path = join(this.dir, 'lock');
    for (let attempt = 0; ; attempt++) {
      try {
        const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        await file.writeFile(String(process.pid));
        await file.close();
        break;
      } catch (error) {
        if (!isErrno(error, 'EEXIST') || attempt > 0) {
          throw new StateError(`state directory ${this.dir} is locked by another uplink-agent`, path);
        }
        const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
          throw new StateError(
            `state directory ${this.dir} is locked by uplink-agent process ${holder}`,
            path,
          );
        }
        await rm(path, { force: true });
      }
    }
    try {
      return await fn();
    } finally {
      await rm(path, { force: true });
    }
  }

  private async read<T>(name: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const path = join(this.dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw new StateError(`cannot read ${path}: ${(error as Error).message}`, path);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new StateError(`${path} is not valid JSON: ${(error as Error).message}`, path);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new StateError(
        `${path} is not a valid ${name}: ${formatIssues(parsed.error.issues, 1).join('')}`,
        path,
      );
    }
    return parsed.data;
  }

  private async write(name: string, value: unknown): Promise<void> {
    await this.ensureDir();
    const path = join(this.dir, name);
    const temp = `${path}.tmp-${process.pid}`;
    const file = await open(temp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    await this.syncDir();
  }

  private async remove(name: string): Promise<void> {
    await rm(join(this.dir, name), { force: true });
    await this.syncDir().catch(() => {});
  }

  private async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Makes a rename durable: the directory entry itself must reach the disk. */
  private async syncDir(): Promise<void> {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

const ENGINE_FILES = new Set(['snapshot.json', 'applied.json', 'journal.jsonl', 'lock']);

function checkRecordName(name: string): string {
  if (!/^[a-z0-9][a-z0-9.-]{0,63}\.json$/.test(name) || ENGINE_FILES.has(name)) {
    throw new StateError(`${name}: not a record name another component may use`);
  }
  return name;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isErrno(error, 'EPERM');
  }
}
