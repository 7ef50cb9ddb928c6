/**
 * Debian's chromium, headless, driven by playwright-core, for the status page tests. A fresh
 * profile directory per browser; `netns` runs the browser inside a namespace (through a
 * wrapper that `ip netns exec`s it, which keeps playwright's pipe file descriptors).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export interface HeadlessBrowser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(
  netns?: string,
  options: { javaScript?: boolean } = {},
): Promise<HeadlessBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'uplink-chromium-'));
  let executablePath = CHROMIUM;
  if (netns !== undefined) {
    executablePath = join(dir, 'chromium-in-netns');
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec '${netns}' ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath,
    headless: true,
    javaScriptEnabled: options.javaScript !== false,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
