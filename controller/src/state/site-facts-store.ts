/**
 * Each site's last reported router facts, one file per site under `<state-dir>/facts/`
 * (D171): written by `uplink run` when a site's facts change (an unchanged hash is not
 * written again), read by `uplink explain` and `uplink plan`. When the router last confirmed
 * them is in status.json (`sites[].facts.reportedAt`), which is rewritten anyway.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FactsRecord, factsRecord } from '#agent/model';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from './write-file-atomic.js';

export const FACTS_DIR = 'facts';

export function siteFactsFile(stateDir: string, site: string): string {
  return join(stateDir, FACTS_DIR, `${site}.json`);
}

export async function writeSiteFacts(
  stateDir: string,
  record: FactsRecord & { site: string },
): Promise<void> {
  await writeFileAtomic(siteFactsFile(stateDir, record.site), `${JSON.stringify(record)}\n`);
}

/** The facts in `file`; undefined when it does not exist; an error naming the file when it is not facts. */
export async function readFactsFile(file: string): Promise<FactsRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseFactsRecord(text, file);
}

export function parseFactsRecord(text: string, file: string): FactsRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${file}: not router facts (not JSON: ${(error as Error).message}); write the output of \`uplink-agent show --facts\` or a file from <state-dir>/facts/`,
    );
  }
  const parsed = factsRecord.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new UsageError(
      `${file}: not router facts at ${first.path.join('.') || '(top)'}: ${first.message}; write the output of \`uplink-agent show --facts\` or a file from <state-dir>/facts/`,
    );
  }
  return parsed.data;
}
