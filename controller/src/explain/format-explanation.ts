/** An Explanation for a terminal (verdict first, then notes and the trace) or as JSON. */
import { formatTrace } from '#agent/sim';
import type { Explanation } from './explain-packet.js';
import { uplinkName } from './explain-packet.js';

export function formatExplanation(explanation: Explanation): string {
  const lines = [explanation.summary];
  for (const path of explanation.paths) {
    lines.push(`  ${path.share}% ${uplinkName(path.provider, path.dev)}, weight ${path.weight}, ${path.hop}`);
  }
  if (explanation.decidedBy !== null) lines.push(`decided by ${explanation.decidedBy}`);
  lines.push('', 'trace:', indent(formatTrace(explanation.trace)));
  if (explanation.notes.length > 0) {
    lines.push('', 'notes:');
    for (const note of explanation.notes) lines.push(`  · ${note}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `{site, packet, summary, decidedBy, verdict, uplink, paths, trace, notes}`. */
export function formatExplanationJson(explanation: Explanation): string {
  return `${JSON.stringify(explanation, null, 2)}\n`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
