/**
 * The fleet files a command works on: the working directory as it is, or — with `--rev` —
 * the files committed at a revision, read from git objects without a checkout (so a dirty
 * or checked-out-elsewhere work tree does not matter). `--repo` must then be the top of a
 * git work tree or a bare repository: the fleet is read from the commit's root.
 */
import { resolve } from 'node:path';
import { simpleGit } from 'simple-git';
import { UsageError } from '../errors.js';
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
  await refuseSubdirectory(dir);
  const commit = await git.resolveRev(rev);
  return { files: await git.readFleetFilesAt(commit), commit };
}

/**
 * A directory inside a bigger repository (a fleet kept in a subfolder) would be read from
 * the repository's root, where there is no fleet: say so instead of "no such site".
 */
async function refuseSubdirectory(dir: string): Promise<void> {
  let prefix = '';
  try {
    prefix = (await simpleGit(dir).raw(['rev-parse', '--show-prefix'])).trim();
  } catch {
    return; // a bare repository has no work tree and no prefix
  }
  if (prefix !== '') {
    throw new UsageError(
      `${dir}: is the subdirectory ${prefix} of a git repository; --rev reads the fleet from a commit's root, so pass --repo with the top of a repository that holds fleet.yaml there`,
    );
  }
}
