/**
 * The daemon's commit-confirmed journal, `commit.json` in the state directory, written
 * atomically through the engine's StateStore: what is applied (confirmed), what is pending
 * (with its persisted revert deadline) and the last revert. The engine's own files
 * (snapshot.json, applied.json) stay the engine's; `pending.snapshotAt` ties a pending apply
 * to the snapshot it must revert to.
 */
import { z } from 'zod';
import type { StateStore } from '../engine/state-store.js';
import { generationInfo, pendingInfo, revertInfo } from '../model/protocol.js';

export const COMMIT_FILE = 'commit.json';

export const pendingRecord = pendingInfo
  .extend({
    /** `applying`: written before the first kernel change; `armed`: applied, verified, awaiting confirm. */
    phase: z.enum(['applying', 'armed']),
    /** createdAt of the snapshot this apply wrote: the state a revert restores. */
    snapshotAt: z.string(),
    confirmWithinMs: z.number().int(),
  })
  .strict();
export type PendingRecord = z.infer<typeof pendingRecord>;

export const commitRecord = z
  .object({
    version: z.literal(1),
    applied: generationInfo.nullable(),
    pending: pendingRecord.nullable(),
    lastRevert: revertInfo.nullable(),
  })
  .strict();
export type CommitRecord = z.infer<typeof commitRecord>;

export const EMPTY_COMMIT_RECORD: CommitRecord = {
  version: 1,
  applied: null,
  pending: null,
  lastRevert: null,
};

export async function readCommitRecord(store: StateStore): Promise<CommitRecord> {
  return (await store.readRecord(COMMIT_FILE, commitRecord)) ?? EMPTY_COMMIT_RECORD;
}

export function writeCommitRecord(store: StateStore, record: CommitRecord): Promise<void> {
  return store.writeRecord(COMMIT_FILE, record);
}
