/** The controller's persisted state (a cache: the agents' reports are the truth). */
export {
  CONTROLLER_STATE_FILE,
  type ControllerState,
  ControllerStateStore,
  cachedReports,
  emptyControllerState,
  type FinishedRollout,
  type HealthBaseline,
  type InvalidCommit,
  parseControllerState,
  type ReconcileBackoff,
  readControllerState,
  recordFinishedRollout,
  recordGoodCommit,
  recordInvalidCommit,
  recordSiteOutcome,
  type SiteHistory,
  type SiteOutcome,
  type SiteRecord,
  withHealthBaseline,
  withReconcileBackoff,
  withRollout,
  writeControllerState,
} from './controller-state.js';
export { CONTROLLER_STATE_VERSION } from './controller-state-schema.js';
export {
  FACTS_DIR,
  parseFactsRecord,
  readFactsFile,
  siteFactsFile,
  writeSiteFacts,
} from './site-facts-store.js';
export { writeFileAtomic } from './write-file-atomic.js';
