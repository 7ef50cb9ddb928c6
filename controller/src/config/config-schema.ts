/**
 * The controller's config file (`uplink run --config FILE`, YAML or JSON), as a zod schema.
 * Durations are written like the fleet spec's (`500ms`, `30s`, `5m`).
 */
import { z } from 'zod';

const duration = z.string().regex(/^\d+(?:\.\d+)?(?:ms|s|m|h)$/, 'a duration such as 30s, 5m or 500ms');

export const controllerConfigSchema = z
  .object({
    repo: z
      .object({
        /** Repository URL (https://, ssh://, user@host:path) or a local path. */
        url: z.string().min(1),
        branch: z.string().min(1).default('main'),
        pollInterval: duration.default('30s'),
        /** Extra GIT_SSH_COMMAND for fetching over SSH with a deploy key. */
        sshCommand: z.string().min(1).optional(),
      })
      .strict(),
    ssh: z
      .object({
        /** The controller's private key for the agents; default $UPLINK_SSH_KEY or ~/.ssh/id_ed25519. */
        identity: z.string().min(1).optional(),
        /** known_hosts file used for sites without a pinned hostKey in the spec. */
        knownHosts: z.string().min(1).optional(),
        connectTimeout: duration.default('15s'),
      })
      .strict()
      .default({ connectTimeout: '15s' }),
    /** Sites contacted at once for status polls (rollout waves have their own concurrency). */
    concurrency: z.number().int().min(1).max(1024).default(32),
    http: z
      .object({
        /** `HOST:PORT`; port 0 picks a free port. */
        listen: z
          .string()
          .regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'HOST:PORT, e.g. 127.0.0.1:9470')
          .default('127.0.0.1:9470'),
        /** File holding the webhook's shared secret; when set, POST /webhook must carry it. */
        webhookSecretFile: z.string().min(1).optional(),
      })
      .strict()
      .default({ listen: '127.0.0.1:9470' }),
    /** Directory of the controller's state and the repository mirror. */
    stateDir: z.string().min(1),
    signatures: z
      .object({
        enabled: z.boolean().default(false),
        /** GNUPGHOME holding only the trusted signing keys (the keyring is the policy). */
        keyring: z.string().min(1).optional(),
        /** Narrow further to these key fingerprints. */
        allowedKeys: z.array(z.string().regex(/^[0-9A-Fa-f ]{16,}$/, 'a key fingerprint')).default([]),
      })
      .strict()
      .default({ enabled: false, allowedKeys: [] }),
    status: z
      .object({
        /** How often every site's agent is asked for status (drift, health, generation). */
        pollInterval: duration.default('60s'),
        /** A status answer younger than this stands in for asking again before a rollout. */
        freshFor: duration.default('5m'),
      })
      .strict()
      .default({ pollInterval: '60s', freshFor: '5m' }),
    /**
     * Apply changes that move the route back to the controller (the agents' management-path
     * guard refuses them otherwise); commit-confirmed still reverts one that cuts the path.
     */
    allowManagementChange: z.boolean().default(false),
    /** Reconciliation (fleet.yaml rollout.reconcile): how long a failed attempt waits before the next. */
    reconcile: z
      .object({
        /** After the first failure; doubles after each further one. */
        backoff: duration.default('1m'),
        /** The longest wait. */
        maxBackoff: duration.default('1h'),
      })
      .strict()
      .default({ backoff: '1m', maxBackoff: '1h' }),
    /** Outgoing notifications of the controller's events. */
    notify: z
      .object({
        webhook: z
          .object({
            /** http:// or https:// URL that receives a JSON POST per event. */
            url: z.string().regex(/^https?:\/\/\S+$/, 'an http:// or https:// URL'),
            /** File holding the HMAC secret: the body is signed in X-Uplink-Signature-256. */
            secretFile: z.string().min(1).optional(),
            /** Events at or above this level are sent. */
            minLevel: z.enum(['info', 'warn', 'error']).default('warn'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type ControllerConfigSpec = z.infer<typeof controllerConfigSchema>;
