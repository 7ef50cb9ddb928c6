import { afterAll, afterEach } from 'vitest';
import { Lab } from './lab.js';

/**
 * A lab whose cleanup is registered with vitest: `scope: 'file'` (default) cleans up in
 * afterAll, `'test'` after each test. Call at describe level or top level of a test file.
 */
export function useLab(tag: string, scope: 'file' | 'test' = 'file'): { readonly current: Lab } {
  const holder = { current: new Lab(tag) };
  const hook = scope === 'file' ? afterAll : afterEach;
  hook(async () => {
    const lab = holder.current;
    if (scope === 'test') holder.current = new Lab(tag);
    await lab.cleanup();
  });
  return holder;
}
