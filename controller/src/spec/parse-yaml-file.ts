/**
 * YAML with source positions, fast and safe on hostile input (D90).
 *
 * Two parsers, one answer. js-yaml reads the value (about fifteen times faster than a parse
 * that keeps positions); the `yaml` library's position-carrying document is built only when
 * something asks where a value was written — a diagnostic — or when js-yaml refuses the text,
 * in which case `yaml` also decides the value and the errors, exactly as it did before the
 * fast path existed. So a valid fleet costs one fast parse per file, and every diagnostic
 * still names FILE:LINE:COL.
 *
 * Limits, each refused with a located message rather than a stack trace or a hang (a pull
 * request is untrusted input to `uplink plan` and `uplink run`):
 * - MAX_FILE_CHARS per file, checked before any parser runs;
 * - MAX_DEPTH levels of nesting;
 * - MAX_ALIASES alias nodes per file, and aliases may not expand the value past
 *   MAX_EXPANDED_NODES nodes (a "billion laughs" file is tiny and expands without bound);
 * - an unresolved alias is an error at the alias.
 * Duplicate keys are found with one Set per map (the `yaml` library's own check compares
 * every pair of keys: 40,000 keys took a minute).
 */
import {
  CORE_SCHEMA,
  constructFromEvents,
  EVENT_ID,
  getScalarValue,
  parseEvents,
  SCALAR_STYLE,
  type Event as YamlEvent,
} from 'js-yaml';
import {
  CST,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
} from 'yaml';
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

/** 4 Mi characters: a thousand times a large site; js-yaml reads it in well under a second. */
export const MAX_FILE_CHARS = 4 * 1024 * 1024;
/** The spec is six levels deep; 64 leaves room for free text and refuses pathological nesting. */
export const MAX_DEPTH = 64;
export const MAX_ALIASES = 100;
export const MAX_EXPANDED_NODES = 1_000_000;
/** YAML syntax problems reported per file before a summary line. */
export const MAX_YAML_PROBLEMS = 20;

