/**
 * The apply plan: an ordered list of steps, pure data. A dataplane executes exactly these
 * steps, nothing inferred (Terraform's rule). Order is decided by `orderChanges` in core.
 */
import type { KernelNftRule, KernelRoute, KernelRule } from './kernel-state.js';

export type Step =
  /** Create or change a route in place (`ip route replace`): make before break. */
  | { readonly op: 'route-replace'; readonly route: KernelRoute }
  | { readonly op: 'route-delete'; readonly route: KernelRoute }
  | { readonly op: 'rule-add'; readonly rule: KernelRule }
  | { readonly op: 'rule-delete'; readonly rule: KernelRule }
  /** Replace table inet uplink in one transaction; null deletes the table. */
  | { readonly op: 'nft-replace'; readonly rules: readonly KernelNftRule[] | null; readonly markMask: number }
  | { readonly op: 'sysctl-set'; readonly key: string; readonly value: string };
