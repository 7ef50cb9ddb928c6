/**
 * The agent's replies checked exactly: the result schemas ignore fields they do not know (so
 * an older controller accepts a newer agent, D91), which would also let this agent send a
 * field by mistake. These helpers parse with the schema and fail when anything was dropped.
 */

import type { z } from 'zod';
import { canonicalJson } from '../../agent/src/model/content-hash.js';
import { type Method, resultSchemas } from '../../agent/src/model/protocol.js';

export type ResultOf<M extends Method> = z.infer<(typeof resultSchemas)[M]>;

export function parseExactResult<M extends Method>(method: M, value: unknown): ResultOf<M> {
  const parsed = resultSchemas[method].parse(value) as ResultOf<M>;
  // JSON round trip: `undefined` fields are what JSON would drop too.
  const sent = canonicalJson(JSON.parse(JSON.stringify(value)));
  const declared = canonicalJson(JSON.parse(JSON.stringify(parsed)));
  if (sent !== declared) {
    throw new Error(
      `${method}: the reply holds fields its schema does not declare:\n${sent}\n!=\n${declared}`,
    );
  }
  return parsed;
}
