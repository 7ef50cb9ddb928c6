/**
 * The agent's management-path guard, offline (D173): for a changed site, how replies to the
 * controller would leave the router under the base spec and under the head spec, both
 * resolved against the site's last reported facts, with the controller's and the router's
 * address as the router saw them on the status connection. The agent runs this very check
 * (checkManagementPath) before each apply and refuses a change that moves the path, so a
 * pull request can show the refusal before a rollout halts on it. Pure.
 */
import { checkManagementPath, mergeOwnershipScopes, ownershipScope, resolve } from '#agent/core';
import {
  type DesiredState,
  type FactsRecord,
  interfaceFactsOf,
  type ManagementPathCheck,
} from '#agent/model';

export type OfflineManagementCheck =
  | {
      readonly checked: true;
      readonly check: ManagementPathCheck;
      readonly refused: boolean;
      readonly message: string | null;
    }
  | { readonly checked: false; readonly reason: string };

/** An ephemeral port for the controller's side (the facts leave it out: it changes per connection). */
const CONTROLLER_PORT = 40000;

export function checkManagementOffline(
  before: DesiredState,
  after: DesiredState,
  record: FactsRecord,
): OfflineManagementCheck {
  const connection = record.facts.connection;
  if (connection === undefined)
    return {
      checked: false,
      reason:
        'the facts carry no controller connection (they were read on the router, not asked for by a controller)',
    };
  const facts = interfaceFactsOf(record.facts);
  // What the router runs now: the base spec over its facts, plus what Uplink does not own.
  const current = resolve(before, facts, {}).effective;
  const check = checkManagementPath({
    connection: {
      clientIp: connection.controller,
      clientPort: CONTROLLER_PORT,
      serverIp: connection.router,
      serverPort: connection.routerPort,
    },
    facts,
    current: {
      rules: [...record.facts.rules, ...current.rules],
      routes: [...record.facts.routes, ...current.routes],
      nft: current.nft,
      sysctls: { ...record.facts.sysctls, ...current.sysctls },
    },
    scope: mergeOwnershipScopes(ownershipScope(after), ownershipScope(before)),
    effective: resolve(after, facts, {}).effective,
    markMask: after.settings.markMask,
  });
  if (check.unchanged) return { checked: true, check, refused: false, message: null };
  const why = (check.message ?? 'the management path would change').replace(
    /; apply with allowManagementChange to do it anyway$/,
    '',
  );
  return { checked: true, check, refused: true, message: `would be refused: ${why}` };
}
