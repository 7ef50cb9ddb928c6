import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import { resolve } from '../core/resolve.js';
import { scopeFor } from '../engine/read-current.js';
import type { KernelState } from '../model/kernel-state.js';
import { checkManagementPath, type SshConnection } from './check-management-path.js';

// The controller reaches the router on isp1's address from a network no interface is on.
const connection: SshConnection = {
  clientIp: '10.9.9.9',
  clientPort: 40000,
  serverIp: '198.51.100.10',
  serverPort: 22,
};

function setup() {
  const desired = exampleDesiredState();
  const facts = exampleFacts();
  const { effective } = resolve(desired, facts, {});
  const scope = scopeFor(desired, undefined);
  return { desired, facts, effective, scope };
}

function withoutDefault(state: KernelState, table: number): KernelState {
  return { ...state, routes: state.routes.filter((r) => !(r.table === table && r.dst === '0.0.0.0/0')) };
}

describe('management-path guard', () => {
  it('an unchanged state keeps the path', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: effective,
      scope,
      effective,
      markMask: 0xff00,
    });
    expect(check.current).toMatchObject({ kind: 'forward', dev: 'eth1' });
    expect(check.unchanged).toBe(true);
  });

  it('refuses a state that loses the route back, naming the rule that leads there', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: effective,
      scope,
      effective: withoutDefault(effective, 101),
      markMask: 0xff00,
    });
    expect(check.unchanged).toBe(false);
    expect(check.message).toBe(
      'rule 30000 `from all lookup 200` would send replies to the controller 10.9.9.9 out the multipath route over eth1, ppp1 instead of eth1; apply with allowManagementChange to do it anyway',
    );
  });

  it('lets through a repair of a path that is broken now (drift in the current kernel)', () => {
    const { facts, effective, scope } = setup();
    const check = checkManagementPath({
      connection,
      facts,
      current: [101, 102, 103, 200].reduce(withoutDefault, effective),
      scope,
      effective,
      markMask: 0xff00,
    });
    expect(check.current.kind).not.toBe('forward');
    expect(check.next).toMatchObject({ kind: 'forward', dev: 'eth1' });
    expect(check.unchanged).toBe(true);
    expect(check.message).toBeUndefined();
  });
});
