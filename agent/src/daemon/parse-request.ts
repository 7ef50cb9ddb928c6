/**
 * One line from the wire → a validated Request, or the error response that refuses it.
 * Pure. The order of checks decides the code: not JSON / not an object → bad-request;
 * `v` a number other than ours → unsupported-version; a method we do not have →
 * unknown-method; anything else the schema refuses → bad-request, naming the first issues.
 */
import { formatIssues } from '../model/format-issues.js';
import { type ErrorResponse, PROTOCOL_VERSION, type Request, request } from '../model/protocol.js';
import { errorResponse, WireError } from './wire-error.js';

/** Envelope versions (`v`); protocol revisions are negotiated in hello. */
export const SUPPORTED_ENVELOPES: readonly number[] = [PROTOCOL_VERSION];
const METHODS = new Set(['hello', 'plan', 'apply', 'confirm', 'revert', 'status']);

export type ParsedLine =
  | { readonly ok: true; readonly request: Request }
  | { readonly ok: false; readonly response: ErrorResponse };

export function parseRequestLine(line: string): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return refuse(null, 'bad-request', 'not a JSON line');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return refuse(null, 'bad-request', 'a request must be a JSON object');
  }
  const fields = json as Record<string, unknown>;
  const id = requestIdOf(fields.id);
  if (typeof fields.v === 'number' && fields.v !== PROTOCOL_VERSION) {
    return refuse(
      id,
      'unsupported-version',
      `protocol ${fields.v} is not supported; this agent speaks ${SUPPORTED_ENVELOPES.join(', ')}`,
    );
  }
  if (typeof fields.method === 'string' && !METHODS.has(fields.method)) {
    return refuse(
      id,
      'unknown-method',
      `method ${JSON.stringify(fields.method.slice(0, 40))} does not exist; methods: ${[...METHODS].join(', ')}`,
    );
  }
  const parsed = request.safeParse(json);
  if (!parsed.success) {
    return refuse(id, 'bad-request', `invalid request: ${formatIssues(parsed.error.issues).join('; ')}`);
  }
  return { ok: true, request: parsed.data };
}

/** The id to answer with: the request's, when it is a valid id; else null. */
function requestIdOf(value: unknown): string | number | null {
  if (typeof value === 'string' && value.length <= 64) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  return null;
}

function refuse(
  id: string | number | null,
  code: 'bad-request' | 'unsupported-version' | 'unknown-method',
  message: string,
): ParsedLine {
  return { ok: false, response: errorResponse(id, new WireError(code, message)) };
}
