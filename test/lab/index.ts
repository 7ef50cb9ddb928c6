/** Namespace lab for kernel tests; see lab.ts (primitives) and router-topology.ts (the standard router). */
export {
  type ExecOptions,
  type ExecResult,
  Lab,
  LabCommandError,
  LabProcess,
  type VethEnd,
  withLab,
} from './lab.js';
export { type NamespaceSupport, probeNamespaceSupport, requireRoot } from './require-root.js';
export {
  buildRouterTopology,
  type IspHandle,
  type IspOptions,
  type RouterTopology,
  type RouterTopologyOptions,
} from './router-topology.js';
export {
  buildSiteTopology,
  type SiteLanOptions,
  type SiteTopology,
  type SiteTopologyOptions,
  type SiteUplinkHandle,
  type SiteUplinkKind,
  type SiteUplinkOptions,
  waitOperUp,
} from './site-topology.js';
export { useLab } from './use-lab.js';
