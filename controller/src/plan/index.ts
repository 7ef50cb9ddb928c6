/** `uplink plan`: what a change to the fleet repository does to each site, offline. Pure. */
export {
  assembleFleetPlan,
  type FleetPlan,
  type PlannedRevision,
  planExitCode,
  type SitePlan,
  type SiteStatus,
} from './assemble-fleet-plan.js';
export { diffDesiredStates, type ObjectChange, type PlanAction } from './diff-desired-states.js';
export {
  formatObjectChange,
  type MarkdownOptions,
  renderPlanJson,
  renderPlanMarkdown,
  renderPlanText,
  summarizeChanges,
} from './render-plan.js';
