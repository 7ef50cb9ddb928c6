/**
 * The agent's wire protocol: JSON lines over the SSH exec channel (forced command
 * `uplink-agent rpc`), bridged to the daemon's unix socket. Every message is validated
 * with zod on both ends; a line longer than MAX_LINE_BYTES is refused unread.
 */
import { z } from 'zod';
import { desiredState } from './desired-state.js';

export const PROTOCOL_VERSION = 1;
/** A desired state of 20,000 rules fits comfortably; anything larger is refused. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

export const generation = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9._:+-]+$/, 'generation: letters, digits and . _ : + - only');

const requestId = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);

export const helloParams = z
  .object({ protocol: z.number().int().min(1), client: z.string().max(200) })
  .strict();
export const planParams = z.object({ desired: desiredState }).strict();
export const applyParams = z
  .object({
    desired: desiredState,
    generation,
    /** Revert unless confirmed within this many milliseconds. */
    confirmWithinMs: z.number().int().min(1_000).max(3_600_000),
    /** Apply even if the management path would move (the operator says it is intended). */
    allowManagementChange: z.boolean().optional(),
  })
  .strict();
export const confirmParams = z.object({ generation }).strict();
export const emptyParams = z.object({}).strict();

export const request = z.discriminatedUnion('method', [
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('hello'),
      params: helloParams,
    })
    .strict(),
  z
    .object({ v: z.literal(PROTOCOL_VERSION), id: requestId, method: z.literal('plan'), params: planParams })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('apply'),
      params: applyParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('confirm'),
      params: confirmParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('revert'),
      params: emptyParams,
    })
    .strict(),
  z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      id: requestId,
      method: z.literal('status'),
      params: emptyParams,
    })
    .strict(),
]);
export type Request = z.infer<typeof request>;
export type Method = Request['method'];

/** Error codes on the wire. Only `busy` and `unavailable` are worth retrying. */
export const errorCode = z.enum([
  'bad-request',
  'unsupported-version',
  'unknown-method',
  'too-large',
  'busy',
  'conflict',
  'management-path',
  'refused',
  'kernel',
  'verify-failed',
  'not-pending',
  'unavailable',
  'internal',
]);
export type ErrorCode = z.infer<typeof errorCode>;

export const errorResponse = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id: requestId.nullable(),
    ok: z.literal(false),
    error: z.object({ code: errorCode, message: z.string().max(4000), retryable: z.boolean() }).strict(),
  })
  .strict();
export type ErrorResponse = z.infer<typeof errorResponse>;

export const generationInfo = z
  .object({ generation, hash: z.string(), site: z.string(), at: z.number().int() })
  .strict();
export type GenerationInfo = z.infer<typeof generationInfo>;

export const pendingInfo = generationInfo.extend({ deadline: z.number().int() }).strict();
export type PendingInfo = z.infer<typeof pendingInfo>;

export const okResponse = z
  .object({ v: z.literal(PROTOCOL_VERSION), id: requestId, ok: z.literal(true), result: z.unknown() })
  .strict();

export const response = z.union([okResponse, errorResponse]);
export type Response = z.infer<typeof response>;
