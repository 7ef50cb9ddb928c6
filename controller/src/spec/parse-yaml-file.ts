/**
 * YAML with source positions. `locate(path)` answers where a value (or, for a key that
 * should not be there, the key itself) was written, so every diagnostic can name
 * FILE:LINE:COL.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { Diagnostic } from './diagnostic.js';
import { formatPath } from './diagnostic.js';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface ParsedFile {
  readonly file: string;
  readonly value: unknown;
  /** Position of the value at `path`, or of the nearest ancestor that exists. */
  locate(path: readonly (string | number)[], opts?: { key?: boolean }): Position;
}

export function parseYamlFile(file: string, text: string): { parsed: ParsedFile; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: '1.2' });
  const diagnostics: Diagnostic[] = [];
  for (const err of [...doc.errors, ...doc.warnings]) {
    const pos = lineCounter.linePos(err.pos[0]);
    diagnostics.push({
      severity: doc.errors.includes(err) ? 'error' : 'warning',
      file,
      line: pos.line,
      col: pos.col,
      path: '',
      message: `YAML: ${err.message.split('\n')[0]}`,
    });
  }
  const position = (offset: number | undefined): Position =>
    offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset);

  const locate = (path: readonly (string | number)[], opts?: { key?: boolean }): Position => {
    let node: unknown = doc.contents;
    let last: Position = position((doc.contents as Node | null)?.range?.[0]);
    for (let i = 0; i < path.length; i++) {
      const part = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === part);
        if (!pair) return last;
        const keyNode = pair.key as Node | null;
        if (i === path.length - 1 && opts?.key) return position(keyNode?.range?.[0]);
        node = pair.value;
        const valueStart = (pair.value as Node | null)?.range?.[0] ?? keyNode?.range?.[0];
        last = position(valueStart);
      } else if (isSeq(node) && typeof part === 'number') {
        const item = node.items[part] as Node | undefined;
        if (!item) return last;
        node = item;
        last = position(item.range?.[0]);
      } else {
        return last;
      }
    }
    return last;
  };

  const value = doc.errors.length > 0 ? undefined : doc.toJS({ maxAliasCount: 100 });
  return { parsed: { file, value, locate }, diagnostics };
}

/** A diagnostic at `path` inside `parsed`. */
export function diagnosticAt(
  parsed: ParsedFile,
  path: readonly (string | number)[],
  severity: Diagnostic['severity'],
  message: string,
  opts?: { key?: boolean },
): Diagnostic {
  const pos = parsed.locate(path, opts);
  return { severity, file: parsed.file, line: pos.line, col: pos.col, path: formatPath(path), message };
}
