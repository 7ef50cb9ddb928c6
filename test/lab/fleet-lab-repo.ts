/**
 * The lab's fleet repository: a copy of a source fleet (fleet-repo-example by default) with
 * each site's `management` pointed at the lab router (address, the lab sshd's host key,
 * user root — the agent is installed for root inside a per-router prefix, so the lab creates
 * no system user), seeded into a local bare repository with a working clone to push from.
 * Comments and layout of the source files are kept: only the management keys change.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { readFleetFiles } from '../../controller/src/repo/read-fleet-files.js';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';

export interface LabManagement {
  readonly site: string;
  readonly address: string;
  readonly hostKey: string;
}

/**
 * Writes the adjusted copy of `source` to `dest` (only the sites named in `management`), and
 * checks that it validates — a lab whose fleet does not validate would only fail later.
 */
export async function writeLabFleet(
  source: string,
  dest: string,
  management: readonly LabManagement[],
  fleetYaml?: string,
): Promise<void> {
  mkdirSync(join(dest, 'sites'), { recursive: true });
  cpSync(join(source, 'groups'), join(dest, 'groups'), { recursive: true });
  for (const name of readdirSync(source).filter((n) => /^(fleet\.ya?ml|README\.md)$/.test(n)))
    cpSync(join(source, name), join(dest, name));
  if (fleetYaml !== undefined) writeFileSync(join(dest, 'fleet.yaml'), fleetYaml);
  for (const m of management) {
    const file = join('sites', `${m.site}.yaml`);
    const doc = parseDocument(readFileSync(join(source, file), 'utf8'));
    doc.setIn(['management', 'address'], m.address);
    doc.setIn(['management', 'user'], 'root');
    doc.setIn(['management', 'hostKey'], m.hostKey);
    writeFileSync(join(dest, file), doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
  }
  let loaded = loadFleet(await readFleetFiles(dest));
  // A lab of some of the sites may leave a wave of the source empty: drop such waves
  // (only when the caller did not write fleet.yaml), so that a smaller lab still validates.
  const empty = loaded.diagnostics
    .map((d) => /^rollout\.waves (\S+): selects no site/.exec(d.message)?.[1])
    .filter((name): name is string => name !== undefined);
  if (fleetYaml === undefined && empty.length > 0) {
    const fleetFile = join(dest, 'fleet.yaml');
    const doc = parseDocument(readFileSync(fleetFile, 'utf8'));
    const waves = doc.getIn(['rollout', 'waves']);
    if (isSeq(waves))
      waves.items = waves.items.filter((w) => !(isMap(w) && empty.includes(String(w.get('name')))));
    writeFileSync(fleetFile, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
    loaded = loadFleet(await readFleetFiles(dest));
  }
  if (loaded.fleet === undefined) {
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    throw new Error(`lab fleet in ${dest} does not validate:\n${errors.join('\n')}`);
  }
}

/**
 * `git init --bare <bare>`, commits `work`'s files as the first commit of `main` and pushes
 * it; `work` becomes a clone with its origin at `bare` and a committer identity of its own.
 */
export function seedFleetRepo(work: string, bare: string): string {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  mkdirSync(bare, { recursive: true });
  git(bare, 'init', '-q', '--bare', '--initial-branch=main');
  git(work, 'init', '-q', '--initial-branch=main');
  git(work, 'config', 'user.name', 'Uplink lab');
  git(work, 'config', 'user.email', 'lab@uplink.invalid');
  git(work, 'config', 'commit.gpgsign', 'false');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'fleet: the lab routers');
  git(work, 'remote', 'add', 'origin', bare);
  git(work, 'push', '-q', '-u', 'origin', 'main');
  return git(work, 'rev-parse', 'HEAD');
}

/** Sites of a fleet repository, as its loader sees them (the source must validate per site). */
export async function readSites(source: string) {
  const loaded = loadFleet(await readFleetFiles(source));
  return loaded.validSites;
}
