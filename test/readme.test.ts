/**
 * Keeps the README's commands true. Blocks fenced as ```sh runnable are run, line by line,
 * from the repository root with the built CLIs (each line must exit 0). The other shell
 * blocks name commands too heavy to run here (`make demo`, `make test`): for those, each
 * `make TARGET` must be a Makefile target, and each `uplink COMMAND` / `uplink-agent COMMAND`
 * a subcommand the built CLI lists in its help.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDist, ROOT } from './build-dist.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```(sh|bash|shell)([^\n]*)\n([\s\S]*?)^```$/gm)].map((m) => ({
  runnable: /\brunnable\b/.test(m[2]!),
  lines: m[3]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#')),
}));

function help(bin: string): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', bin), '--help'], { encoding: 'utf8' });
  return r.stdout;
}

describe('README commands', () => {
  beforeAll(() => buildDist(), 120_000);

  it('has runnable blocks and other shell blocks', () => {
    expect(blocks.filter((b) => b.runnable).length).toBeGreaterThan(0);
    expect(blocks.filter((b) => !b.runnable).length).toBeGreaterThan(0);
  });

  it('every line of a runnable block exits 0', () => {
    for (const line of blocks.filter((b) => b.runnable).flatMap((b) => b.lines)) {
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', line], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `${line}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout.length, line).toBeGreaterThan(0);
    }
  });

  it('every make target and CLI subcommand in the other blocks exists', () => {
    const makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8');
    const uplinkHelp = help('uplink.mjs');
    const agentHelp = help('uplink-agent.mjs');
    const lines = blocks.filter((b) => !b.runnable).flatMap((b) => b.lines);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const make = /^make\s+([a-z-]+)/.exec(line);
      if (make) expect(makefile, line).toMatch(new RegExp(`^${make[1]}:`, 'm'));
      const uplink = /(?:^|\s)(?:npx\s+)?uplink\s+([a-z-]+)/.exec(line);
      if (uplink) expect(uplinkHelp, line).toMatch(new RegExp(`^\\s+${uplink[1]}\\b`, 'm'));
      const agent = /(?:^|\s)uplink-agent\s+([a-z-]+)/.exec(line);
      if (agent) expect(agentHelp, line).toMatch(new RegExp(`^\\s+${agent[1]}\\b`, 'm'));
    }
  });
});
