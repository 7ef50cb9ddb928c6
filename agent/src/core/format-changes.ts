/**
 * A ChangeSet as text for people (`uplink-agent plan`, controller previews):
 * `+` create, `-` delete, `~` update (route replace, in place), `±` replace (nft table, whole).
 */
import { describeRoute, describeRule } from './describe-object.js';
import type { Change, ChangeSet } from './diff.js';

export function formatChanges(changes: ChangeSet): string[] {
  return changes.flatMap(formatChange);
}

function formatChange(change: Change): string[] {
  switch (change.kind) {
    case 'sysctl':
      return [
        change.action === 'create'
          ? `+ sysctl ${change.key} = ${change.after}`
          : `~ sysctl ${change.key}: ${change.before} → ${change.after}`,
      ];
    case 'rule':
      return change.action === 'create'
        ? [`+ rule ${describeRule(change.after)}`]
        : [`- rule ${describeRule(change.before)}`];
    case 'route':
      switch (change.action) {
        case 'create':
          return [`+ ${change.key}: ${describeRoute(change.after)}`];
        case 'delete':
          return [`- ${change.key}: ${describeRoute(change.before)}`];
        case 'update':
          return [
            `~ ${change.key} (replaced in place)`,
            `    was: ${describeRoute(change.before)}`,
            `    now: ${describeRoute(change.after)}`,
          ];
      }
      break;
    case 'nft':
      return [`± nft ${change.key} (replaced whole)`, ...change.details.map((d) => `    ${d}`)];
  }
  return [];
}