export function parseYamlFile(file: string, text: string): { parsed: ParsedFile; diagnostics: Diagnostic[] } {
  const positions = lazyPositions(text);
  let lines: ((offset: number) => Position) | undefined;
  const at = (offset: number, message: string, severity: Diagnostic['severity'] = 'error'): Diagnostic => {
    lines ??= lineIndex(text);
    const pos = offset <= 0 ? { line: 1, col: 1 } : lines(offset);
    return { severity, file, line: pos.line, col: pos.col, path: '', message };
  };
  const refuse = (diagnostics: Diagnostic[]) => ({
    parsed: { file, value: undefined, locate: positions.locate },
    diagnostics,
  });

  if (text.length > MAX_FILE_CHARS) {
    return refuse([
      at(
        0,
        `YAML: ${file} is ${text.length} characters; Uplink reads at most ${MAX_FILE_CHARS} per file — split the site or its groups`,
      ),
    ]);
  }
  let value: unknown = null;
  let fast = true;
  let events: YamlEvent[] = [];
  try {
    if (text.trim() !== '') {
      events = parseEvents(text, { maxDepth: MAX_DEPTH });
      const documents = constructFromEvents(events, {
        source: text,
        schema: CORE_SCHEMA,
        maxAliases: MAX_ALIASES,
      });
      if (documents.length !== 1) throw new Error('not one document');
      value = documents[0];
    }
  } catch (error) {
    // Our limits, and an alias without its anchor, are answered here: the position-carrying
    // parser would recurse as deep as the file nests, or expand what it should not.
    const limit = limitMessage(error, text);
    if (limit !== undefined) return refuse([at(limit.offset, `YAML: ${limit.message}`)]);
    fast = false;
  }
  const diagnostics: Diagnostic[] = [];
  if (!fast) {
    // The position-carrying parser decides, as it always has: its errors, its value — once
    // the file is known not to nest deeper than its recursion can take.
    const deep = tooDeep(text);
    if (deep !== undefined) {
      return refuse([
        at(deep, `YAML: nested more than ${MAX_DEPTH} levels deep; Uplink reads at most ${MAX_DEPTH}`),
      ]);
    }
    const slow = positions.document();
    // One syntax error often sets off one more per line after it: the first few say it all.
    for (const problem of slow.problems.slice(0, MAX_YAML_PROBLEMS))
      diagnostics.push(at(problem.offset, `YAML: ${problem.message}`, problem.severity));
    if (slow.problems.length > MAX_YAML_PROBLEMS) {
      const rest = slow.problems[MAX_YAML_PROBLEMS]!;
      diagnostics.push(
        at(
          rest.offset,
          `YAML: ${slow.problems.length - MAX_YAML_PROBLEMS} more problems after this point; fix the ones above first`,
          rest.severity,
        ),
      );
    }
    if (slow.problems.some((p) => p.severity === 'error')) return refuse(diagnostics);
    value = slow.value();
    if (value === undefined) return refuse(diagnostics);
  }
  // Without aliases the value is a tree no larger than the text; with them, count the copies.
  const aliased = fast ? events.some((e) => e.type === EVENT_ID.ALIAS) : text.includes('*');
  if (aliased && expandedSize(value, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES) {
    return refuse([
      at(
        firstAlias(text),
        `YAML: aliases expand this file past ${MAX_EXPANDED_NODES} values (an alias bomb?); write the values out, or use fewer aliases`,
      ),
    ]);
  }
  // Positions from the events of the fast parse, indexed on the first diagnostic. The events
  // are parsed again then rather than kept: a valid fleet's events (two hundred per site) held
  // until the load ends were most of its memory and its garbage collection (D150).
  events = [];
  let index: PositionIndex | undefined;
  const locate: ParsedFile['locate'] = fast
    ? (path, opts) => {
        index ??= indexEvents(text, text.trim() === '' ? [] : parseEvents(text, { maxDepth: MAX_DEPTH }));
        return index.locate(path, opts);
      }
    : positions.locate;
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

interface Problem {
  readonly offset: number;
  readonly severity: Diagnostic['severity'];
  readonly message: string;
}

interface PositionDocument {
  readonly problems: readonly Problem[];
  /** The value, or undefined when an alias cannot be resolved or expands too far (reported in problems). */
  value(): unknown;
  locate: ParsedFile['locate'];
}

/** The `yaml` document, built on first use only. */
function lazyPositions(text: string): { document: () => PositionDocument; locate: ParsedFile['locate'] } {
  let built: PositionDocument | undefined;
  const document = () => {
    built ??= positionDocument(text);
    return built;
  };
  return { document, locate: (path, opts) => document().locate(path, opts) };
}

export function positionDocument(text: string): PositionDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, version: '1.2' });
  const problems: Problem[] = [];
  for (const err of doc.errors)
    problems.push({ offset: err.pos[0], severity: 'error', message: err.message.split('\n')[0]! });
  for (const warn of doc.warnings)
    problems.push({ offset: warn.pos[0], severity: 'warning', message: warn.message.split('\n')[0]! });
  if (doc.errors.length === 0) {
    for (const duplicate of duplicateKeys(doc.contents)) {
      problems.push({ offset: duplicate, severity: 'error', message: 'Map keys must be unique' });
    }
    visit(doc, {
      Alias(_key, alias) {
        if (alias.resolve(doc) === undefined) {
          problems.push({
            offset: alias.range?.[0] ?? 0,
            severity: 'error',
            message: `alias *${alias.source} names no anchor before it; define &${alias.source} first`,
          });
        }
      },
    });
  }
  problems.sort((a, b) => a.offset - b.offset);
  const position = (offset: number | undefined): Position =>
    offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset);
  // One index per map, so locating n keys costs n, not n² (D90).
  const indexes = new WeakMap<YAMLMap, Map<unknown, Pair>>();
  const pairOf = (map: YAMLMap, key: string | number): Pair | undefined => {
    let index = indexes.get(map);
    if (index === undefined) {
      index = new Map();
      for (const pair of map.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        if (!index.has(k)) index.set(k, pair);
      }
      indexes.set(map, index);
    }
    return index.get(key);
  };
  const locate: ParsedFile['locate'] = (path, opts) => {
    let node: unknown = doc.contents;
    let last: Position = position((doc.contents as Node | null)?.range?.[0]);
    for (let i = 0; i < path.length; i++) {
      const part = path[i]!;
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = pairOf(node, part);
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
  return {
    problems,
    value: () => {
      if (problems.some((p) => p.severity === 'error')) return undefined;
      try {
        return doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (error) {
        problems.push({
          offset: 0,
          severity: 'error',
          message: `${error instanceof Error ? error.message : String(error)}; use fewer aliases`,
        });
        return undefined;
      }
    },
    locate,
  };
}

interface PositionIndex {
  locate: ParsedFile['locate'];
}

type PositionNode =
  | {
      readonly kind: 'map';
      readonly start: number;
      readonly pairs: Map<string, { key: number; value: PositionNode }>;
    }
  | { readonly kind: 'seq'; readonly start: number; readonly items: PositionNode[] }
  /** A scalar; `start` -1 for an empty (null) scalar, which has no text. */
  | { readonly kind: 'leaf'; readonly start: number }
  /** `*name`: located where it is used, looked into at its anchor's node. */
  | { readonly kind: 'alias'; readonly start: number; readonly target: PositionNode | undefined };

/**
 * The positions of one document, from js-yaml's event stream: where every map key, map
 * value and sequence item starts. Locating follows the same rules the `yaml` document did:
 * a value's position, a key's when asked, the nearest existing ancestor otherwise, and an
 * empty value is found at its key.
 */
export function indexEvents(text: string, events: readonly YamlEvent[]): PositionIndex {
  const position = lineIndex(text);

  let root: PositionNode | undefined;
  const anchors = new Map<string, PositionNode>();
  const anchor = (node: PositionNode, event: { anchorStart: number; anchorEnd: number }) => {
    if (event.anchorStart >= 0) anchors.set(text.slice(event.anchorStart, event.anchorEnd), node);
    return node;
  };
  // Open collections, and for maps the key waiting for its value.
  const stack: { node: PositionNode; key?: { text: string; start: number; end: number } }[] = [];
  const add = (node: PositionNode, keyText?: string, end = -1) => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      root ??= node;
      return;
    }
    if (top.node.kind === 'seq') top.node.items.push(node);
    else if (top.node.kind === 'map') {
      if (top.key === undefined) {
        top.key = { text: keyText ?? '', start: node.start, end };
        return;
      }
      // An empty value sits right after its key's colon, where the `yaml` document put it.
      const value: PositionNode =
        node.kind === 'leaf' && node.start < 0
          ? { kind: 'leaf', start: afterColon(text, top.key.end) }
          : node;
      if (!top.node.pairs.has(top.key.text)) top.node.pairs.set(top.key.text, { key: top.key.start, value });
      top.key = undefined;
    }
  };
  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.MAPPING: {
        const node = anchor({ kind: 'map', start: event.start, pairs: new Map() }, event);
        add(node);
        stack.push({ node });
        break;
      }
      case EVENT_ID.SEQUENCE: {
        const node = anchor({ kind: 'seq', start: event.start, items: [] }, event);
        add(node);
        stack.push({ node });
        break;
      }
      case EVENT_ID.SCALAR:
        add(
          anchor({ kind: 'leaf', start: scalarStart(text, event) }, event),
          event.valueStart < 0 ? '' : getScalarValue(text, event),
          event.valueEnd,
        );
        break;
      case EVENT_ID.ALIAS:
        add({
          kind: 'alias',
          start: Math.max(0, event.anchorStart - 1),
          target: anchors.get(text.slice(event.anchorStart, event.anchorEnd)),
        });
        break;
      case EVENT_ID.POP:
        stack.pop();
        break;
      default:
        break;
    }
  }

  const startOf = (node: PositionNode | undefined): Position =>
    node === undefined || node.start < 0 ? { line: 1, col: 1 } : position(node.start);
  return {
    locate(path, opts) {
      let node = root;
      let last = startOf(node);
      for (let i = 0; i < path.length; i++) {
        const part = path[i]!;
        if (node?.kind === 'alias') node = node.target;
        if (node?.kind === 'map') {
          const pair = node.pairs.get(String(part));
          if (pair === undefined) return last;
          if (i === path.length - 1 && opts?.key) return position(pair.key);
          node = pair.value;
          last = position(pair.value.start >= 0 ? pair.value.start : pair.key);
        } else if (node?.kind === 'seq' && typeof part === 'number') {
          const item = node.items[part];
          if (item === undefined) return last;
          node = item;
          last = startOf(item);
        } else {
          return last;
        }
      }
      return last;
    },
  };
}

