/**
 * The controller sees an agent's faults (D103) the way `uplink run` and `rollout` ask for
 * status: the real SSH site transport (ssh2) against a simulated router — the real agent
 * daemon over the memory kernel behind an ssh2 server, every channel through the real rpc
 * bridge. The transport says hello on the status call's round trip, so it is a revision-3
 * session and is told the faults; a session without hello (an older client) is not.
 */
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statusResult } from '../../agent/src/model/protocol.js';
import { formatStatus } from '../../controller/src/commands/status-command.js';
import { buildApiStatus } from '../../controller/src/http/build-api-status.js';
import { reportFromStatus } from '../../controller/src/run/site-report.js';
import { createSshSiteTransport, sshTargetOf } from '../../controller/src/run/site-transport.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import { emptyControllerState } from '../../controller/src/state/index.js';
import { AgentSession, connectSsh } from '../../controller/src/transport/index.js';
import { generateFleetFiles, simSitesFromFleet, siteName } from './generate-fleet.js';
import { type SimFleet, startSimFleet } from './sim-fleet.js';

let fleet: SimFleet | undefined;
const SITE = siteName(0);
/** One site, one wave. */
const WAVES = `    - name: all
`;

beforeEach(async () => {
  const specs = simSitesFromFleet(generateFleetFiles({ count: 1, canaries: 0, waves: WAVES }), {
    generation: (h) => `sim-${h.slice(0, 12)}`,
  });
  fleet = await startSimFleet({ sites: specs });
});
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

function validSite() {
  const ports = new Map(fleet!.targets.map((t) => [t.site, t.port]));
  const files = generateFleetFiles({
    count: 1,
    canaries: 0,
    waves: WAVES,
    management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
    hostKey: fleet!.hostKey,
  });
  return loadFleet(files).fleet!.sites.find((s) => s.name === SITE)!;
}

describe("the controller's view of an agent's faults (fleet simulator, real SSH transport)", () => {
  it('a vanished uplink interface reaches status, /api/status and uplink status; an older session is not told', async () => {
    // wan2 (isp2's interface) is unplugged: its routes and sysctls go with it.
    fleet!.site(SITE).dataplane.deleteInterface('wan2');
    const privateKey = await readFile(fleet!.controllerKeyPath);
    const site = validSite();
    const transport = createSshSiteTransport({ privateKey });
    try {
      const status = await transport.status(site);
      expect(status.faults).toEqual([
        expect.objectContaining({ kind: 'interface-missing', subject: 'wan2' }),
      ]);
      const api = buildApiStatus({
        now: Date.now(),
        version: 'test',
        controller: {
          repo: null,
          branch: null,
          pollIntervalMs: null,
          lastFetchAt: null,
          lastFetchError: null,
          signatureVerification: false,
        },
        state: emptyControllerState(),
        reports: new Map([[SITE, reportFromStatus(status, Date.now())]]),
        events: [],
      });
      expect(api.sites[0]!.faults).toEqual([
        expect.objectContaining({ kind: 'interface-missing', subject: 'wan2' }),
      ]);
      expect(formatStatus(api)).toMatch(
        /^ {2}fault interface-missing: interface wan2 of provider isp2 does not exist/m,
      );
    } finally {
      transport.close?.();
    }

    // A client that never says hello is answered in revision 1's words: no faults field.
    const connection = await connectSsh(sshTargetOf(site, { privateKey }), {});
    try {
      const session = await AgentSession.open(connection);
      const raw = statusResult.parse(await session.status());
      expect(raw).not.toHaveProperty('faults');
      await session.close();
    } finally {
      await connection.close();
    }
  });
});
