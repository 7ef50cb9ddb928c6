/**
 * Turns zod issues into located diagnostics that name the subject first and say what to
 * write instead ("providers[0]: unknown key "gatway"; did you mean "gateway"?").
 */
import type { z } from 'zod';
import type { Diagnostic } from './diagnostic.js';
import { formatPath } from './diagnostic.js';
import { diagnosticAt, type ParsedFile } from './parse-yaml-file.js';

export function validateWithSchema<T>(
  parsed: ParsedFile,
  schema: z.ZodType<T>,
): { value: T | undefined; diagnostics: Diagnostic[] } {
  const result = schema.safeParse(parsed.value ?? {});
  if (result.success) return { value: result.data, diagnostics: [] };
  const diagnostics = result.error.issues.flatMap((issue) => issueDiagnostics(parsed, issue, schema));
  return { value: undefined, diagnostics };
}

type Issue = z.core.$ZodIssue;

function issueDiagnostics(parsed: ParsedFile, issue: Issue, root: z.ZodType): Diagnostic[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const subject = formatPath(path) || 'file';
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const allowed = allowedKeysAt(root, path);
        const suggestion = closest(key, allowed);
        const hint = suggestion
          ? `did you mean "${suggestion}"?`
          : allowed.length > 0
            ? `allowed keys: ${allowed.join(', ')}`
            : 'remove it';
        return diagnosticAt(
          parsed,
          [...path, key],
          'error',
          `${formatPath([...path, key])}: unknown key "${key}"; ${hint}`,
          {
            key: true,
          },
        );
      });
    case 'invalid_type': {
      const got = describe(valueAt(parsed.value, path));
      if (got === 'missing') {
        // For a missing section, say what goes in it rather than "<object>".
        const required = issue.expected === 'object' ? requiredKeysAt(root, path) : [];
        const what = required.length > 0 ? ` with ${required.join(' and ')}` : ` <${issue.expected}>`;
        return [diagnosticAt(parsed, path, 'error', `${subject}: required; add ${lastKey(path)}:${what}`)];
      }
      // YAML reads an unquoted true/false as a boolean (labels: { canary: true }); say how to keep it text.
      const value = valueAt(parsed.value, path);
      const quote =
        issue.expected === 'string' && typeof value === 'boolean' ? `; quote it: "${String(value)}"` : '';
      return [
        diagnosticAt(parsed, path, 'error', `${subject}: expected ${issue.expected}, found ${got}${quote}`),
      ];
    }
    case 'invalid_value':
      return [
        diagnosticAt(
          parsed,
          path,
          'error',
          `${subject}: "${String(valueAt(parsed.value, path))}" is not allowed; write one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
        ),
      ];
    case 'invalid_format':
      return [
        diagnosticAt(
          parsed,
          path,
          'error',
          `${subject}: "${String(valueAt(parsed.value, path))}" is not ${issue.message ?? issue.format}`,
        ),
      ];
    case 'too_small':
    case 'too_big':
      return [
        diagnosticAt(parsed, path, 'error', `${subject}: ${sizeMessage(issue, valueAt(parsed.value, path))}`),
      ];
    case 'invalid_union': {
      const got = valueAt(parsed.value, path);
      return [
        diagnosticAt(
          parsed,
          path,
          'error',
          `${subject}: ${describe(got)} is not valid here (${unionHint(issue)})`,
        ),
      ];
    }
    default:
      return [diagnosticAt(parsed, path, 'error', `${subject}: ${issue.message}`)];
  }
}

/** "200 is more than 100; write 1–100" rather than zod's "Too big: expected number to be <=100". */
function sizeMessage(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>, value: unknown): string {
  const bound = Number(issue.code === 'too_big' ? issue.maximum : issue.minimum);
  if (issue.origin === 'number' && typeof value === 'number') {
    return issue.code === 'too_big'
      ? `${value} is too large; the most allowed is ${bound}`
      : `${value} is too small; the least allowed is ${bound}`;
  }
  if (issue.origin === 'array' && Array.isArray(value)) {
    return issue.code === 'too_big'
      ? `${value.length} items, more than the ${bound} allowed; list at most ${bound}`
      : `${value.length} items; list at least ${bound}`;
  }
  return issue.message;
}

function unionHint(issue: Extract<Issue, { code: 'invalid_union' }>): string {
  const messages = issue.errors.flat().map((e) => (e.code === 'invalid_type' ? e.expected : e.message));
  return `expected ${[...new Set(messages)].join(' or ')}`;
}

function lastKey(path: readonly (string | number)[]): string {
  const last = path[path.length - 1];
  return typeof last === 'string' ? last : 'a value';
}

export function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let node = value;
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[part];
  }
  return node;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The keys an object schema at `path` requires. */
function requiredKeysAt(root: z.ZodType, path: readonly (string | number)[]): string[] {
  const shape = shapeAt(root, path);
  return Object.entries(shape ?? {})
    .filter(([, s]) => (s as { def?: { type?: string } }).def?.type !== 'optional')
    .map(([k]) => k);
}

/** The keys a strict object schema allows at `path` (walking objects, arrays, optionals). */
function allowedKeysAt(root: z.ZodType, path: readonly (string | number)[]): string[] {
  return Object.keys(shapeAt(root, path) ?? {});
}

function shapeAt(root: z.ZodType, path: readonly (string | number)[]): Record<string, unknown> | undefined {
  let schema: unknown = root;
  const unwrap = (s: unknown): unknown => {
    let cur = s as { def?: { type?: string; innerType?: unknown; element?: unknown; options?: unknown[] } };
    for (let i = 0; i < 10 && cur?.def; i++) {
      const t = cur.def.type;
      if (t === 'optional' || t === 'nullable' || t === 'default') cur = cur.def.innerType as typeof cur;
      else break;
    }
    return cur;
  };
  for (const part of path) {
    const s = unwrap(schema) as {
      def?: { type?: string; element?: unknown; shape?: Record<string, unknown>; options?: unknown[] };
    };
    if (s?.def?.type === 'array' && typeof part === 'number') schema = s.def.element;
    else if (s?.def?.type === 'object' && typeof part === 'string') schema = s.def.shape?.[part];
    else if (s?.def?.type === 'union' && Array.isArray(s.def.options)) {
      schema = s.def.options.find(
        (o) =>
          (unwrap(o) as { def?: { type?: string } }).def?.type ===
          (typeof part === 'number' ? 'array' : 'object'),
      );
      const o = unwrap(schema) as {
        def?: { type?: string; element?: unknown; shape?: Record<string, unknown> };
      };
      schema = typeof part === 'number' ? o?.def?.element : o?.def?.shape?.[part];
    } else return undefined;
  }
  const s = unwrap(schema) as { def?: { type?: string; shape?: Record<string, unknown> } };
  return s?.def?.type === 'object' ? (s.def.shape ?? {}) : undefined;
}

/** The allowed word closest to `word` by edit distance, if it is plausibly a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