/**
 * Where a scalar starts as the `yaml` document counts it: at the opening quote of a quoted
 * scalar and at the `|` or `>` of a block scalar (js-yaml points at the text itself).
 */
function scalarStart(text: string, event: Extract<YamlEvent, { type: typeof EVENT_ID.SCALAR }>): number {
  const start = event.valueStart;
  if (start < 0) return start;
  if (event.style === SCALAR_STYLE.SINGLE_QUOTED || event.style === SCALAR_STYLE.DOUBLE_QUOTED)
    return start - 1;
  if (event.style === SCALAR_STYLE.LITERAL_BLOCK || event.style === SCALAR_STYLE.FOLDED_BLOCK) {
    // The header is the last non-blank line before the content.
    let lineEnd = text.lastIndexOf('\n', start - 1);
    while (lineEnd > 0) {
      const lineStart = text.lastIndexOf('\n', lineEnd - 1) + 1;
      const line = text.slice(lineStart, lineEnd);
      if (line.trim() !== '') {
        const indicator = /(^|[\s:\-\]}])([|>])/.exec(line);
        return indicator === null ? start : lineStart + indicator.index + indicator[1]!.length;
      }
      lineEnd = lineStart - 1;
    }
  }
  return start;
}

/** Where the `yaml` document puts an empty value: the first character after its key's `:` that is not a blank. */
function afterColon(text: string, keyEnd: number): number {
  if (keyEnd < 0) return -1;
  const colon = text.indexOf(':', keyEnd);
  if (colon < 0) return -1;
  let at = colon + 1;
  while (text[at] === ' ' || text[at] === '\t') at++;
  return at;
}

