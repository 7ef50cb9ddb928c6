/**
 * The nudge from `uplink-agent delegated` (D155): the daemon watches the state directory's
 * `delegated/` with inotify (fs.watch), and every record written or removed there is an
 * event like a link or address change of that uplink — followed at once. An expired prefix
 * raises no event; the periodic full check (30 s) sees it gone from the facts.
 */
import { type FSWatcher, watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { delegatedDir } from '../engine/delegated-store.js';
import type { KernelEvent, KernelEvents } from './kernel-watch.js';

export async function watchDelegated(stateDir: string, log: (line: string) => void): Promise<KernelEvents> {
  const dir = delegatedDir(stateDir);
  const listeners: ((event: KernelEvent) => void)[] = [];
  let watcher: FSWatcher | undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    watcher = watch(dir, { persistent: false }, (_type, name) => {
      const file = name?.toString() ?? '';
      if (file.includes('.tmp-')) return;
      const iface = file.endsWith('.json') ? file.slice(0, -'.json'.length) : undefined;
      for (const listener of listeners)
        listener({ kind: 'facts', ...(iface === undefined ? {} : { iface }) });
    });
    watcher.on('error', (error) =>
      log(`watching ${dir} failed: ${error.message}; delegated prefixes are read every 30 s`),
    );
  } catch (error) {
    log(
      `cannot watch ${dir}: ${(error as Error).message}; delegated prefixes are read every 30 s instead of at once`,
    );
  }
  return {
    onEvent: (listener) => listeners.push(listener),
    close: async () => watcher?.close(),
  };
}
