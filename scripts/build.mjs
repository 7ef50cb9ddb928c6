// Builds the two CLIs. The agent is one self-contained file (routers get no
// node_modules); the controller runs from a checkout and keeps its packages external.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const banner = {
  js: "#!/usr/bin/env node\nimport { createRequire as __uplinkCreateRequire } from 'node:module';\nconst require = __uplinkCreateRequire(import.meta.url);",
};
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  banner,
  logLevel: 'warning',
};

// The agent's source stays in the daemon's memory for as long as it runs: whitespace and
// syntax are minified (names are kept, so stack traces still read), D153.
const agent = { ...common, minifyWhitespace: true, minifySyntax: true };

await Promise.all([
  build({ ...agent, entryPoints: ['agent/src/cli.ts'], outfile: 'dist/uplink-agent.mjs' }),
  // `uplink-agent rpc` alone, a few kB: it starts on every SSH connection (D55).
  build({ ...agent, entryPoints: ['agent/src/daemon/rpc-main.ts'], outfile: 'dist/uplink-agent-rpc.mjs' }),
  build({
    ...common,
    entryPoints: ['controller/src/cli.ts'],
    outfile: 'dist/uplink.mjs',
    packages: 'external',
  }),
  // The fleet simulator (test tooling, for bench/): runs from the checkout like the controller.
  build({
    ...common,
    entryPoints: ['test/fleet-sim/cli.ts'],
    outfile: 'dist/fleet-sim.mjs',
    packages: 'external',
  }),
  // The fleet lab (`make demo`): runs from a checkout like the controller.
  build({
    ...common,
    entryPoints: ['test/lab/fleet-lab-cli.ts'],
    outfile: 'dist/uplink-lab.mjs',
    packages: 'external',
  }),
]);
chmodSync('dist/uplink-agent.mjs', 0o755);
chmodSync('dist/uplink-agent-rpc.mjs', 0o755);
chmodSync('dist/uplink.mjs', 0o755);
chmodSync('dist/uplink-lab.mjs', 0o755);
