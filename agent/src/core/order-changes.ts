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
import type { ChangeSet } from './diff.js';

export interface OrderOptions {
  /** The mark mask the nft rules are rendered with. */
  readonly markMask: number;
}

export function orderChanges(changes: ChangeSet, options: OrderOptions): Step[] {
  const sysctls: Step[] = [];
  const routeReplaces: Step[] = [];
  const ruleAdds: Step[] = [];
  const nft: Step[] = [];
  const ruleDeletes: Step[] = [];
  const routeDeletes: Step[] = [];
  for (const change of changes) {
    switch (change.kind) {
      case 'sysctl':
        sysctls.push({ op: 'sysctl-set', key: change.key, value: change.after });
        break;
      case 'route':
        if (change.action === 'delete') routeDeletes.push({ op: 'route-delete', route: change.before });
        else routeReplaces.push({ op: 'route-replace', route: change.after });
        break;
      case 'rule':
        if (change.action === 'delete') ruleDeletes.push({ op: 'rule-delete', rule: change.before });
        else ruleAdds.push({ op: 'rule-add', rule: change.after });
        break;
      case 'nft':
        nft.push({ op: 'nft-replace', rules: change.after, markMask: options.markMask });
        break;
    }
  }
  return [...sysctls, ...routeReplaces, ...ruleAdds, ...nft, ...ruleDeletes, ...routeDeletes];
}
