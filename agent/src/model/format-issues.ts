/**
 * Zod issues as one line each, subject first: `rules.3.priority: Too big: …`. A record key
 * that fails (`invalid_key`) says why the key is wrong rather than zod's "Invalid key in
 * record", so a refused sysctl names its rule.
 */
import type { z } from 'zod';

export function formatIssues(issues: readonly z.core.$ZodIssue[], max = 5): string[] {
  return issues.slice(0, max).map(formatIssue);
}

export function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  const subject = path === '' ? '(top)' : path;
  if (issue.code === 'invalid_key' && issue.issues.length > 0) {
    return `${subject}: ${issue.issues.map((inner) => inner.message).join('; ')}`;
  }
  return `${subject}: ${issue.message}`;
}
