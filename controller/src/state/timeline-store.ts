/**
 * The per-site timelines on disk (D127): `<stateDir>/timeline/<site>.jsonl`, one JSON entry
 * per line, appended as things happen, and `_fleet.jsonl` for the fleet's own events
 * (commits, rollouts, suspension). Each file keeps the newest TIMELINE_LIMIT entries: it is
 * appended to and rewritten (atomically) once it holds twice that many. In memory, every
 * timeline is read once and then kept.
 *
 * A lost or torn last line (a crash mid-append) is skipped when read; entries derived from
 * the agents' reports carry keys, so a restarted controller does not record them twice.
 */
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { boundTimeline, TIMELINE_LIMIT, type TimelineEntry } from '../report/site-timeline.js';
import { writeFileAtomic } from './write-file-atomic.js';

/** The fleet-wide timeline's name (site names start with a letter or digit). */
export const FLEET_TIMELINE = '_fleet';

export class TimelineStore {
  readonly #dir: string;
  readonly #limit: number;
  readonly #entries = new Map<string, TimelineEntry[]>();
  /** Lines in each file (to know when to compact). */
  readonly #lines = new Map<string, number>();
  /** Per timeline: the write chain (appends never overlap, and keep their order). */
  readonly #writing = new Map<string, Promise<void>>();
  #lastError: string | null = null;

  private constructor(dir: string, limit: number) {
    this.#dir = dir;
    this.#limit = limit;
  }

  /** Opens (creates) `dir` and reads every timeline in it. */
  static async open(dir: string, limit = TIMELINE_LIMIT): Promise<TimelineStore> {
    const store = new TimelineStore(dir, limit);
    await mkdir(dir, { recursive: true });
    for (const file of await readdir(dir)) {
      const m = /^(.+)\.jsonl$/.exec(file);
      if (m) await store.#load(m[1]!);
    }
    return store;
  }

  /** Reads one site's timeline from a state dir without opening the store (`uplink status SITE`). */
  static async read(dir: string, name: string, limit = TIMELINE_LIMIT): Promise<TimelineEntry[]> {
    return boundTimeline(
      parseLines(await readFile(join(dir, `${name}.jsonl`), 'utf8').catch(() => '')),
      limit,
    );
  }

  /** Oldest first, at most the limit. */
  list(name: string): readonly TimelineEntry[] {
    return this.#entries.get(name) ?? [];
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The last write failure, if the newest entries may not be on disk. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Adds entries (those whose key is already recorded are dropped); returns the ones added. */
  append(name: string, entries: readonly TimelineEntry[]): TimelineEntry[] {
    if (!/^(?:_fleet|[a-z0-9][a-z0-9_.-]{0,62})$/.test(name))
      throw new Error(`timeline ${name}: not a site name`);
    const current = this.#entries.get(name) ?? [];
    const keys = new Set(current.flatMap((e) => (e.key ? [e.key] : [])));
    const added = entries.filter((e) => {
      if (e.key === undefined) return true;
      if (keys.has(e.key)) return false;
      keys.add(e.key);
      return true;
    });
    if (added.length === 0) return [];
    this.#entries.set(name, boundTimeline([...current, ...added], this.#limit));
    const lines = (this.#lines.get(name) ?? 0) + added.length;
    this.#lines.set(name, lines);
    const file = join(this.#dir, `${name}.jsonl`);
    const compact = lines > 2 * this.#limit;
    const write = async () => {
      if (compact) {
        const all = this.#entries.get(name) ?? [];
        await writeFileAtomic(file, all.map((e) => `${JSON.stringify(e)}\n`).join(''));
        this.#lines.set(name, all.length);
      } else {
        await appendFile(file, added.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o600 });
      }
    };
    const previous = this.#writing.get(name) ?? Promise.resolve();
    const next = previous.then(write).then(
      () => {
        this.#lastError = null;
      },
      (e: unknown) => {
        this.#lastError = `${file}: ${e instanceof Error ? e.message : String(e)}`;
      },
    );
    this.#writing.set(name, next);
    return added;
  }

  /** Resolves once every append so far is on disk (or failed: see lastError). */
  async flush(): Promise<void> {
    await Promise.all(this.#writing.values());
  }

  async #load(name: string): Promise<void> {
    const text = await readFile(join(this.#dir, `${name}.jsonl`), 'utf8');
    const entries = parseLines(text);
    this.#lines.set(name, entries.length);
    this.#entries.set(name, boundTimeline(entries, this.#limit));
  }
}

function parseLines(text: string): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const e = JSON.parse(line) as TimelineEntry;
      if (typeof e?.at === 'number' && typeof e.kind === 'string' && typeof e.message === 'string')
        out.push(e);
    } catch {
      // a torn last line after a crash: skipped
    }
  }
  return out;
}
