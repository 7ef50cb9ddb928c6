/**
 * The agent's persistent state, in one directory (default /var/lib/uplink-agent):
 * - `snapshot.json` — what Uplink owned before the last apply that changed something; revert target;
 * - `applied.json`  — the last desired state applied (re-resolved by `reconcile`, basis for drift);
 * - `journal.jsonl` — one line per apply/revert, for people; past JOURNAL_MAX_BYTES it becomes
 *   `journal.1.jsonl` (replacing the one before) and a new one starts, so the journal of a router
 *   that follows a flapping uplink for years stays bounded (D154);
 * - `lock`          — held while an apply or revert runs.
 * Files are replaced atomically (temp file, fsync, rename, fsync dir), so a crash leaves the old
 * or the new version, never half of one. All I/O of the engine lives here.
 *
 * A write that fails because of the directory — read-only, full, not writable — throws a
 * StateDirError naming that fault and the operation (D103), never "locked" or a bare errno;
 * a failed write removes its temporary file. Every write, fsync, rename and the lock are
 * failpoints (D102).
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { classifyStateDirError, StateDirError, StateError, StateLockedError } from '../errors.js';
import { Failpoints, fsError } from '../faults/failpoints.js';
import { desiredState } from '../model/desired-state.js';
import { formatIssues } from '../model/format-issues.js';
import { kernelState } from '../model/kernel-state.js';

export const DEFAULT_STATE_DIR = '/var/lib/uplink-agent';

/** journal.jsonl is rotated to journal.1.jsonl when a line would take it past this (1 MiB: ~6,000 applies). */
export const JOURNAL_MAX_BYTES = 1024 * 1024;

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

export interface StateStoreOptions {
  readonly failpoints?: Failpoints | undefined;
  /** Told after every write whether it worked (the daemon's fault report, D103). */
  readonly onWrite?: ((outcome: WriteOutcome) => void) | undefined;
  /** Rotation size of journal.jsonl (default JOURNAL_MAX_BYTES; tests make it small). */
  readonly journalMaxBytes?: number | undefined;
}

/** One write's outcome; `bytes` is what it wrote or tried to (a full disk takes small writes longer). */
export type WriteOutcome =
  | { readonly ok: true; readonly file: string; readonly bytes: number }
  | { readonly ok: false; readonly file: string; readonly bytes: number; readonly error: Error };

export class StateStore {
  readonly #failpoints: Failpoints;
  readonly #onWrite: ((outcome: WriteOutcome) => void) | undefined;
  readonly #journalMaxBytes: number;

  constructor(
    readonly dir: string,
    options: StateStoreOptions = {},
  ) {
    this.#failpoints = options.failpoints ?? Failpoints.none;
    this.#onWrite = options.onWrite;
    this.#journalMaxBytes = options.journalMaxBytes ?? JOURNAL_MAX_BYTES;
  }

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

  /**
   * Writes, fsyncs and removes a small file the way every record is written: proof that the
   * directory takes writes again after a fault (the daemon's fault report, D103).
   */
  async probeWrite(bytes = 0): Promise<void> {
    await this.write(PROBE_FILE, { probe: 'x'.repeat(Math.max(0, bytes)) });
    await this.remove(PROBE_FILE);
  }

