/**
 * The management-path guard for a controller that reaches the router over IPv6: the agent
 * reads the IPv6 SSH_CONNECTION, simulates where the replies to the controller leave today and
 * under the new state, and refuses a state that would send them out an uplink — against the
 * real kernel and a real sshd listening on the router's IPv6 management address.
 *
 *   ctrl ns  eth0 2001:db8:e0::1/64 ── mgmt0 2001:db8:e0::2/64  router ns  isp1 2001:db8:ffa1::2/64 ── isp
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { errorResponse, resultSchemas } from '../agent/src/model/protocol.js';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { ManagedRouter } from './lab/managed-router.js';
import { sshRpc } from './lab/ssh-rpc.js';
import { type NamespaceSshd, startSshdInNamespace } from './lab/sshd-in-namespace.js';
import { managedRouterDesired } from './managed-router-desired.js';
import { withContentHash } from './support/example-desired-state.js';

const CONTROLLER6 = '2001:db8:e0::1';
const ROUTER_MGMT6 = '2001:db8:e0::2';

/** The lab's state with an IPv6 half on isp1 (a static global gateway). */
function dualStackDesired(): DesiredState {
  const desired = managedRouterDesired('lab-6');
  desired.providers[0] = {
    ...desired.providers[0]!,
    ipv6: {
      gateway: { kind: 'static', address: '2001:db8:ffa1::1' },
      prefixes: [],
      npt: [],
      healthTargets: [],
    },
  };
  desired.routes.push({
    id: 'isp1/default:ipv6',
    family: 'inet6',
    table: 101,
    dst: { kind: 'literal', cidr: '::/0' },
    type: 'unicast',
    dev: 'isp1',
    gateway: { kind: 'provider-gateway', provider: 'isp1' },
    requires: 'isp1',
    requiresUp: true,
  });
  return withContentHash(desired);
}

/** Plus an IPv6 policy that captures everything from the management subnet into isp1's table. */
function cuttingDesired(): DesiredState {
  const desired = dualStackDesired();
  desired.rules.push({
    id: 'policy:mgmt6/isp1',
    family: 'inet6',
    priority: 10000,
    action: 'lookup',
    table: 101,
    from: { kind: 'literal', cidr: '2001:db8:e0::/64' },
    requires: 'isp1',
  });
  return withContentHash(desired);
}

describe.skipIf(!requireRoot())('management-path guard over IPv6, in namespaces', () => {
  const lab = useLab('guard6');
  let m: ManagedRouter;
  let sshd6: NamespaceSshd;

  const rpc = (method: string, params: unknown) =>
    sshRpc(
      lab.current,
      m.ctrl,
      sshd6,
      m.controllerKey,
      `${JSON.stringify({ v: 1, id: 1, method, params })}\n`,
    );
  const kernel6 = async () =>
    [
      (await lab.current.exec(m.router, ['ip', '-6', 'rule', 'show'])).stdout,
      (await lab.current.exec(m.router, ['ip', '-6', 'route', 'show', 'table', 'all'])).stdout,
    ].join('\n----\n');

  beforeAll(async () => {
    buildDist();
    m = await ManagedRouter.start(lab.current, 'guard6');
    const isp = lab.current.namespaces.find((ns) => ns.endsWith('-isp'))!;
    const add = (ns: string, dev: string, address: string) =>
      lab.current.exec(ns, ['ip', '-6', 'address', 'add', address, 'dev', dev, 'nodad']);
    await add(m.router, 'mgmt0', `${ROUTER_MGMT6}/64`);
    await add(m.ctrl, 'eth0', `${CONTROLLER6}/64`);
    await add(m.router, 'isp1', '2001:db8:ffa1::2/64');
    await add(isp, 'cust', '2001:db8:ffa1::1/64');
    sshd6 = await startSshdInNamespace(lab.current, m.router, {
      address: ROUTER_MGMT6,
      dir: join(m.dir, 'sshd6'),
      authorizedKeysFile: `${join(m.dir, 'root')}%h/.ssh/authorized_keys`,
    });
  }, 120_000);

  afterAll(async () => {
    await m?.close();
  });

  it('an apply over IPv6 checks the path to the IPv6 controller and keeps it', async () => {
    const { answers, stderr } = await rpc('apply', {
      desired: dualStackDesired(),
      generation: 'g1',
      confirmWithinMs: 30_000,
    });
    expect(answers, stderr).toHaveLength(1);
    const applied = resultSchemas.apply.parse((answers[0] as { result: unknown }).result);
    expect(applied.managementPath).toMatchObject({
      controller: CONTROLLER6,
      unchanged: true,
      current: { kind: 'forward', dev: 'mgmt0', src: ROUTER_MGMT6 },
    });
    expect((await rpc('confirm', { generation: 'g1' })).answers[0]).toMatchObject({ ok: true });
    expect(
      (await lab.current.exec(m.router, ['ip', '-6', 'route', 'show', 'table', '101'])).stdout,
    ).toContain('default via 2001:db8:ffa1::1 dev isp1');
    // The kernel agrees with the simulation: the replies leave by mgmt0 from that address.
    const route = await lab.current.exec(m.router, ['ip', '-6', '-j', 'route', 'get', CONTROLLER6]);
    expect(JSON.parse(route.stdout)[0]).toMatchObject({ dev: 'mgmt0', prefsrc: ROUTER_MGMT6 });
  });

  it('refuses an IPv6 policy that would send the replies out the uplink, before applying anything', async () => {
    const before = await kernel6();
    const { answers } = await rpc('apply', {
      desired: cuttingDesired(),
      generation: 'g2',
      confirmWithinMs: 30_000,
    });
    expect(errorResponse.parse(answers[0]).error).toEqual({
      code: 'management-path',
      message: `rule 10000 \`from 2001:db8:e0::/64 lookup 101\` would send replies to the controller ${CONTROLLER6} out isp1 instead of mgmt0; apply with allowManagementChange to do it anyway`,
      retryable: false,
    });
    expect(await kernel6()).toBe(before);
    // What the guard foresaw is what the kernel does with that rule in place.
    await lab.current.exec(m.router, [
      'ip',
      '-6',
      'rule',
      'add',
      'priority',
      '10000',
      'from',
      '2001:db8:e0::/64',
      'lookup',
      '101',
    ]);
    const route = await lab.current.exec(m.router, [
      'ip',
      '-6',
      '-j',
      'route',
      'get',
      CONTROLLER6,
      'from',
      ROUTER_MGMT6,
    ]);
    expect(JSON.parse(route.stdout)[0]).toMatchObject({ dev: 'isp1' });
    await lab.current.exec(m.router, ['ip', '-6', 'rule', 'del', 'priority', '10000']);
  });
});
