/**
 * Reads and validates the controller's config file. Errors are diagnostics with
 * FILE:LINE:COL like the fleet spec's; paths in the file are relative to the file.
 * Environment variables name secret files without writing them into the config:
 * UPLINK_SSH_KEY (ssh.identity), UPLINK_KNOWN_HOSTS (ssh.knownHosts),
 * UPLINK_WEBHOOK_SECRET_FILE (http.webhookSecretFile), UPLINK_GPG_HOME (signatures.keyring),
 * UPLINK_NOTIFY_SECRET_FILE (notify.webhook.secretFile).
 * The config file wins over the environment.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UplinkError, UsageError } from '../errors.js';
import { type Diagnostic, formatDiagnostic } from '../spec/diagnostic.js';
import { parseDuration } from '../spec/duration.js';
import { parseYamlFile } from '../spec/parse-yaml-file.js';
import { validateWithSchema } from '../spec/schema-diagnostics.js';
import { controllerConfigSchema } from './config-schema.js';

export interface ControllerConfig {
  /** The config file, absolute (null when built from flags). */
  readonly file: string | null;
  readonly repo: {
    readonly url: string;
    readonly branch: string;
    readonly pollIntervalMs: number;
    readonly sshCommand?: string;
  };
  readonly ssh: {
    readonly identity: string;
    readonly knownHosts?: string;
    readonly connectTimeoutMs: number;
  };
  readonly concurrency: number;
  readonly http: { readonly host: string; readonly port: number; readonly webhookSecretFile?: string };
  readonly stateDir: string;
  readonly signatures: {
    readonly enabled: boolean;
    readonly keyring?: string;
    readonly allowedKeys: readonly string[];
  };
  readonly status: { readonly pollIntervalMs: number; readonly freshForMs: number };
  /** Applies may move the management path (commit-confirmed still guards them). */
  readonly allowManagementChange: boolean;
  readonly reconcile: { readonly backoffMs: number; readonly maxBackoffMs: number };
  readonly notify: {
    readonly webhook?: {
      readonly url: string;
      readonly secretFile?: string;
      readonly minLevel: 'info' | 'warn' | 'error';
    };
  };
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export type ConfigLoad =
  | { readonly config: ControllerConfig; readonly diagnostics: readonly Diagnostic[] }
  | { readonly config?: undefined; readonly diagnostics: readonly Diagnostic[] };

/** Pure: the config file's text → a config or located diagnostics. */
export function parseControllerConfig(
  file: string,
  text: string,
  env: Readonly<Record<string, string | undefined>> = {},
  home = '/root',
): ConfigLoad {
  const { parsed, diagnostics } = parseYamlFile(file, text);
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  const { value, diagnostics: schemaDiagnostics } = validateWithSchema(parsed, controllerConfigSchema);
  if (!value) return { diagnostics: [...diagnostics, ...schemaDiagnostics] };
  const base = dirname(resolve(file));
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  // A repo URL that is not a URL is a local path, relative to the config file too.
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(value.repo.url) || /^[^/:]+@[^/:]+:/.test(value.repo.url);
  const [host, port] = splitListen(value.http.listen);
  const problems: Diagnostic[] = [];
  if (port > 65535) {
    const pos = parsed.locate(['http', 'listen']);
    problems.push({
      severity: 'error',
      file,
      line: pos.line,
      col: pos.col,
      path: 'http.listen',
      message: `http.listen: port ${port} is not a TCP port; write 0–65535`,
    });
  }
  if (value.signatures.enabled && !value.signatures.keyring && !env.UPLINK_GPG_HOME) {
    const pos = parsed.locate(['signatures', 'enabled']);
    problems.push({
      severity: 'error',
      file,
      line: pos.line,
      col: pos.col,
      path: 'signatures.enabled',
      message:
        'signatures.enabled: needs signatures.keyring (a GNUPGHOME holding only the trusted keys) or UPLINK_GPG_HOME',
    });
  }
  if (problems.length > 0) return { diagnostics: [...diagnostics, ...problems] };
  const identity = value.ssh.identity ?? env.UPLINK_SSH_KEY ?? join(home, '.ssh', 'id_ed25519');
  const knownHosts = value.ssh.knownHosts ?? env.UPLINK_KNOWN_HOSTS;
  const secret = value.http.webhookSecretFile ?? env.UPLINK_WEBHOOK_SECRET_FILE;
  const keyring = value.signatures.keyring ?? env.UPLINK_GPG_HOME;
  const hook = value.notify.webhook;
  const hookSecret = hook?.secretFile ?? env.UPLINK_NOTIFY_SECRET_FILE;
  const config: ControllerConfig = {
    file: resolve(file),
    repo: {
      url: isUrl ? value.repo.url : path(value.repo.url),
      branch: value.repo.branch,
      pollIntervalMs: parseDuration(value.repo.pollInterval),
      ...(value.repo.sshCommand ? { sshCommand: value.repo.sshCommand } : {}),
    },
    ssh: {
      identity: path(identity),
      ...(knownHosts ? { knownHosts: path(knownHosts) } : {}),
      connectTimeoutMs: parseDuration(value.ssh.connectTimeout),
    },
    concurrency: value.concurrency,
    http: { host, port, ...(secret ? { webhookSecretFile: path(secret) } : {}) },
    stateDir: path(value.stateDir),
    signatures: {
      enabled: value.signatures.enabled,
      ...(keyring ? { keyring: path(keyring) } : {}),
      allowedKeys: value.signatures.allowedKeys.map((k) => k.replace(/\s+/g, '').toUpperCase()),
    },
    status: {
      pollIntervalMs: parseDuration(value.status.pollInterval),
      freshForMs: parseDuration(value.status.freshFor),
    },
    allowManagementChange: value.allowManagementChange,
    reconcile: {
      backoffMs: parseDuration(value.reconcile.backoff),
      maxBackoffMs: parseDuration(value.reconcile.maxBackoff),
    },
    notify: hook
      ? {
          webhook: {
            url: hook.url,
            minLevel: hook.minLevel,
            ...(hookSecret ? { secretFile: path(hookSecret) } : {}),
          },
        }
      : {},
    logLevel: value.log.level,
  };
  return { config, diagnostics };
}

function splitListen(listen: string): [string, number] {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at).replace(/^\[|\]$/g, '');
  return [host, Number(listen.slice(at + 1))];
}

/** Reads the file; a missing file is a usage error, an invalid one lists every diagnostic. */
export async function loadControllerConfig(file: string): Promise<ControllerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `${file}: cannot read the controller config (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const load = parseControllerConfig(file, text, process.env, homedir());
  if (!load.config) {
    const errors = load.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    throw new UplinkError('usage', `${file}: invalid controller config:\n${errors.join('\n')}`);
  }
  return load.config;
}
