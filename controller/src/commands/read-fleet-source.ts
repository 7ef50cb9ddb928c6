/**
 * The fleet files a command works on: the working directory as it is, or — with `--rev` —
 * the files committed at a revision, read from git objects without a checkout (so a dirty
 * or checked-out-elsewhere work tree does not matter). `--repo` must then be a git work
 * tree or a bare repository.
 */
import { resolve } from 'node:path';
import { GitSource } from '../git/index.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';

export interface FleetSource {
  readonly files: Map<string, string>;
  /** The full commit id when read at a revision; undefined for the working directory. */
  readonly commit?: string;
}

export async function readFleetSource(repo: string, rev: string | undefined): Promise<FleetSource> {
  const dir = resolve(repo);
  if (rev === undefined) return { files: await readFleetFiles(dir) };
  const git = await GitSource.open(dir);
  const commit = await git.resolveRev(rev);
  return { files: await git.readFleetFilesAt(commit), commit };
}
