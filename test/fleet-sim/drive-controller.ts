/**
 * The controller's side, composed from its real modules (no stand-ins): read the fleet
 * repository, validate and compile every site, push with applyAndConfirm through
 * mapWithConcurrency (what `uplink apply` does), and query every agent's status over SSH.
 */

import type { z } from 'zod';
import { statusResult } from '../../agent/src/model/protocol.js';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { readFleetFiles } from '../../controller/src/repo/read-fleet-files.js';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import {
  AgentSession,
  type ApplyAndConfirmOptions,
  type ApplyOutcome,
  applyAndConfirm,
  type ConnectOptions,
  connectSsh,
  mapWithConcurrency,
  type SshTarget,
} from '../../controller/src/transport/index.js';

export type AgentStatus = z.infer<typeof statusResult>;

export interface ApplyFleetOptions {
  readonly privateKey: Buffer;
  readonly concurrency: number;
  /** Generation = `${prefix}-${hash12}`, as `uplink apply` builds it from the commit. */
  readonly generationPrefix: string;
  readonly only?: readonly string[];
  readonly transport?: ApplyAndConfirmOptions;
}

export interface FleetApply {
  readonly outcomes: readonly ApplyOutcome[];
  readonly targets: readonly SshTarget[];
  readonly generations: ReadonlyMap<string, string>;
}

/** Validates and compiles the repository at `dir`, then applies every (or `only` those) site(s). */
export async function applyFleet(dir: string, options: ApplyFleetOptions): Promise<FleetApply> {
  const load = loadFleet(await readFleetFiles(dir));
  if (load.fleet === undefined) {
    throw new Error(
      load.diagnostics
        .filter((d) => d.severity === 'error')
        .map(formatDiagnostic)
        .join('\n'),
    );
  }
  const fleet = load.fleet;
  const sites = fleet.sites.filter((s) => options.only === undefined || options.only.includes(s.name));
  const generations = new Map<string, string>();
  const targets: SshTarget[] = sites.map((site) => ({
    site: site.name,
    host: site.management.address,
    port: site.management.port,
    user: site.management.user,
    hostKey: site.management.hostKey,
    privateKey: options.privateKey,
  }));
  const outcomes = await mapWithConcurrency(sites, options.concurrency, (site, i) => {
    const desired = compileSite(site);
    const generation = `${options.generationPrefix}-${desired.hash.slice(0, 12)}`;
    generations.set(site.name, generation);
    return applyAndConfirm(
      targets[i]!,
      desired,
      generation,
      fleet.rollout.confirmWithinMs,
      options.transport ?? {},
    );
  });
  return { outcomes, targets, generations };
}

export type StatusAnswer =
  | { readonly site: string; readonly ok: true; readonly status: AgentStatus }
  | { readonly site: string; readonly ok: false; readonly error: string };

/** One connection per site: hello + status, validated with the protocol's result schema. */
export async function queryStatus(
  targets: readonly SshTarget[],
  concurrency: number,
  connect: ConnectOptions = {},
): Promise<StatusAnswer[]> {
  return mapWithConcurrency(targets, concurrency, async (target): Promise<StatusAnswer> => {
    try {
      const connection = await connectSsh(target, connect);
      try {
        const session = await AgentSession.open(connection);
        await session.hello();
        const status = statusResult.parse(await session.status());
        await session.close();
        return { site: target.site, ok: true, status };
      } finally {
        connection.close();
      }
    } catch (error) {
      return { site: target.site, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  });
}
