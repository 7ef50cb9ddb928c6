import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../http/api-status.js';
import { WebhookNotifier } from './webhook-notifier.js';

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A loopback receiver answering with `codes` in turn (then 204). */
async function receiver(codes: number[] = []) {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(codes.shift() ?? 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  close = () => new Promise<void>((r) => server.close(() => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

const event = (kind: string, level: ApiEvent['level'], at = 1_733_224_935_123): ApiEvent => ({
  at,
  level,
  kind,
  message: `lartc-split: ${kind}`,
  site: 'lartc-split',
});
const warnings: string[] = [];
const log = { warn: (_: object, msg: string) => void warnings.push(msg) };

describe('WebhookNotifier', () => {
  it('POSTs each event at or above minLevel, in order, with the documented body and a signature', async () => {
    const { url, got } = await receiver();
    const n = new WebhookNotifier({
      url,
      minLevel: 'warn',
      secret: 's3cret',
      controller: 'https://git.example.org/fleet.git',
      version: '0.1.0',
      log,
    });
    n.send(event('rollout-started', 'info'));
    n.send(event('provider-down', 'warn'));
    n.send(event('halted', 'error'));
    await n.flush();
    expect(got.map((g) => JSON.parse(g.body).event.kind)).toEqual(['provider-down', 'halted']);
    const first = got[0]!;
    expect(JSON.parse(first.body)).toEqual({
      version: 1,
      controller: 'https://git.example.org/fleet.git',
      event: { ...event('provider-down', 'warn'), time: '2024-12-03T11:22:15Z' },
    });
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['user-agent']).toBe('uplink/0.1.0');
    expect(first.headers['x-uplink-event']).toBe('provider-down');
    expect(first.headers['x-uplink-signature-256']).toBe(
      `sha256=${createHmac('sha256', 's3cret').update(first.body).digest('hex')}`,
    );
    expect(n.delivered).toBe(2);
  });

  it('tries a failed delivery again, then drops it and says so; the next events still go', async () => {
    const { url, got } = await receiver([500, 503, 502, 500]);
    warnings.length = 0;
    const n = new WebhookNotifier({
      url,
      minLevel: 'info',
      controller: 'c',
      version: 'v',
      log,
      retryDelaysMs: [10, 10],
    });
    n.send(event('a', 'info'));
    n.send(event('b', 'info'));
    await n.flush();
    // a: 500, 503, 502 → dropped; b: 500, then 204.
    expect(got.map((g) => JSON.parse(g.body).event.kind)).toEqual(['a', 'a', 'a', 'b', 'b']);
    expect(got[0]!.headers['x-uplink-signature-256']).toBeUndefined();
    expect(warnings).toEqual(['webhook: a not delivered after 3 tries; dropped']);
    expect(n.delivered).toBe(1);
  });
});
