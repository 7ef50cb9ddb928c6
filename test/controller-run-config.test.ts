/** `uplink run --config`: files the config or the environment names must exist, or it stops with exit 2. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';

describe('uplink run: secret files', () => {
  let dir: string;
  beforeAll(() => {
    buildDist();
    dir = mkdtempSync(join(tmpdir(), 'uplink-run-config-'));
    writeFileSync(join(dir, 'key'), 'not read further\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (config: string, env: Record<string, string> = {}) => {
    const file = join(dir, 'controller.yaml');
    writeFileSync(file, config);
    return spawnSync(process.execPath, [join(ROOT, 'dist/uplink.mjs'), 'run', '--config', file], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
      timeout: 30_000,
    });
  };
  const base = () =>
    `repo:\n  url: ${join(dir, 'no-repo')}\nstateDir: ${join(dir, 'state')}\nssh:\n  identity: ${join(dir, 'key')}\n`;

  it('a known_hosts file named by UPLINK_KNOWN_HOSTS that does not exist: exit 2 naming the setting', () => {
    const missing = join(dir, 'known_hosts');
    const result = run(base(), { UPLINK_KNOWN_HOSTS: missing });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(
      `${missing}: cannot read it (ENOENT); create it, or unset ssh.knownHosts / UPLINK_KNOWN_HOSTS`,
    );
  });

  it('a webhook secret file named in the config that does not exist: exit 2 naming the setting', () => {
    const missing = join(dir, 'secret');
    const result = run(`${base()}http:\n  webhookSecretFile: ${missing}\n`);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`unset http.webhookSecretFile / UPLINK_WEBHOOK_SECRET_FILE`);
  });
});
