/**
 * The journal stays bounded (D154): past its size it is rotated to journal.1.jsonl, once,
 * and the newest lines are always in journal.jsonl.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JOURNAL_MAX_BYTES, StateStore } from './state-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (file: string) =>
  (await readFile(join(dir, file), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { n: number }).n);

describe('StateStore journal', () => {
  it('2,000 appends past a 4 KiB bound: two files, each within it, the newest lines in order', async () => {
    const store = new StateStore(dir, { journalMaxBytes: 4096 });
    for (let n = 0; n < 2000; n++) await store.appendJournal({ op: 'apply', n, result: 'ok' });
    expect((await readdir(dir)).sort()).toEqual(['journal.1.jsonl', 'journal.jsonl']);
    expect((await stat(join(dir, 'journal.jsonl'))).size).toBeLessThanOrEqual(4096);
    expect((await stat(join(dir, 'journal.1.jsonl'))).size).toBeLessThanOrEqual(4096);
    const older = await lines('journal.1.jsonl');
    const newer = await lines('journal.jsonl');
    const all = [...older, ...newer];
    // Consecutive, ending at the last append: nothing lost inside the window kept.
    expect(all[all.length - 1]).toBe(1999);
    expect(all).toEqual(all.map((_, i) => all[0]! + i));
    expect(all.length).toBeGreaterThan(100);
  });

  it('below the default bound nothing is rotated', async () => {
    const store = new StateStore(dir);
    for (let n = 0; n < 50; n++) await store.appendJournal({ op: 'apply', n });
    expect(await readdir(dir)).toEqual(['journal.jsonl']);
    expect(await lines('journal.jsonl')).toHaveLength(50);
    expect(JOURNAL_MAX_BYTES).toBe(1024 * 1024);
  });
});
