/**
 * Which rollout wave each site falls in. Waves are taken in order; each takes from the
 * sites not yet taken: a `select` wave the matching ones, a `percent` wave that share of
 * the whole fleet (rounded up), a `count` wave that many, a bare wave all the rest.
 * Within a wave, sites are in name order, so the assignment is deterministic.
 */
import type { ValidWave } from './valid-site.js';

export interface WaveSite {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface WaveAssignment {
  readonly wave: ValidWave;
  readonly sites: readonly string[];
}

export function assignWaves(
  sites: readonly WaveSite[],
  waves: readonly ValidWave[],
): { waves: WaveAssignment[]; unassigned: string[] } {
  const remaining = [...sites].sort((a, b) => a.name.localeCompare(b.name));
  const total = sites.length;
  const out: WaveAssignment[] = [];
  for (const wave of waves) {
    let taken: WaveSite[];
    if (wave.select) {
      const { labels, sites: names } = wave.select;
      taken = remaining.filter(
        (s) =>
          names.includes(s.name) ||
          (Object.keys(labels).length > 0 && Object.entries(labels).every(([k, v]) => s.labels[k] === v)),
      );
    } else if (wave.percent !== null) {
      taken = remaining.slice(0, Math.ceil((wave.percent / 100) * total));
    } else if (wave.count !== null) {
      taken = remaining.slice(0, wave.count);
    } else {
      taken = [...remaining];
    }
    for (const s of taken) remaining.splice(remaining.indexOf(s), 1);
    out.push({ wave, sites: taken.map((s) => s.name) });
  }
  return { waves: out, unassigned: remaining.map((s) => s.name) };
}
