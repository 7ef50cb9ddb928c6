/** Builds dist/ exactly as `npm ci` (prepare) does; tests of the built CLIs call it once in beforeAll. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export function buildDist(): void {
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0)
    throw new Error(`build failed (scripts/build.mjs):\n${build.stderr}${build.stdout}`);
}
