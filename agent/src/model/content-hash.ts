/**
 * Canonical JSON and the content hash of a desired state, defined once (D89): the compiler
 * stamps `hash` with it, the agent recomputes it on every desired state it is sent and
 * refuses one whose hash does not match, so a generation is always recorded under the hash
 * of what was really applied.
 */
import { createHash } from 'node:crypto';

/** sha256 of the canonical JSON (keys sorted at every level). */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** The hash a desired state must carry: over every field but `hash` itself. */
export function desiredStateHash(state: object): string {
  const { hash: _hash, ...body } = state as { hash?: unknown };
  return contentHash(body);
}

/**
 * JSON.stringify with keys sorted at every level, written directly: the replacer form
 * (copy and sort every object, then stringify) was the compiler's hot spot at fleet scale.
 */
export function canonicalJson(value: unknown): string {
  return writeCanonical(value) ?? 'null';
}

/** Printable ASCII other than `"` and `\\`: JSON.stringify would write such a string as is. */
const PLAIN = /^[ !#-[\]-~]*$/;
const quote = (s: string): string => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

/**
 * An object's keys in canonical order, each followed by its quoted form and colon: the
 * sort and the quoting are done once per set of keys (a fleet's desired states share a few
 * dozen shapes across hundreds of thousands of objects), not once per object.
 */
const layouts = new Map<string, readonly string[]>();
const MAX_LAYOUTS = 4096;

function layoutOf(keys: string[]): readonly string[] {
  const id = keys.join('\u0000');
  let layout = layouts.get(id);
  // A key holding the separator could make two key sets share an id: a layout is used only
  // for the very keys it was made from.
  if (layout !== undefined && !sameKeys(layout, keys)) return sortedLayout(keys);
  if (layout === undefined) {
    layout = sortedLayout(keys);
    if (layouts.size >= MAX_LAYOUTS) layouts.clear();
    layouts.set(id, layout);
  }
  return layout;
}

function sortedLayout(keys: readonly string[]): readonly string[] {
  // The default sort compares UTF-16 code units, as a canonical order should.
  return [...keys].sort().flatMap((key) => [key, `${quote(key)}:`]);
}

function sameKeys(layout: readonly string[], keys: readonly string[]): boolean {
  if (layout.length !== 2 * keys.length) return false;
  // Equal counts and every key of the layout among `keys` (which has no duplicates): the same set.
  const set = keys.length > 16 ? new Set(keys) : undefined;
  for (let i = 0; i < layout.length; i += 2) {
    if (set ? !set.has(layout[i]!) : !keys.includes(layout[i]!)) return false;
  }
  return true;
}

function writeCanonical(v: unknown): string | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      // What JSON.stringify would write for it (a Date, say).
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
        return writeCanonical((v as { toJSON: () => unknown }).toJSON());
      }
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) out += `${i > 0 ? ',' : ''}${writeCanonical(v[i]) ?? 'null'}`;
        return `${out}]`;
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj);
      const layout = layoutOf(keys);
      let out = '{';
      for (let i = 0; i < layout.length; i += 2) {
        const text = writeCanonical(obj[layout[i]!]);
        if (text === undefined) continue;
        out += `${out.length > 1 ? ',' : ''}${layout[i + 1]}${text}`;
      }
      return `${out}}`;
    }
    default:
      // undefined, functions, symbols: omitted from objects, null in arrays (as JSON.stringify).
      return undefined;
  }
}
