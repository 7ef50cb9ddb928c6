/**
 * `uplink run --config FILE`: the controller daemon. Watches the fleet repository (poll +
 * webhook), rolls out in waves, polls status, serves /metrics, /healthz, /api/status and
 * the status page. Logs are pino JSON lines on stdout. SIGTERM/SIGINT stop it cleanly;
 * routers keep their state whether it runs or not.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { loadControllerConfig } from '../config/index.js';
import { UsageError } from '../errors.js';
import type { ApiEvent } from '../http/api-status.js';
import { startHttpServer } from '../http/http-server.js';
import { ControllerDaemon, redactUrl } from '../run/controller-daemon.js';
import { createSshSiteTransport } from '../run/site-transport.js';
import { WebhookNotifier } from '../run/webhook-notifier.js';

export interface RunOptions {
  config: string;
}

export async function runCommand(opts: RunOptions, version: string): Promise<void> {
  const config = await loadControllerConfig(opts.config);
  const log = pino({ level: config.logLevel, base: { service: 'uplink-controller' } });
  const privateKey = await readFile(config.ssh.identity).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(
      `${config.ssh.identity}: cannot read the SSH private key (${e.code}); set ssh.identity or UPLINK_SSH_KEY`,
    );
  });
  const knownHosts = config.ssh.knownHosts
    ? await readSecretFile(config.ssh.knownHosts, 'ssh.knownHosts / UPLINK_KNOWN_HOSTS')
    : undefined;
  const webhookSecret = config.http.webhookSecretFile
    ? (
        await readSecretFile(
          config.http.webhookSecretFile,
          'http.webhookSecretFile / UPLINK_WEBHOOK_SECRET_FILE',
        )
      ).trim()
    : undefined;
  if (webhookSecret === '')
    throw new UsageError(
      `${config.http.webhookSecretFile}: the webhook secret file is empty; write a secret into it, or unset http.webhookSecretFile / UPLINK_WEBHOOK_SECRET_FILE`,
    );
  const notifier = config.notify.webhook
    ? new WebhookNotifier({
        url: config.notify.webhook.url,
        minLevel: config.notify.webhook.minLevel,
        controller: redactUrl(config.repo.url),
        version,
        log,
        ...(config.notify.webhook.secretFile
          ? {
              secret: (
                await readSecretFile(
                  config.notify.webhook.secretFile,
                  'notify.webhook.secretFile / UPLINK_NOTIFY_SECRET_FILE',
                )
              ).trim(),
            }
          : {}),
      })
    : undefined;
  const transport = createSshSiteTransport({
    privateKey,
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    connect: { connectTimeoutMs: config.ssh.connectTimeoutMs },
    log,
    allowManagementChange: config.allowManagementChange,
  });
  const daemon = new ControllerDaemon({
    repo: {
      url: config.repo.url,
      branch: config.repo.branch,
      ...(config.repo.sshCommand ? { env: { GIT_SSH_COMMAND: config.repo.sshCommand } } : {}),
    },
    stateDir: config.stateDir,
    transport,
    log,
    pollIntervalMs: config.repo.pollIntervalMs,
    statusPollIntervalMs: config.status.pollIntervalMs,
    freshForMs: config.status.freshForMs,
    concurrency: config.concurrency,
    signatures: config.signatures.enabled
      ? {
          ...(config.signatures.keyring ? { gpgHome: config.signatures.keyring } : {}),
          allowedFingerprints: config.signatures.allowedKeys,
        }
      : null,
    version,
    reconcileBackoffMs: config.reconcile.backoffMs,
    reconcileMaxBackoffMs: config.reconcile.maxBackoffMs,
    ...(notifier ? { onEvent: (e: ApiEvent) => notifier.send(e) } : {}),
  });
  await daemon.start();
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    status: () => daemon.status(),
    siteDetail: (site, status) => daemon.siteDetail(site, status),
    metrics: daemon.metrics,
    onWebhook: () => {
      log.info({}, 'webhook: fetching now');
      void daemon.triggerFetch();
    },
    ...(webhookSecret !== undefined ? { webhookSecret } : {}),
  });
  log.info({ url: http.url }, `listening on ${http.url}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await http.close();
  await daemon.stop();
  await notifier?.flush(true);
}

/** A file the config (or the environment) names: unreadable is a usage error that says which setting. */
async function readSecretFile(path: string, setting: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot read it (${e.code ?? String(e)}); create it, or unset ${setting}`);
  });
}
