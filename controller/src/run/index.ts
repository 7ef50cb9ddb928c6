/**
 * The rollout executor as a library: compile a commit, ask the sites, plan, and drive the
 * rollout state machine over a SiteTransport. `uplink rollout`, the daemon (`uplink run`)
 * and the fleet simulator's benchmark all go through here.
 */
export { type BeginRolloutOptions, type BegunRollout, beginRollout } from './begin-rollout.js';
export {
  backoffAfter,
  chooseReconcile,
  type ReconcileChoice,
  type ReconcileInput,
} from './choose-reconcile.js';
export { type CompiledCommit, compileCommit, compileFiles } from './compile-commit.js';
export { type NoticeEffects, noticeEffects } from './notice-effects.js';
export { type PreparedRollout, type PrepareRolloutOptions, prepareRollout } from './prepare-rollout.js';
export { querySiteAnswers } from './query-site-answers.js';
export { errorKindOf, queryStatuses } from './query-statuses.js';
export { captureHealthBaseline, healthBeforeOf } from './rollout-baseline.js';
export {
  continueRolloutRun,
  type RolloutRun,
  type RunLog,
  type RunNotice,
  type RunRolloutOptions,
  resumeRolloutRun,
  runRollout,
} from './run-rollout.js';
export {
  commitOfGeneration,
  generationFor,
  isFreshAndCurrent,
  reportFromStatus,
  type SiteReport,
  toReportedSite,
  unhealthyReason,
  unreachableReport,
} from './site-report.js';
export {
  createSshSiteTransport,
  type SiteTransport,
  type SshSiteTransportOptions,
  sshTargetOf,
} from './site-transport.js';
