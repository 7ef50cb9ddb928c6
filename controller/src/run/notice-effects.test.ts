import { describe, expect, it } from 'vitest';
import { noticeEffects } from './notice-effects.js';

const C = 'c'.repeat(40);

describe('noticeEffects', () => {
  it.each([
    [
      {
        type: 'siteOutcome',
        site: 's1',
        wave: 'canary',
        generation: 'g1',
        outcome: 'applied',
        durationMs: 1500,
      },
      { kind: 'site-applied', level: 'info' },
      { kind: 'applied', level: 'info' },
      undefined,
    ],
    [
      {
        type: 'siteOutcome',
        site: 's1',
        wave: 'canary',
        generation: 'g1',
        outcome: 'refused',
        durationMs: 20,
        error: 'management-path',
      },
      { kind: 'site-failed', level: 'warn', message: 's1: refused: management-path' },
      { kind: 'apply-failed', level: 'error', message: 'refused in wave canary: management-path' },
      'refused',
    ],
    [
      {
        type: 'siteOutcome',
        site: 's1',
        wave: 'w',
        generation: 'g1',
        outcome: 'timeout',
        durationMs: 9e4,
        error: 'no outcome',
      },
      { kind: 'site-failed' },
      { kind: 'apply-failed', level: 'warn' },
      'timeout',
    ],
    [
      { type: 'unhealthy', site: 's2', wave: 'early', reason: 'provider isp1 was up before the apply' },
      { kind: 'site-unhealthy', level: 'warn' },
      { kind: 'unhealthy', level: 'error' },
      'unhealthy',
    ],
    [
      { type: 'rolledBack', site: 's2', ok: true, generation: 'g0', hash: 'h' },
      { kind: 'rolled-back', level: 'info' },
      { kind: 'rolled-back', message: 'rolled back to generation g0' },
      undefined,
    ],
  ] as const)('%j', (notice, event, entry, failure) => {
    const e = noticeEffects(notice as never, C);
    expect(e.event).toMatchObject({ ...event, commit: C });
    expect(e.timeline?.entry).toMatchObject(entry);
    expect(e.failure).toBe(failure);
  });

  it('rollout actions become fleet events only', () => {
    const halt = noticeEffects(
      {
        type: 'action',
        action: {
          type: 'halt',
          halt: { wave: 'canary', reason: 'wave canary: 1 site(s) failed', failed: ['s1'] },
        },
      },
      C,
    );
    expect(halt).toEqual({
      event: {
        level: 'error',
        kind: 'halted',
        message: 'wave canary: 1 site(s) failed',
        wave: 'canary',
        commit: C,
      },
    });
    expect(noticeEffects({ type: 'action', action: { type: 'suspended' } }, C).event?.kind).toBe(
      'rollout-suspended',
    );
    expect(noticeEffects({ type: 'action', action: { type: 'start', wave: 'w', sites: [] } }, C)).toEqual({});
  });
});
