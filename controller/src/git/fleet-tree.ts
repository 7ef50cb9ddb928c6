/**
 * Pure helpers for reading a fleet from a git tree without a checkout: which paths are
 * fleet files, and the parsers for `git ls-tree -z` and `git cat-file --batch` output.
 */

/** The files loadFleet reads, as readFleetFiles finds them in a directory (one level, no recursion). */
export function isFleetFile(path: string): boolean {
  return /^fleet\.ya?ml$/.test(path) || /^(groups|sites)\/[^/]+\.ya?ml$/.test(path);
}

export interface TreeEntry {
  readonly mode: string;
  readonly type: string;
  readonly object: string;
  readonly path: string;
}

/** Parses `git ls-tree -r -z` output: `<mode> <type> <object>\t<path>\0` per entry. */
export function parseLsTree(output: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const record of output.split('\0')) {
    if (record === '') continue;
    const tab = record.indexOf('\t');
    const [mode, type, object] = record.slice(0, tab).split(' ');
    if (tab < 0 || !mode || !type || !object)
      throw new Error(`git ls-tree: cannot read entry ${JSON.stringify(record)}`);
    entries.push({ mode, type, object, path: record.slice(tab + 1) });
  }
  return entries;
}

/**
 * The entries of a tree that loadFleet reads: regular files only (a symlink's blob is its
 * target path, not YAML; a submodule has no blob here).
 */
export function selectFleetEntries(entries: readonly TreeEntry[]): TreeEntry[] {
  return entries.filter(
    (e) => e.type === 'blob' && (e.mode === '100644' || e.mode === '100755') && isFleetFile(e.path),
  );
}

/**
 * Parses `git cat-file --batch` output for the requested objects, in request order:
 * `<object> blob <size>\n<content>\n`, or `<object> missing\n`.
 */
export function parseCatFileBatch(output: Buffer, requested: readonly string[]): Map<string, Buffer> {
  const blobs = new Map<string, Buffer>();
  let at = 0;
  for (const object of requested) {
    const eol = output.indexOf(0x0a, at);
    if (eol < 0) throw new Error(`git cat-file: output ends before object ${object}`);
    const header = output.subarray(at, eol).toString('utf8');
    const [name, type, size] = header.split(' ');
    if (type === 'missing' || name !== object || type !== 'blob' || size === undefined) {
      throw new Error(`git cat-file: expected blob ${object}, got "${header}"`);
    }
    const start = eol + 1;
    const end = start + Number(size);
    if (end + 1 > output.length) throw new Error(`git cat-file: blob ${object} is truncated`);
    blobs.set(object, output.subarray(start, end));
    at = end + 1;
  }
  return blobs;
}
