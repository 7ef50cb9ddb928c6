/**
 * The pure agent core the controller needs for `plan`, `explain` and `compile --format script`
 * (imported as `#agent/core`): resolve a desired state, compare and describe kernel objects,
 * render the nft table. Nothing here does I/O.
 */

// The management-path guard is pure (kernel, facts and connection in, verdict out): `uplink
// plan` runs the very same check offline against a site's reported facts (D173).
export { checkManagementPath, type SshConnection } from '../daemon/check-management-path.js';
export { compareNftRules, stableJson } from './canonicalize-state.js';
export {
  describeNftRule,
  describeRoute,
  describeRouteKey,
  describeRule,
  describeTable,
} from './describe-object.js';
export { mergeOwnershipScopes, type OwnershipScope, ownershipScope } from './owned.js';
export { renderNftTable } from './render-nft.js';
export { ADD_ORDER, routeWords, ruleWords, SHOW_ORDER } from './render-rule-words.js';
export { type ResolveResult, resolve, toKernelNftRule, type UnavailableProvider } from './resolve.js';
