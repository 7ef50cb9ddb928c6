/** Reads the spec files of a fleet repository working directory (the thin I/O shell of loadFleet). */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

export async function readFleetFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let top: string[];
  try {
    top = await readdir(dir);
  } catch (e) {
    throw new UsageError(
      `${dir}: cannot read the fleet repository (${(e as NodeJS.ErrnoException).code ?? String(e)}); pass --repo DIR`,
    );
  }
  for (const name of top.filter((n) => /^fleet\.ya?ml$/.test(n)))
    files.set(name, await readFile(join(dir, name), 'utf8'));
  for (const sub of ['groups', 'sites']) {
    const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const name of names.filter((n) => /\.ya?ml$/.test(n)).sort()) {
      files.set(`${sub}/${name}`, await readFile(join(dir, sub, name), 'utf8'));
    }
  }
  return files;
}
