/**
 * The controller's HTTP server (node:http): the status page, its JSON, Prometheus metrics,
 * a health check, and the webhook that makes the controller fetch at once.
 *
 *   GET  /            the fleet's status page (status-page.ts; `?fragment=main` for its refresh)
 *   GET  /sites/NAME  one site's page: providers, drift in full, timeline
 *   GET  /api/status  ApiStatus JSON (api-status.ts)
 *   GET  /api/sites/NAME  ApiSiteDetail JSON: the site and its timeline (404 for an unknown site)
 *   GET  /metrics     Prometheus text format
 *   GET  /healthz     200 "ok"
 *   POST /webhook     fetch now; with a secret configured, the request must carry it as
 *                     `Authorization: Bearer SECRET`, `X-Uplink-Token: SECRET`, or a GitHub
 *                     `X-Hub-Signature-256` HMAC of the body
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../errors.js';
import type { ControllerMetrics } from '../metrics/controller-metrics.js';
import { unknownSiteMessage } from '../report/suggest-names.js';
import type { ApiSiteDetail, ApiStatus } from './api-status.js';
import { renderFleetPage, renderSitePage, renderUnknownSitePage } from './status-page.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly status: () => ApiStatus;
  /** One site's detail (its timeline); undefined for a site the controller does not know. */
  readonly siteDetail: (site: string, status: ApiStatus) => ApiSiteDetail | undefined;
  readonly metrics: ControllerMetrics;
  /** Called for an accepted webhook; the answer does not wait for the fetch. */
  readonly onWebhook: () => void;
  readonly webhookSecret?: string;
}

const MAX_BODY = 1024 * 1024;

export async function startHttpServer(
  options: HttpServerOptions,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  // An empty secret would accept an empty token or an HMAC keyed with nothing.
  if (options.webhookSecret !== undefined && options.webhookSecret.trim() === '')
    throw new UsageError(
      'the webhook secret is empty; write a secret into http.webhookSecretFile (or UPLINK_WEBHOOK_SECRET_FILE), or unset it',
    );
  const server = createServer((req, res) => {
    handle(req, res, options).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${String(e)}\n`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const fragment = url.searchParams.get('fragment') === 'main';
  const method = req.method ?? 'GET';
  if (path === '/webhook') {
    if (method !== 'POST') return send(res, 405, 'text/plain', 'POST only\n', { Allow: 'POST' });
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, 'text/plain', 'body too large\n');
    if (options.webhookSecret !== undefined && !authorized(req, body, options.webhookSecret)) {
      return send(res, 401, 'text/plain', 'missing or wrong webhook secret\n');
    }
    options.onWebhook();
    return send(res, 202, 'application/json', '{"fetch":"queued"}\n');
  }
  if (method !== 'GET' && method !== 'HEAD')
    return send(res, 405, 'text/plain', 'GET only\n', { Allow: 'GET' });
  const site = /^\/(api\/)?sites\/([^/]+)$/.exec(path);
  if (site) {
    const name = decodeURIComponent(site[2]!);
    const status = options.status();
    const detail = options.siteDetail(name, status);
    const json = site[1] !== undefined;
    if (!detail) {
      const message = unknownSiteMessage(
        name,
        status.sites.map((s) => s.name),
      );
      return json
        ? send(res, 404, 'application/json', `${JSON.stringify({ error: message })}\n`)
        : send(res, 404, 'text/html; charset=utf-8', renderUnknownSitePage(message, status.now));
    }
    return json
      ? send(res, 200, 'application/json', `${JSON.stringify(detail)}\n`, { 'Cache-Control': 'no-store' })
      : send(res, 200, 'text/html; charset=utf-8', renderSitePage(detail, status.controller, fragment), {
          'Cache-Control': 'no-store',
        });
  }
  switch (path) {
    case '/':
      return send(res, 200, 'text/html; charset=utf-8', renderFleetPage(options.status(), fragment), {
        'Cache-Control': 'no-store',
      });
    case '/api/status':
      return send(res, 200, 'application/json', `${JSON.stringify(options.status())}\n`, {
        'Cache-Control': 'no-store',
      });
    case '/metrics': {
      options.metrics.observe(options.status());
      const text = await options.metrics.registry.metrics();
      return send(res, 200, options.metrics.registry.contentType, text);
    }
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
}

function authorized(req: IncomingMessage, body: Buffer, secret: string): boolean {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const token = bearer ?? (req.headers['x-uplink-token'] as string | undefined);
  if (token !== undefined) return same(token, secret);
  const signature = req.headers['x-hub-signature-256'];
  if (typeof signature === 'string') {
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    return same(signature, expected);
  }
  return false;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  code: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(code, { 'Content-Type': type, ...headers });
  res.end(body);
}
