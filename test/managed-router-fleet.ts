/**
 * A fleet repository for the ManagedRouter lab (test/lab/managed-router.ts) — one site, its
 * management on ROUTER_MGMT, provider isp1 — and the agent's status asked the way an operator
 * would (OpenSSH with the controller's restricted key).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseStatusResult } from '../controller/src/transport/agent-results.js';
import { type ManagedRouter, ROUTER_MGMT } from './lab/managed-router.js';
import { sshArgv } from './lab/sshd-in-namespace.js';

/** Policies between 500 and 899 (before suppressMain), a 30 s confirm window, one wave. */
const FLEET_YAML = `defaults:
  priorities:
    policy: [500, 899]
rollout:
  confirmWithin: 30s
  waves:
    - name: all
`;

/** The site's spec; `extra` (e.g. a `policies:` block) is appended as is. */
export function managedRouterSiteYaml(site: string, hostKey: string, extra = ''): string {
  return `name: ${site}
management:
  address: ${ROUTER_MGMT}
  user: root
  hostKey: ${hostKey}
providers:
  - name: isp1
    interface: isp1
    address: 198.51.100.2/29
    gateway: 198.51.100.1
    balance: 1
${extra}`;
}

/**
 * Writes fleet.yaml and sites/SITE.yaml into `repo` (made if missing); with `commit`, as the
 * first commit of a git repository on `main` (so `uplink apply` finds git's truth there).
 */
export async function writeManagedRouterFleet(
  repo: string,
  site: string,
  hostKey: string,
  extra = '',
  options: { commit?: boolean } = {},
): Promise<void> {
  await mkdir(join(repo, 'sites'), { recursive: true });
  await writeFile(join(repo, 'fleet.yaml'), FLEET_YAML);
  await writeFile(join(repo, 'sites', `${site}.yaml`), managedRouterSiteYaml(site, hostKey, extra));
  if (options.commit) {
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=Fleet Admin', '-c', 'user.email=admin@example.net', ...args], {
        cwd: repo,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    git('init', '--quiet', '--initial-branch', 'main');
    git('add', '-A');
    git('commit', '--quiet', '--allow-empty', '-m', 'the managed router fleet');
  }
}

/** The agent's `status` over OpenSSH from the controller namespace, validated with the result schema. */
export async function managedRouterStatus(m: ManagedRouter, site: string) {
  const result = await m.lab.exec(m.ctrl, sshArgv(m.sshd, m.controllerKey, 'root', []), {
    stdin: `${JSON.stringify({ v: 1, id: 1, method: 'status', params: {} })}\n`,
    timeoutMs: 30_000,
  });
  const answer = JSON.parse(result.stdout.trim()) as { ok: boolean; result: unknown };
  expect(answer.ok, result.stdout).toBe(true);
  return parseStatusResult(answer.result, site);
}
