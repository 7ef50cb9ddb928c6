// Builds the installable package of Uplink (D132): `node scripts/pack.mjs` (or `make package`)
// writes dist/uplink-VERSION.tgz, for `npm install -g ./dist/uplink-VERSION.tgz` — `uplink` and
// `uplink-agent` on PATH, with nothing to download: both CLIs are single bundled files (the
// controller's dependencies bundled in, like the agent's), so the package has no dependencies.
// It also carries deploy/ (the agent installer and units, the controller's unit and config, the
// Prometheus rules) and the README.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const stage = join(root, 'build', 'package');
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'dist'), { recursive: true });

execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
await build({
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  banner: {
    // CommonJS dependencies (ssh2, pino, simple-git) read require, __filename and __dirname.
    js: [
      '#!/usr/bin/env node',
      "import { createRequire as __uplinkCreateRequire } from 'node:module';",
      "import { fileURLToPath as __uplinkFileURLToPath } from 'node:url';",
      "import { dirname as __uplinkDirname } from 'node:path';",
      'const require = __uplinkCreateRequire(import.meta.url);',
      'const __filename = __uplinkFileURLToPath(import.meta.url);',
      'const __dirname = __uplinkDirname(__filename);',
    ].join('\n'),
  },
  logLevel: 'warning',
  entryPoints: [join(root, 'controller/src/cli.ts')],
  outfile: join(stage, 'dist/uplink.mjs'),
  // ssh2's optional native speed-ups: it falls back to JavaScript without them.
  external: ['cpu-features', '*.node'],
});
for (const f of ['uplink-agent.mjs', 'uplink-agent-rpc.mjs'])
  cpSync(join(root, 'dist', f), join(stage, 'dist', f));
for (const f of ['uplink.mjs', 'uplink-agent.mjs', 'uplink-agent-rpc.mjs'])
  chmodSync(join(stage, 'dist', f), 0o755);
for (const d of ['agent', 'controller', 'prometheus', 'ci'])
  cpSync(join(root, 'deploy', d), join(stage, 'deploy', d), { recursive: true });
cpSync(join(root, 'README.md'), join(stage, 'README.md'));

writeFileSync(
  join(stage, 'package.json'),
  `${JSON.stringify(
    {
      name: pkg.name,
      version: pkg.version,
      description: pkg.description,
      type: 'module',
      license: pkg.license,
      engines: pkg.engines,
      bin: { uplink: 'dist/uplink.mjs', 'uplink-agent': 'dist/uplink-agent.mjs' },
      files: ['dist', 'deploy', 'README.md'],
    },
    null,
    2,
  )}\n`,
);
const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', join(root, 'dist')], {
  cwd: stage,
  encoding: 'utf8',
}).trim();
process.stdout.write(`${join(root, 'dist', out.split('\n').at(-1))}\n`);
