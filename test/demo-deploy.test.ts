/**
 * deploy/controller cannot be built into an image here (no container runtime), so this keeps
 * its files consistent with the code they name: the example config validates with the
 * controller's own loader, the systemd unit and the Containerfile start the command the CLI
 * has, with the config path the image expects, and the Containerfile copies files that exist
 * and runs the build that makes what it copies out of the build stage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseControllerConfig } from '../controller/src/config/index.js';
import { formatDiagnostic } from '../controller/src/spec/diagnostic.js';
import { ROOT } from './build-dist.js';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('deploy/controller', () => {
  it('controller.example.yaml validates, and the env-named secrets fill what it leaves out', () => {
    const text = read('deploy/controller/controller.example.yaml');
    const load = parseControllerConfig('/etc/uplink/controller.yaml', text, {
      UPLINK_SSH_KEY: '/etc/uplink/id_ed25519',
      UPLINK_KNOWN_HOSTS: '/etc/uplink/known_hosts',
    });
    expect(load.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    expect(load.config?.ssh.identity).toBe('/etc/uplink/id_ed25519');
    expect(load.config?.stateDir).toBe('/var/lib/uplink-controller');
  });

  it('the unit and the image run `uplink run --config` from the built bundle', () => {
    const unit = read('deploy/controller/uplink-controller.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/uplink\/dist\/uplink\.mjs run --config (\S+)$/m);
    expect(unit).toMatch(/^StateDirectory=uplink-controller$/m);
    const cli = read('controller/src/cli.ts');
    expect(cli).toContain(".command('run')");
    expect(cli).toContain("requiredOption('--config <file>'");
    const build = read('scripts/build.mjs');
    expect(build).toContain("outfile: 'dist/uplink.mjs'");
    const containerfile = read('deploy/controller/Containerfile');
    expect(containerfile).toContain('RUN node scripts/build.mjs');
    expect(containerfile).toContain('COPY --from=build /src/dist/uplink.mjs ./dist/uplink.mjs');
    expect(containerfile).toContain('ENTRYPOINT ["node", "/opt/uplink/dist/uplink.mjs"]');
    expect(containerfile).toContain('CMD ["run", "--config", "/etc/uplink/controller.yaml"]');
    // Every file the build stage copies from the context exists.
    for (const m of containerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of m[1]!.split(/\s+/))
        if (source !== '.') expect(existsSync(join(ROOT, source))).toBe(true);
    }
    // The controller bundle keeps its packages external: the image must ship node_modules.
    expect(containerfile).toContain('COPY --from=build /src/node_modules ./node_modules');
  });

  it('the env variables the unit and image set are the ones the config loader reads', () => {
    const loader = read('controller/src/config/load-controller-config.ts');
    const unit = read('deploy/controller/uplink-controller.service');
    const containerfile = read('deploy/controller/Containerfile');
    const names = new Set(
      [...`${unit}\n${containerfile}`.matchAll(/\b(UPLINK_[A-Z_]+)=/g)].map((m) => m[1]!),
    );
    expect(names.size).toBeGreaterThan(0);
    for (const name of names) expect(loader).toContain(name);
  });
});
