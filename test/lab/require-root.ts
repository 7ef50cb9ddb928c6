/**
 * Namespace tests need root and a kernel that lets us create network namespaces. Outside CI
 * they are skipped with a reason; in CI (CI=true) a missing capability is a loud failure,
 * so a misconfigured runner can never turn the kernel tests into silent skips.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'vitest';

export type NamespaceSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

let cached: NamespaceSupport | undefined;

/** Synchronous probe (usable at collection time): root, `ip`, `nft`, and a throwaway netns. */
export function probeNamespaceSupport(): NamespaceSupport {
  if (cached !== undefined) return cached;
  cached = probe();
  return cached;
}

function probe(): NamespaceSupport {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: `not root (uid ${process.getuid()})` };
  }
  for (const tool of [
    ['ip', '-V'],
    ['nft', '--version'],
  ]) {
    const result = spawnSync(tool[0]!, tool.slice(1), { encoding: 'utf8' });
    if (result.error !== undefined || result.status !== 0) {
      return {
        ok: false,
        reason: `${tool[0]} is not usable: ${result.error?.message ?? result.stderr.trim()}`,
      };
    }
  }
  const name = `ul-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) {
    return { ok: false, reason: `ip netns add failed: ${(add.stderr || add.error?.message || '').trim()}` };
  }
  spawnSync('ip', ['netns', 'del', name]);
  return { ok: true };
}

/**
 * Returns true when namespace tests can run. When they cannot: throws under CI=true,
 * otherwise returns false (use with `describe.skipIf(!requireRoot())`), or, given a test
 * context, skips that test with the reason.
 */
export function requireRoot(context?: Pick<TestContext, 'skip'>): boolean {
  const support = probeNamespaceSupport();
  if (support.ok) return true;
  const message = `namespace tests need root and network namespaces: ${support.reason}`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: refusing to skip)`);
  if (context !== undefined) context.skip(message);
  // Outside a test context, say why the suite will be skipped.
  console.warn(`skipping: ${message}`);
  return false;
}
