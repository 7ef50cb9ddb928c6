import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_RUNNING, type TransitionEvent, TransitionHook } from './run-transition-hook.js';

const event: TransitionEvent = {
  site: 'branch-1',
  provider: 'isp1',
  state: 'down',
  previous: 'up',
  reason: 'test',
  at: 0,
};

describe('TransitionHook', () => {
  it('a hook that cannot start is logged once and does not widen the cap on hooks at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-hook-'));
    try {
      const logs: string[] = [];
      // The hook is missing at first (two failed spawns), then installed.
      const path = join(dir, 'hook.sh');
      const hook = new TransitionHook(path, 300, (line) => logs.push(line));
      await hook.run(event);
      await hook.run(event);
      await writeFile(path, '#!/bin/sh\nexec sleep 30\n');
      await chmod(path, 0o755);
      const runs = Array.from({ length: MAX_RUNNING + 1 }, () => hook.run(event));
      await Promise.all(runs);
      // Two failed starts freed two slots, not four: exactly one run over the cap is skipped.
      expect(logs.filter((l) => l.includes('skipped'))).toHaveLength(1);
      // A failed spawn emits both `error` and `close`: logged once, no spurious "exited -2".
      expect(logs.filter((l) => l.includes('ENOENT'))).toHaveLength(2);
      expect(logs.filter((l) => l.includes('exited'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
