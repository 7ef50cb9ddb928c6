/**
 * The management-path guard (DESIGN.md "Safety: commit-confirmed", step 5): before an
 * apply, simulate how the answer to the controller's SSH connection leaves the router under
 * the current kernel and under the new effective state, with the pure simulator in
 * agent/src/sim. Pure: the caller passes the kernel, the facts and the connection in.
 *
 * The connection is replayed as the kernel sees it: the controller's first packet arrives
 * on the management interface (so track-save may set a ct mark), and the reply is a
 * locally generated packet from the address the controller connected to, carrying that ct
 * mark (track-restore in output). The management interface is where the reply leaves
 * today: the connection works now, so that is where the controller's packets come from.
 */
import ipaddr from 'ipaddr.js';
import { foreign as foreignPart, type OwnershipScope } from '../core/owned.js';
import type { Facts, KernelRule, KernelState } from '../model/kernel-state.js';
import type { ManagementPathCheck, PathVerdict } from '../model/protocol.js';
import {
  buildViewFromState,
  type RoutingView,
  renderRule,
  replyPacketOf,
  simulatePacket,
  type Verdict,
} from '../sim/index.js';

/** SSH_CONNECTION: `client-ip client-port server-ip server-port`. */
export interface SshConnection {
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp: string;
  readonly serverPort: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * An address as SSH_CONNECTION gives it, canonical: IPv4 dotted, IPv6 compressed (an
 * IPv4-mapped IPv6 address, as a dual-stack socket reports IPv4 peers, is its IPv4 address);
 * undefined for anything else, a zoned (link-local) address included.
 */
function connectionAddress(text: string): string | undefined {
  if (IPV4.test(text)) return text;
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
}

/** Parses SSH_CONNECTION; undefined when absent or malformed (the guard then cannot run). */
export function parseSshConnection(value: string | undefined | null): SshConnection | undefined {
  if (value === undefined || value === null) return undefined;
  const parts = value.trim().split(/\s+/);
  if (parts.length !== 4) return undefined;
  const [clientText, clientPort, serverText, serverPort] = parts as [string, string, string, string];
  const ports = [Number(clientPort), Number(serverPort)];
  const clientIp = connectionAddress(clientText);
  const serverIp = connectionAddress(serverText);
  if (clientIp === undefined || serverIp === undefined) return undefined;
  // One connection is one family; a mix is not something sshd reports.
  if (IPV4.test(clientIp) !== IPV4.test(serverIp)) return undefined;
  if (![clientPort, serverPort].every((p) => /^\d{1,5}$/.test(p)) || !ports.every((p) => p > 0 && p < 65536))
    return undefined;
  return { clientIp, clientPort: ports[0]!, serverIp, serverPort: ports[1]! };
}

export interface ManagementPathInput {
  readonly connection: SshConnection;
  readonly facts: Facts;
  /** The whole kernel as read (every protocol), with the sysctls Uplink owns. */
  readonly current: KernelState;
  /** What Uplink owns; replaced by `effective` in the new view. */
  readonly scope: OwnershipScope;
  readonly effective: KernelState;
  readonly markMask: number;
}

export function checkManagementPath(input: ManagementPathInput): ManagementPathCheck {
  const { connection, facts, current, scope, effective, markMask } = input;
  const foreign = foreignPart(current, scope);
  const currentView = buildViewFromState(withoutLocalTable(current), facts, { markMask });
  const nextView = buildViewFromState(
    { ...effective, sysctls: { ...current.sysctls, ...effective.sysctls } },
    facts,
    { markMask, rules: foreign.rules, routes: foreign.routes },
  );
  const before = simulateReply(currentView, connection, undefined);
  const managementIf = before.dev;
  const after = simulateReply(nextView, connection, managementIf);
  const currentVerdict = summarise(before);
  const nextVerdict = summarise(after);
  // The connection exists, so a current kernel whose replies cannot reach the controller is
  // one the simulation cannot explain (drifted, or routed by something it does not model): it
  // gives no path to keep, and a state that delivers the replies repairs rather than cuts.
  const repairs = !delivers(before) && delivers(after);
  const unchanged =
    repairs ||
    (currentVerdict.kind === nextVerdict.kind &&
      currentVerdict.dev === nextVerdict.dev &&
      currentVerdict.src === nextVerdict.src);
  return {
    controller: connection.clientIp,
    current: currentVerdict,
    next: nextVerdict,
    unchanged,
    ...(unchanged ? {} : { message: describeChange(connection, before, after, nextView) }),
  };
}

/** The reply's verdict; `iif` is the management interface the first packet arrives on. */
function simulateReply(view: RoutingView, c: SshConnection, iif: string | undefined): Verdict {
  let ctMark = 0;
  if (iif !== undefined) {
    const conn = {
      src: c.clientIp,
      dst: c.serverIp,
      iif,
      proto: 'tcp' as const,
      sport: c.clientPort,
      dport: c.serverPort,
    };
    const inbound = simulatePacket(
      view,
      { ...conn, direction: 'original', ctState: 'new' },
      { trace: false },
    );
    const packet = replyPacketOf(conn, inbound);
    if (packet !== null && packet.iif === undefined) {
      return simulatePacket(view, packet, { trace: false }).verdict;
    }
    // The first packet would not reach sshd; the reply still carries whatever ct mark it got.
    ctMark = inbound.verdict.ctMark;
  }
  return simulatePacket(
    view,
    {
      src: c.serverIp,
      dst: c.clientIp,
      proto: 'tcp',
      sport: c.serverPort,
      dport: c.clientPort,
      ctMark,
      direction: 'reply',
    },
    { trace: false },
  ).verdict;
}

function summarise(v: Verdict): PathVerdict {
  return {
    kind: v.kind,
    ...(v.dev !== undefined ? { dev: v.dev } : {}),
    ...(v.src !== undefined ? { src: v.src } : {}),
  };
}

function delivers(v: Verdict): boolean {
  return (
    v.kind === 'local' || (v.kind === 'forward' && (v.dev !== undefined || (v.candidates?.length ?? 0) > 0))
  );
}

/** Where a verdict sends the packet, in words: a device, the multipath's devices, or its kind. */
function exit(v: Verdict): string {
  if (v.dev !== undefined) return v.dev;
  const devs = [...new Set((v.candidates ?? []).map((candidate) => candidate.dev))];
  if (devs.length > 0) return `the multipath route over ${devs.join(', ')}`;
  return v.kind;
}

function describeChange(c: SshConnection, before: Verdict, after: Verdict, view: RoutingView): string {
  const culprit = describeCulprit(after, view);
  const was = exit(before);
  let effect: string;
  if (!delivers(after)) {
    effect = `would make replies to the controller ${c.clientIp} ${after.kind}${after.reason ? ` (${after.reason})` : ''} instead of leaving by ${was}`;
  } else if (after.dev !== before.dev) {
    effect = `would send replies to the controller ${c.clientIp} out ${exit(after)} instead of ${was}`;
  } else {
    effect = `would send replies to the controller ${c.clientIp} from ${after.src ?? '?'} instead of ${before.src ?? '?'}`;
  }
  return `${culprit} ${effect}; apply with allowManagementChange to do it anyway`;
}

/** The rule that chose the table, or the route when the table is main's own lookup. */
function describeCulprit(v: Verdict, view: RoutingView): string {
  const rule = view.rules.find(
    (r) => r.priority === v.rulePriority && (v.table === undefined || r.table === v.table),
  );
  const isDefaultRule = rule !== undefined && rule.priority >= 32766 && rule.protocol === 2;
  if (rule !== undefined && !isDefaultRule) return `rule ${rule.priority} \`${ruleText(rule)}\``;
  if (v.route !== undefined) return `route \`${v.route}\``;
  return v.table === undefined ? 'the new state' : `table ${v.table}`;
}

function ruleText(rule: KernelRule): string {
  return renderRule(rule).replace(/^\d+:\s*/, '');
}

/** The simulator derives table local from the addresses. */
const LOCAL_TABLE = 255;

function withoutLocalTable(state: KernelState): KernelState {
  return { ...state, routes: state.routes.filter((r) => r.table !== LOCAL_TABLE) };
}