  async appendJournal(entry: Readonly<Record<string, unknown>>): Promise<void> {
    const name = 'journal.jsonl';
    const path = join(this.dir, name);
    const line = `${JSON.stringify(entry)}\n`;
    await this.#guard(name, `appending to ${name}`, Buffer.byteLength(line), async () => {
      await this.ensureDir();
      const size = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (size > 0 && size + Buffer.byteLength(line) > this.#journalMaxBytes) {
        await this.#point(`state.rename:${name}`, 'rename', path);
        await rename(path, join(this.dir, 'journal.1.jsonl'));
      }
      await this.#point(`state.append:${name}`, 'write', path);
      const file = await open(path, 'a', 0o600);
      try {
        await file.appendFile(line);
        await this.#point(`state.fsync:${name}`, 'fsync', path);
        await file.sync();
      } finally {
        await file.close();
      }
    });
  }

  /**
   * Runs `fn` holding the state directory's lock, so two applies (CLI and daemon) never
   * interleave. A lock left by a dead process is taken over.
   *
   * `evenIfUnwritable` (reverts): when the lock cannot be written because the directory is
   * read-only, full or not writable, run `fn` without it — putting the kernel back must not
   * wait for a disk, and no other writer can get an apply through that directory either
   * (its snapshot write fails before the kernel changes).
   */
  async withLock<T>(fn: () => Promise<T>, options: { evenIfUnwritable?: boolean } = {}): Promise<T> {
    try {
      await this.#takeLock();
    } catch (error) {
      if (options.evenIfUnwritable === true && error instanceof StateDirError) return fn();
      throw error;
    }
    try {
      return await fn();
    } finally {
      // A lock that cannot be removed (the filesystem went read-only meanwhile) names this
      // process, and this process takes it over next time (#takeLock).
      await rm(join(this.dir, 'lock'), { force: true }).catch(() => {});
    }
  }

  async #takeLock(): Promise<void> {
    const path = join(this.dir, 'lock');
    for (let attempt = 0; ; attempt++) {
      let created = false;
      try {
        await this.#guard('lock', 'taking the lock', 8, async () => {
          await this.ensureDir();
          await this.#point('state.lock', 'open', path);
          try {
            const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
            created = true;
            try {
              await file.writeFile(String(process.pid));
            } finally {
              await file.close();
            }
          } catch (error) {
            // A lock file we created but could not fill (a full disk) must not stay behind.
            if (created) await rm(path, { force: true }).catch(() => {});
            throw error;
          }
        });
        break;
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
        if (attempt > 0) {
          throw new StateLockedError(`state directory ${this.dir} is locked by another uplink-agent`, path);
        }
        const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
          throw new StateLockedError(
            `state directory ${this.dir} is locked by uplink-agent process ${holder}`,
            path,
          );
        }
        await rm(path, { force: true });
      }
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
    const path = join(this.dir, name);
    const temp = `${path}.tmp-${process.pid}`;
    let renamed = false;
    const text = `${JSON.stringify(value, null, 2)}\n`;
    try {
      await this.#guard(name, `writing ${name}`, Buffer.byteLength(text), async () => {
        await this.ensureDir();
        await this.#point(`state.write:${name}`, 'open', temp);
        const file = await open(temp, 'w', 0o600);
        try {
          await file.writeFile(text);
          await this.#point(`state.fsync:${name}`, 'fsync', temp);
          await file.sync();
        } finally {
          await file.close();
        }
        await this.#point(`state.rename:${name}`, 'rename', path);
        await rename(temp, path);
        renamed = true;
        await this.#point(`state.fsync-dir:${name}`, 'fsync', this.dir);
        await this.syncDir();
      });
    } finally {
      // A half-written temporary file only takes space (and on a full disk, the last of it).
      if (!renamed) await rm(temp, { force: true }).catch(() => {});
    }
  }

  private async remove(name: string): Promise<void> {
    const path = join(this.dir, name);
    await this.#guard(name, `removing ${name}`, 0, async () => {
      await this.#point(`state.remove:${name}`, 'unlink', path);
      await rm(path, { force: true });
    });
    await this.syncDir().catch(() => {});
  }

  /** Runs one write operation; a filesystem failure becomes the StateDirError it is. */
  async #guard(file: string, operation: string, bytes: number, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      // EEXIST is the lock held by someone else: withLock's business, not the directory's.
      if (isErrno(error, 'EEXIST')) throw error;
      const failure = classifyStateDirError(error, this.dir, operation) ?? error;
      this.#onWrite?.({ ok: false, file, bytes, error: failure as Error });
      throw failure;
    }
    this.#onWrite?.({ ok: true, file, bytes });
  }

  #point(point: string, syscall: string, path: string): Promise<void> | undefined {
    return this.#failpoints.hit(point, (action) =>
      action.kind === 'errno' ? fsError(action.code, syscall, path) : new Error(`${point}: ${action.kind}`),
    );
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

const PROBE_FILE = 'write-probe.json';
const ENGINE_FILES = new Set([
  'snapshot.json',
  'applied.json',
  'journal.jsonl',
  'journal.1.jsonl',
  'lock',
  PROBE_FILE,
]);

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
