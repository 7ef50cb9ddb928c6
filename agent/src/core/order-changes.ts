/**
 * ChangeSet → Steps, in the one order that never leaves traffic without a path:
 * 1. sysctl-set    — rp_filter is loosened before traffic moves to a new uplink;
 * 2. route-replace — new and changed routes exist before any rule points at them;
 * 3. rule-add      — new rules start steering traffic into complete tables;
 * 4. nft-replace   — marks and SNAT match the new rules;
 * 5. rule-delete   — old rules stop steering only after the new ones are in place;
 * 6. route-delete  — routes go last, when no rule can lead to them any more.
 * Revert is the same: diff(snapshot, current) → orderChanges → apply.
 */
import type { Step } from '../model/steps.js';
import type { Change, ChangeSet } from './diff.js';

export interface OrderOptions {
  /** The mark mask the nft rules are rendered with. */
  readonly markMask: number;
}

export function orderChanges(changes: ChangeSet, options: OrderOptions): Step[] {
  return orderedChanges(changes).map((change) => stepOf(change, options));
}

/** The changes in the order their steps run (each change is one step). */
export function orderedChanges(changes: ChangeSet): Change[] {
  const phases: Change[][] = [[], [], [], [], [], []];
  for (const change of changes) phases[phaseOf(change)]!.push(change);
  return phases.flat();
}

/** The step that carries out one change. */
export function stepOf(change: Change, options: OrderOptions): Step {
  switch (change.kind) {
    case 'sysctl':
      return { op: 'sysctl-set', key: change.key, value: change.after };
    case 'route':
      return change.action === 'delete'
        ? { op: 'route-delete', route: change.before }
        : { op: 'route-replace', route: change.after };
    case 'rule':
      return change.action === 'delete'
        ? { op: 'rule-delete', rule: change.before }
        : { op: 'rule-add', rule: change.after };
    case 'nft':
      return { op: 'nft-replace', rules: change.after, markMask: options.markMask };
  }
}

/** Position in the order above: sysctls, route replaces, rule adds, nft, rule deletes, route deletes. */
function phaseOf(change: Change): number {
  switch (change.kind) {
    case 'sysctl':
      return 0;
    case 'route':
      return change.action === 'delete' ? 5 : 1;
    case 'rule':
      return change.action === 'delete' ? 4 : 2;
    case 'nft':
      return 3;
  }
}

/** What a change is about, for people: `rule priority 2000 …`, `route table 101 default`, `sysctl …`. */
export function changeSubject(change: Change): string {
  switch (change.kind) {
    case 'sysctl':
      return `sysctl ${change.key}`;
    case 'nft':
      return `nft ${change.key}`;
    default:
      return change.key;
  }
}
