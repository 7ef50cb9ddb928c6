/** Rollout planning and the rollout state machine: pure, the daemon and `uplink rollout` drive them. */
export {
  type PlannedSite,
  type PlannedSiteReason,
  type PlannedWave,
  type PlanRolloutInput,
  planRollout,
  type ReportedSite,
  type RolloutPlan,
  type RolloutTrigger,
} from './plan-rollout.js';
export { type MergedRollout, mergeReportedIntoRollout, resumeRollout } from './resume-rollout.js';
export {
  continueRollout,
  indexPlan,
  isSettled,
  isTerminal,
  type RolloutAction,
  type RolloutEvent,
  type RolloutHalt,
  type RolloutPhase,
  type RolloutState,
  type RolloutStep,
  type SiteFailureKind,
  type SiteProgress,
  type SiteStatus,
  siteProgress,
  startRollout,
  stepRollout,
} from './step-rollout.js';
