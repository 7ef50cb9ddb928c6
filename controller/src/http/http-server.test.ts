import { describe, expect, it } from 'vitest';
import { ControllerMetrics } from '../metrics/controller-metrics.js';
import type { ApiStatus } from './api-status.js';
import { startHttpServer } from './http-server.js';

describe('startHttpServer', () => {
  it('refuses an empty webhook secret (it would accept an empty token)', async () => {
    const options = {
      host: '127.0.0.1',
      port: 0,
      status: () => ({}) as ApiStatus,
      siteDetail: () => undefined,
      metrics: new ControllerMetrics(),
      onWebhook: () => {},
    };
    await expect(startHttpServer({ ...options, webhookSecret: '' })).rejects.toThrow(
      /webhook secret is empty/,
    );
    const ok = await startHttpServer({ ...options, webhookSecret: 'hunter2' });
    const empty = await fetch(`${ok.url}/webhook`, { method: 'POST', headers: { 'X-Uplink-Token': '' } });
    expect(empty.status).toBe(401);
    await ok.close();
  });
});
