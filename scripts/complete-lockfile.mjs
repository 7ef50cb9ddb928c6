// Adds lockfile entries for platform-specific optional packages (biome, rollup, …) that
// the registry mirror this project is built against does not serve. Without them
// `npm ci` refuses the lockfile as "out of sync". Each entry carries its os/cpu/libc,
// so npm skips it on other platforms without fetching. Run after every `npm install`.
// See docs/decisions.md (D13).
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const OSES = [
  'android',
  'darwin',
  'freebsd',
  'openbsd',
  'openharmony',
  'win32',
  'linux',
  'sunos',
  'aix',
  'netbsd',
];
const CPUS = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el', 'wasm32'];

let added = 0;
for (const [location, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key] || lock.packages[`${location}/${key}`]) continue;
    const base = name.split('/').pop();
    const os = OSES.find((o) => base.includes(`-${o}`));
    const cpu = CPUS.find((c) => base.includes(`-${c}`));
    if (!os || !cpu) continue; // not a platform binary: leave it to npm
    const libc = base.includes('musl') ? 'musl' : os === 'linux' ? 'glibc' : undefined;
    lock.packages[key] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(libc ? { libc: [libc] } : {}),
    };
    added++;
  }
}
const [root, ...rest] = Object.entries(lock.packages);
lock.packages = Object.fromEntries([root, ...rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform entries`);
