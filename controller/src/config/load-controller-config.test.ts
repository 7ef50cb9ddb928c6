import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { parseControllerConfig } from './load-controller-config.js';

describe('parseControllerConfig', () => {
  it('fills defaults, resolves paths against the file and takes secret paths from the environment', () => {
    const load = parseControllerConfig(
      '/etc/uplink/controller.yaml',
      'repo:\n  url: ../fleet\nstateDir: state\n',
      { UPLINK_SSH_KEY: '/run/secrets/key', UPLINK_WEBHOOK_SECRET_FILE: 'hook' },
    );
    expect(load.config).toMatchObject({
      repo: { url: '/etc/fleet', branch: 'main', pollIntervalMs: 30_000 },
      ssh: { identity: '/run/secrets/key' },
      http: { host: '127.0.0.1', port: 9470, webhookSecretFile: '/etc/uplink/hook' },
      stateDir: '/etc/uplink/state',
      status: { pollIntervalMs: 60_000, freshForMs: 300_000 },
      signatures: { enabled: false },
    });
    const url = parseControllerConfig('c.yaml', 'repo: { url: "git@example.org:fleet.git" }\nstateDir: /s\n');
    expect(url.config?.repo.url).toBe('git@example.org:fleet.git');
  });

  it('reconcile backoff and the outgoing webhook', () => {
    const plain = parseControllerConfig('/etc/uplink/c.yaml', 'repo: { url: x }\nstateDir: /s\n');
    expect(plain.config).toMatchObject({
      reconcile: { backoffMs: 60_000, maxBackoffMs: 3_600_000 },
      notify: {},
    });
    const load = parseControllerConfig(
      '/etc/uplink/c.yaml',
      'repo: { url: x }\nstateDir: /s\nreconcile: { backoff: 30s, maxBackoff: 10m }\nnotify:\n  webhook: { url: "https://chat.example.org/hook", minLevel: error }\n',
      { UPLINK_NOTIFY_SECRET_FILE: 'notify-secret' },
    );
    expect(load.config).toMatchObject({
      reconcile: { backoffMs: 30_000, maxBackoffMs: 600_000 },
      notify: {
        webhook: {
          url: 'https://chat.example.org/hook',
          minLevel: 'error',
          secretFile: '/etc/uplink/notify-secret',
        },
      },
    });
    const bad = parseControllerConfig(
      'c.yaml',
      'repo: { url: x }\nstateDir: /s\nnotify: { webhook: { url: "ftp://x" } }\n',
    );
    expect(bad.diagnostics.map(formatDiagnostic).join('\n')).toMatch(
      /^c\.yaml:3:\d+: error: notify\.webhook\.url: .*an http:\/\/ or https:\/\/ URL/m,
    );
  });

  it.each([
    [
      'an unknown key, with a suggestion',
      'repo:\n  url: x\n  pollInterval: 10s\nstateDir: /s\nconcurency: 4\n',
      'c.yaml:5:1: error: concurency: unknown key "concurency"; did you mean "concurrency"?',
    ],
    [
      'a bad duration',
      'repo:\n  url: x\n  pollInterval: soon\nstateDir: /s\n',
      'c.yaml:3:17: error: repo.pollInterval',
    ],
    ['a missing state dir', 'repo:\n  url: x\n', 'c.yaml:1:1: error: stateDir: required'],
    [
      'a port out of range',
      'repo: { url: x }\nstateDir: /s\nhttp: { listen: "0.0.0.0:70000" }\n',
      'c.yaml:3:17: error: http.listen: port 70000',
    ],
    [
      'signatures without a keyring',
      'repo: { url: x }\nstateDir: /s\nsignatures:\n  enabled: true\n',
      'c.yaml:4:12: error: signatures.enabled: needs signatures.keyring',
    ],
  ])('%s is located FILE:LINE:COL', (_, text, expected) => {
    const load = parseControllerConfig('c.yaml', text);
    expect(load.config).toBeUndefined();
    expect(load.diagnostics.map(formatDiagnostic).join('\n')).toContain(expected);
  });
});
