/** `uplink explain` and the traffic-class comparison `uplink plan` uses: pure, from a site's spec. */
export {
  buildSiteView,
  type FactsBasis,
  formatTime,
  type KnownFacts,
  type SiteView,
  type SiteViewOptions,
} from './build-site-view.js';
export {
  type ClassComparison,
  explainClasses,
  type TrafficClass,
  trafficClassesOf,
} from './explain-classes.js';
export { type ExplainOutcome, explainFromFiles, type FoundSite, findSite } from './explain-from-files.js';
export {
  describePacket,
  type ExplainedPath,
  type Explanation,
  explainInView,
  explainPacket,
} from './explain-packet.js';
export { formatExplanation, formatExplanationJson } from './format-explanation.js';
export {
  type ExplainRequest,
  interfacesOf,
  type Parsed,
  parseExplainRequest,
  parseMark,
  type RawExplainOptions,
} from './parse-explain-request.js';
export { clientAddressIn, type SynthesizedFacts, synthesizeFacts } from './synthesize-facts.js';
