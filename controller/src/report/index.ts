/** Drift reports for people and CI: verdicts per site and their renderings. Pure. */
export {
  assessSiteDrift,
  type DriftFinding,
  type SiteDrift,
  type SiteDriftOutcome,
  type SiteStatusAnswer,
} from './assess-site-drift.js';
export { buildDriftReport, type DriftReport, driftExitCode } from './build-drift-report.js';
export { formatFinding } from './format-finding.js';
export { isoTime } from './iso-time.js';
export {
  renderDriftJson,
  renderDriftJunit,
  renderDriftMarkdown,
  renderDriftText,
} from './render-drift-report.js';