/** Offsets of keys that repeat an earlier key of the same map. */
function duplicateKeys(root: unknown): number[] {
  const out: number[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) out.push((pair.key as Node | null)?.range?.[0] ?? 0);
        seen.add(key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * Values in `value` counting every alias's target again each time it is used (what a deep
 * copy would hold), stopping once past `cap`. Shared objects make this a DAG walk.
 */
function expandedSize(value: unknown, cap: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= cap) {
    const node = stack.pop();
    count++;
    if (Array.isArray(node)) for (const item of node) stack.push(item);
    else if (node !== null && typeof node === 'object')
      for (const item of Object.values(node)) stack.push(item);
  }
  return count;
}

/**
 * The offset where `text` first nests deeper than MAX_DEPTH, counting flow collections with
 * the `yaml` lexer (iterative: it does not recurse) and block collections by indentation.
 */
const tokenType = CST.tokenType;

function tooDeep(text: string): number | undefined {
  let flow = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    const type = tokenType(token);
    if (type === 'flow-map-start' || type === 'flow-seq-start') {
      if (++flow > MAX_DEPTH) return offset;
    } else if (type === 'flow-map-end' || type === 'flow-seq-end') flow = Math.max(0, flow - 1);
    offset += token.length;
  }
  const indents: number[] = [];
  let lineStart = 0;
  for (const line of text.split('\n')) {
    const indent = line.length - line.trimStart().length;
    if (line.trim() !== '' && !line.trimStart().startsWith('#')) {
      while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
      indents.push(indent);
      if (indents.length > MAX_DEPTH) return lineStart + indent;
    }
    lineStart += line.length + 1;
  }
  return undefined;
}

/** The located message for a js-yaml error that is one of our limits, else undefined. */
function limitMessage(error: unknown, text: string): { offset: number; message: string } | undefined {
  const reason = (error as { reason?: unknown }).reason;
  const offset = (error as { mark?: { position?: number } }).mark?.position ?? 0;
  if (typeof reason !== 'string') return undefined;
  if (/maxDepth/.test(reason)) {
    return {
      offset,
      message: `nested more than ${MAX_DEPTH} levels deep; Uplink reads at most ${MAX_DEPTH}`,
    };
  }
  if (/maxAliases/.test(reason)) {
    return {
      offset,
      message: `more than ${MAX_ALIASES} aliases; Uplink allows at most ${MAX_ALIASES} per file — write the values out`,
    };
  }
  const unresolved = /^unidentified alias "(.*)"$/.exec(reason);
  if (unresolved !== null) {
    // js-yaml points at the name; the alias starts at its `*`.
    return {
      offset: text[offset - 1] === '*' ? offset - 1 : offset,
      message: `alias *${unresolved[1]} names no anchor before it; define &${unresolved[1]} first`,
    };
  }
  return undefined;
}

/** The offset of the first `*alias` (or 0): where to point an expansion error. */
function firstAlias(text: string): number {
  const match = /(^|[\s[{,:-])\*[^\s,[\]{}]+/m.exec(text);
  return match === null ? 0 : match.index + match[1]!.length;
}

/** Offset → 1-based line and column, by binary search over the line starts (built once). */
function lineIndex(text: string): (offset: number) => Position {
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - lineStarts[lo]! + 1 };
  };
}
