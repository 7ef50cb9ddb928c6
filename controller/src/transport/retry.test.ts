import { describe, expect, it } from 'vitest';
import { UplinkError } from '../errors.js';
import { backoffDelay, classifyConnectError, isTransient, withRetry } from './retry.js';
import {
  AgentError,
  AuthenticationError,
  HostKeyError,
  ProtocolError,
  TransportError,
} from './transport-errors.js';

function errnoError(code: string, level = 'client-socket'): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code, level });
}

describe('classifyConnectError', () => {
  it.each([
    [errnoError('ECONNREFUSED'), 'connection-refused', true],
    [errnoError('ECONNRESET'), 'connection-reset', true],
    [errnoError('ETIMEDOUT'), 'timed-out', true],
    [errnoError('EHOSTUNREACH'), 'host-unreachable', true],
    [errnoError('ENETUNREACH'), 'network-unreachable', true],
    [errnoError('EAI_AGAIN', 'client-dns'), 'dns', true],
    [errnoError('ENOTFOUND', 'client-dns'), 'dns', false],
    [
      Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }),
      'handshake-timeout',
      true,
    ],
    [Object.assign(new Error('Keepalive timeout'), { level: 'client-timeout' }), 'keepalive-timeout', true],
    [new Error('Connection lost before handshake'), 'connection-reset', true],
    [Object.assign(new Error('Host denied (verification failed)'), { level: 'handshake' }), 'other', false],
    [
      Object.assign(new Error('All configured authentication methods failed'), {
        level: 'client-authentication',
      }),
      'other',
      false,
    ],
    [new Error('something else'), 'other', false],
    ['not an error', 'other', false],
  ])('%s → %s, retryable %s', (error, reason, retryable) => {
    expect(classifyConnectError(error)).toEqual({ reason, retryable });
  });
});

describe('isTransient', () => {
  it.each([
    ['a transient transport error', new TransportError('s', 'connection-refused', 'm', true), true],
    [
      'a lost channel with an apply in flight',
      new TransportError('s', 'closed-before-response', 'm', false),
      false,
    ],
    ['a host-key mismatch', new HostKeyError('s', 'h', 'SHA256:a', ['SHA256:b'], 'm'), false],
    ['an authentication failure', new AuthenticationError('s', 'm'), false],
    ['a protocol error', new ProtocolError('s', 'm'), false],
    ['a refused apply (conflict)', new AgentError('s', 'apply', 'conflict', 'm'), false],
    ['a refused apply (management path)', new AgentError('s', 'apply', 'management-path', 'm'), false],
    ['not pending', new AgentError('s', 'confirm', 'not-pending', 'm'), false],
    ['a kernel failure', new AgentError('s', 'apply', 'kernel', 'm'), false],
    ['a busy agent', new AgentError('s', 'apply', 'busy', 'm'), true],
    ['an unavailable daemon', new AgentError('s', 'hello', 'unavailable', 'm'), true],
    ['a usage error', new UplinkError('usage', 'm'), false],
    ['a raw ECONNRESET', errnoError('ECONNRESET'), true],
    ['a raw unknown error', new Error('x'), false],
  ])('%s → %s', (_name, error, expected) => {
    expect(isTransient(error)).toBe(expected);
  });

  it('gives refusals kind refused and busy/unavailable kind transport', () => {
    expect(new AgentError('s', 'apply', 'conflict', 'm').kind).toBe('refused');
    expect(new AgentError('s', 'apply', 'busy', 'm').kind).toBe('transport');
    expect(new AgentError('s', 'apply', 'verify-failed', 'm').kind).toBe('failed');
    expect(new AgentError('branch-1', 'apply', 'conflict', 'table 101 holds foreign routes').message).toBe(
      'branch-1: apply failed: conflict: table 101 holds foreign routes',
    );
  });
});

describe('backoffDelay', () => {
  const options = { baseDelayMs: 1000, maxDelayMs: 8000 };
  it('doubles per attempt with equal jitter, capped', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, options, 0))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, options, 0.999999))).toEqual([
      1000, 2000, 4000, 8000, 8000,
    ]);
    expect(backoffDelay(2, options, 0.5)).toBe(1500);
  });
});

describe('withRetry', () => {
  const base = { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 };

  it('retries transient failures with backoff until success', async () => {
    const delays: number[] = [];
    const result = await withRetry(
      async (attempt) => {
        if (attempt < 3) throw new TransportError('s', 'connection-refused', 'm', true);
        return attempt;
      },
      { ...base, attempts: 5, sleep: async (ms) => void delays.push(ms) },
    );
    expect(result).toBe(3);
    expect(delays).toEqual([75, 150]);
  });

  it('throws the last error when attempts run out', async () => {
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw new TransportError('s', 'connection-refused', `refused ${calls}`, true);
      },
      { ...base, attempts: 3, sleep: async () => {} },
    );
    await expect(run).rejects.toThrow('refused 3');
    expect(calls).toBe(3);
  });

  it('never retries a final error', async () => {
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw new AgentError('s', 'apply', 'conflict', 'no');
      },
      { ...base, attempts: 5, sleep: async () => {} },
    );
    await expect(run).rejects.toBeInstanceOf(AgentError);
    expect(calls).toBe(1);
  });

  it('stops before a wait that would pass the deadline', async () => {
    let clock = 0;
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw new TransportError('s', 'timed-out', 'm', true);
      },
      {
        ...base,
        attempts: 10,
        deadline: 200,
        now: () => clock,
        sleep: async (ms) => {
          clock += ms;
        },
      },
    );
    await expect(run).rejects.toBeInstanceOf(TransportError);
    // waits 75 (t=75), 150 would end at 225 ≥ 200: stop after the second attempt.
    expect(calls).toBe(2);
  });
});
