/** One drift finding as a line for people, shared by the text, JUnit and Markdown reports. Pure. */
import type { DriftFinding } from './assess-site-drift.js';
import { isoTime } from './iso-time.js';

const KIND_WORD: Record<DriftFinding['kind'], string> = {
  missing: 'missing',
  unexpected: 'unexpected',
  changed: 'changed',
  shadowed: 'shadowed',
  'out-of-date': 'out of date',
};

/** `missing rule …: expected X, found nothing (since 2024-05-01T12:00:00Z)`. */
export function formatFinding(finding: DriftFinding): string {
  const since = finding.firstSeen === null ? '' : ` (since ${isoTime(finding.firstSeen)})`;
  return `${KIND_WORD[finding.kind]} ${finding.object}: expected ${finding.expected ?? 'nothing'}, found ${finding.found ?? 'nothing'}${since}`;
}
