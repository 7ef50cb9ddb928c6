/**
 * The alert rules shipped in deploy/prometheus pass Prometheus' own checker and their unit
 * tests (`promtool check rules`, `promtool test rules`: each alert fires when and only when
 * it should), and name only metrics the controller exports. promtool comes with Debian's
 * `prometheus` package (Makefile DEB_PACKAGES); in CI its absence fails the test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ControllerMetrics } from '../controller/src/metrics/controller-metrics.js';
import { ROOT } from './build-dist.js';

const DIR = join(ROOT, 'deploy/prometheus');
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const available = promtool.error === undefined && promtool.status === 0;
if (!available && process.env.CI === 'true')
  throw new Error('promtool is missing (Debian package prometheus): the alert rule tests cannot run in CI');

describe.skipIf(!available)('Prometheus alert rules (deploy/prometheus)', () => {
  const run = (...args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });

  it('promtool check rules: valid', () => {
    const r = run('check', 'rules', 'uplink-alerts.yaml');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 8 rules found/);
  });

  it('promtool test rules: each alert fires when it should and stays quiet otherwise', () => {
    const r = run('test', 'rules', 'uplink-alerts.test.yaml');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('the rules name only metrics the controller exports', async () => {
    const rules = readFileSync(join(DIR, 'uplink-alerts.yaml'), 'utf8');
    const used = new Set(rules.match(/\buplink_[a-z_]+\b/g));
    const exported = new Set((await new ControllerMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(exported, name).toContain(name);
  });
});
