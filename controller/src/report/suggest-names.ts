/** "Did you mean": the known names closest to a mistyped one. Pure. */
import { distance } from 'fastest-levenshtein';

/**
 * `site NAME: not found; did you mean X?` — the known names closest to NAME (by edit
 * distance, or containing it), else the list of known sites.
 */
export function unknownSiteMessage(name: string, known: readonly string[], where?: string): string {
  const close = suggestNames(name, known);
  const subject = `site ${name}: not found${where ? ` in ${where}` : ''}`;
  if (close.length > 0)
    return `${subject}; did you mean ${close.length === 1 ? close[0] : `one of ${close.join(', ')}`}?`;
  return `${subject}; known sites: ${known.length > 0 ? known.join(', ') : '(none)'}`;
}

/** Up to three known names within a third of NAME's length in edits (at least 2), or containing it. */
export function suggestNames(name: string, known: readonly string[]): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  return known
    .map((k) => ({ k, d: k.includes(name) || name.includes(k) ? 0.5 : distance(name, k) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
    .slice(0, 3)
    .map((x) => x.k);
}
