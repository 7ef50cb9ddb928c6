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
      // The default sort compares UTF-16 code units, as a canonical order should.
      const keys = Object.keys(obj).sort();
      let out = '{';
      for (const key of keys) {
        const text = writeCanonical(obj[key]);
        if (text === undefined) continue;
        out += `${out.length > 1 ? ',' : ''}${quote(key)}:${text}`;
      }
      return `${out}}`;
    }
    default:
      // undefined, functions, symbols: omitted from objects, null in arrays (as JSON.stringify).
      return undefined;
  }
}
