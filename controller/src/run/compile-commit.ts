/**
 * One commit of the fleet repository, checked and compiled: the signature (when required),
 * then validation and compilation of every site. An invalid commit comes back with its
 * diagnostics and changes nothing.
 */
import type { DesiredState } from '#agent/model';
import { compileSite } from '../compile/compile-site.js';
import type { GitSource, VerifyCommitOptions } from '../git/index.js';
import type { Diagnostic } from '../spec/diagnostic.js';
import type { FleetCache } from '../spec/fleet-cache.js';
import { loadFleet } from '../spec/load-fleet.js';
import type { ValidFleet, ValidSite } from '../spec/valid-site.js';

export type CompiledCommit =
  | {
      readonly ok: true;
      readonly commit: string;
      readonly fleet: ValidFleet;
      readonly sites: ReadonlyMap<string, ValidSite>;
      readonly desired: ReadonlyMap<string, DesiredState>;
      readonly warnings: readonly Diagnostic[];
    }
  | {
      readonly ok: false;
      readonly commit: string;
      readonly reason: 'invalid-spec' | 'signature';
      readonly message: string;
      readonly diagnostics: readonly Diagnostic[];
    };

export async function compileCommit(
  git: GitSource,
  commit: string,
  signatures?: VerifyCommitOptions | null,
  cache?: FleetCache,
): Promise<CompiledCommit> {
  if (signatures) {
    const verdict = await git.verifyCommit(commit, signatures);
    if (!verdict.ok)
      return { ok: false, commit, reason: 'signature', message: verdict.reason, diagnostics: [] };
  }
  return compileFiles(commit, await git.readFleetFilesAt(commit), cache);
}

/**
 * Pure part: the fleet files of a commit → compiled fleet or diagnostics. With a cache,
 * what did not change since the commits compiled before is reused (D151).
 */
export function compileFiles(
  commit: string,
  files: ReadonlyMap<string, string>,
  cache?: FleetCache,
): CompiledCommit {
  const load = loadFleet(files, cache);
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (!load.fleet || errors.length > 0) {
    return {
      ok: false,
      commit,
      reason: 'invalid-spec',
      message: `commit ${commit.slice(0, 12)}: the fleet is invalid (${errors.length} error${errors.length === 1 ? '' : 's'}); the last good commit stays in force`,
      diagnostics: errors,
    };
  }
  const sites = new Map(load.fleet.sites.map((s) => [s.name, s] as const));
  const compile = cache ? (s: ValidSite) => cache.compile(s) : compileSite;
  const desired = new Map(load.fleet.sites.map((s) => [s.name, compile(s)] as const));
  return {
    ok: true,
    commit,
    fleet: load.fleet,
    sites,
    desired,
    warnings: load.diagnostics.filter((d) => d.severity === 'warning'),
  };
}
