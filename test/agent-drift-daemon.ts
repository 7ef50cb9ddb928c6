/**
 * The agent daemon as the drift and follow tests run it inside a router namespace: the real
 * runDaemon (ip monitor, nft poll, linux dataplane) with a scripted HealthSource instead of
 * probes. Bundled with esbuild by agent-drift-lab.ts and started with `ip netns exec`.
 *
 *   node entry.mjs STATE_DIR SOCKET HEALTH_FILE FULL_CHECK_MS
 *
 * HEALTH_FILE holds `{"isp2":"down"}`-style verdicts; the source re-reads it every 50 ms and
 * reports a change. Every configure/settled call is logged (`health: settled {...}`).
 */
import { readFile } from 'node:fs/promises';
import type { HealthSource } from '../agent/src/daemon/health-source.js';
import { runDaemon } from '../agent/src/daemon/run-daemon.js';
import { LinuxDataplane } from '../agent/src/dataplane/linux.js';
import type { Health } from '../agent/src/model/kernel-state.js';

const [stateDir, socketPath, healthFile, fullCheckMs] = process.argv.slice(2);
if (stateDir === undefined || socketPath === undefined || healthFile === undefined) {
  throw new Error('usage: entry STATE_DIR SOCKET HEALTH_FILE [FULL_CHECK_MS]');
}
const log = (line: string): void => {
  process.stderr.write(`uplink-agent: ${line}\n`);
};

function scriptedHealth(file: string): HealthSource {
  let current: Health = {};
  let text = '{}';
  const listeners = new Set<(health: Health) => void>();
  const timer = setInterval(() => {
    void readFile(file, 'utf8').then(
      (next) => {
        if (next === text) return;
        text = next;
        current = JSON.parse(next) as Health;
        log(`health: now ${next.trim()}`);
        for (const listener of listeners) listener(current);
      },
      () => {},
    );
  }, 50);
  return {
    current: () => current,
    report: () => [],
    configure: (desired) => log(`health: configured ${desired?.site ?? 'nothing'}`),
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    settled: async (health) => log(`health: settled ${JSON.stringify(health)}`),
    close: async () => clearInterval(timer),
  };
}

await runDaemon({
  stateDir,
  socketPath,
  dataplane: (markMask) => new LinuxDataplane(markMask === undefined ? {} : { markMask }),
  stderr: (text) => process.stderr.write(text),
  health: scriptedHealth(healthFile),
  watch: { fullCheckMs: Number(fullCheckMs ?? 30_000) },
});
