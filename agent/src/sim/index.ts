/** Pure simulator of Linux IPv4 policy routing and Uplink's netfilter marks. */
export { type CompiledView, compileView, renderRoute, renderRule, tableName } from './compile-view.js';
export { AddressError } from './ipv4.js';
export {
  diffVerdicts,
  formatUplinkChoice,
  mapVerdictToProvider,
  type ProviderRef,
  type UplinkChoice,
} from './map-verdict-to-provider.js';
export {
  buildView,
  buildViewFromState,
  connectedRoutesOf,
  DEFAULT_MARK_MASK,
  DEFAULT_RULES,
  type LocalAddress,
  type RoutingView,
  TABLE_DEFAULT,
  TABLE_LOCAL,
  TABLE_MAIN,
  type ViewAddress,
  type ViewEnvironment,
  type ViewInterface,
  type ViewParts,
  withDefaultRules,
} from './routing-view.js';
export {
  type ConnectionResult,
  type InboundConnection,
  replyPacketOf,
  simulateConnection,
} from './simulate-connection.js';
export {
  type Errno,
  formatVerdict,
  type Packet,
  type ProtoName,
  type SimResult,
  type SimulateOptions,
  type Snat,
  simulatePacket,
  type Verdict,
  type VerdictKind,
} from './simulate-packet.js';
export {
  type Candidate,
  type FlowSummary,
  formatTrace,
  type LookupPurpose,
  type Selector,
  type TraceStep,
} from './trace.js';
