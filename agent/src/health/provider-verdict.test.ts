import { describe, expect, it } from 'vitest';
import {
  initialVerdict,
  lossRatio,
  medianLatency,
  type ProbeOutcome,
  recordRound,
  type Thresholds,
  toProviderHealth,
  type VerdictState,
  WINDOW_ROUNDS,
} from './provider-verdict.js';

const defaults: Thresholds = { failAfter: 3, recoverAfter: 5, minTargetsUp: 1 };
const ok = (target = 'a', rttMs = 1): ProbeOutcome => ({ target, ok: true, rttMs });
const lost = (target = 'a'): ProbeOutcome => ({ target, ok: false, error: 'no reply' });

/** Plays rounds written as a string: `+` every target answered, `-` none did. */
function play(pattern: string, thresholds = defaults, start: VerdictState = initialVerdict) {
  let state = start;
  const verdicts: string[] = [];
  [...pattern].forEach((c, i) => {
    state = recordRound(state, [c === '+' ? ok() : lost()], thresholds, i).state;
    verdicts.push(state.verdict);
  });
  return { state, verdicts };
}

describe('recordRound', () => {
  const cases: { name: string; pattern: string; thresholds?: Thresholds; verdicts: string }[] = [
    { name: 'first good round → up', pattern: '+', verdicts: 'U' },
    { name: 'failAfter bad rounds from unknown → down', pattern: '---', verdicts: '??D' },
    { name: 'up stays up for fewer than failAfter losses', pattern: '+--+--+', verdicts: 'UUUUUUU' },
    { name: 'up → down after failAfter in a row', pattern: '+---', verdicts: 'UUUD' },
    { name: 'down needs recoverAfter good rounds', pattern: '+---+++++', verdicts: 'UUUDDDDDU' },
    {
      name: 'a loss during recovery restarts the count',
      pattern: '+---++++-+++++',
      verdicts: 'UUUDDDDDDDDDDU',
    },
    {
      name: 'flapping faster than the thresholds never changes the verdict (up)',
      pattern: '+--+--+--+--+',
      verdicts: 'UUUUUUUUUUUUU',
    },
    {
      name: 'flapping faster than the thresholds never changes the verdict (down)',
      pattern: '+---++--++++-++',
      verdicts: 'UUUDDDDDDDDDDDD',
    },
    {
      name: 'failAfter 1 recoverAfter 1',
      pattern: '+-+-',
      thresholds: { failAfter: 1, recoverAfter: 1, minTargetsUp: 1 },
      verdicts: 'UDUD',
    },
  ];
  it.each(cases)('$name', ({ pattern, thresholds, verdicts }) => {
    const letters = play(pattern, thresholds).verdicts.map((v) =>
      v === 'up' ? 'U' : v === 'down' ? 'D' : '?',
    );
    expect(letters.join('')).toBe(verdicts);
  });

  it('k of n: a round needs minTargetsUp answers', () => {
    const t: Thresholds = { failAfter: 1, recoverAfter: 1, minTargetsUp: 2 };
    const one = recordRound(initialVerdict, [ok('a'), lost('b'), lost('c')], t, 0);
    expect(one.state.verdict).toBe('down');
    expect(one.transition?.reason).toContain('1/3 targets answered, 2 needed');
    expect(one.transition?.reason).toContain('b no reply');
    const two = recordRound(one.state, [ok('a'), lost('b'), ok('c')], t, 1);
    expect(two.state.verdict).toBe('up');
  });

  it('minTargetsUp is capped at the number of targets', () => {
    const t: Thresholds = { failAfter: 1, recoverAfter: 1, minTargetsUp: 3 };
    expect(recordRound(initialVerdict, [ok('gw')], t, 0).state.verdict).toBe('up');
  });

  it('a round without any target fails', () => {
    const t: Thresholds = { failAfter: 1, recoverAfter: 1, minTargetsUp: 1 };
    const r = recordRound(initialVerdict, [], t, 7);
    expect(r.state.verdict).toBe('down');
    expect(r.transition).toEqual({
      at: 7,
      from: 'unknown',
      to: 'down',
      reason: '1 failed rounds in a row: no probe target',
    });
  });

  it('records transitions with time and reason, newest last', () => {
    const { state } = play('+---+++++');
    expect(state.transitions.map((t) => `${t.at}:${t.from}>${t.to}`)).toEqual([
      '0:unknown>up',
      '3:up>down',
      '8:down>up',
    ]);
    expect(state.since).toBe(8);
    expect(state.transitions[2]?.reason).toBe('5 good rounds in a row (1/1 targets answered)');
  });
});

describe('latency and loss', () => {
  it('median over answered probes, loss over all probes in the window', () => {
    let state = initialVerdict;
    for (const round of [
      [ok('a', 10), ok('b', 30)],
      [ok('a', 20), lost('b')],
      [lost('a'), lost('b')],
    ]) {
      state = recordRound(state, round, defaults, 0).state;
    }
    expect(medianLatency(state)).toBe(20);
    expect(lossRatio(state)).toBeCloseTo(3 / 6);
    expect(toProviderHealth('isp1', state, true)).toMatchObject({
      name: 'isp1',
      latencyMs: 20,
      probing: true,
    });
  });

  it('even count: mean of the middle two; none answered: null', () => {
    let state = recordRound(initialVerdict, [ok('a', 1), ok('b', 4)], defaults, 0).state;
    expect(medianLatency(state)).toBe(2.5);
    state = play('-', defaults).state;
    expect(medianLatency(state)).toBeNull();
    expect(lossRatio(initialVerdict)).toBe(0);
  });

  it('the window keeps only the last rounds', () => {
    const { state } = play(`${'-'.repeat(WINDOW_ROUNDS)}${'+'.repeat(WINDOW_ROUNDS / 2)}`);
    expect(state.window).toHaveLength(WINDOW_ROUNDS);
    expect(lossRatio(state)).toBeCloseTo(0.5);
  });
});

describe('probes that could not run (D83)', () => {
  const t: Thresholds = { failAfter: 1, recoverAfter: 1, minTargetsUp: 1 };
  const unrun = (target = 'a', error = 'cannot run ping: spawn ping ENOENT'): ProbeOutcome => ({
    target,
    ok: false,
    inconclusive: true,
    error,
  });

  it('a round of only unrun probes changes neither verdict, streaks, window nor transitions', () => {
    for (const start of [initialVerdict, play('+', defaults).state, play('+---', defaults).state]) {
      const before = play('--', defaults, start).state;
      const r = recordRound(before, [unrun('a'), unrun('b')], defaults, 99);
      expect(r.transition).toBeUndefined();
      expect({ ...r.state, probeError: null, unrunStreak: 0 }).toEqual({ ...before, probeError: null });
      expect(r.state.probeError).toBe('cannot run ping: spawn ping ENOENT');
    }
  });

  it('a down verdict is released to unknown after failAfter rounds without a runnable probe', () => {
    const three: Thresholds = { failAfter: 3, recoverAfter: 2, minTargetsUp: 1 };
    let state = play('+---', three).state;
    expect(state.verdict).toBe('down');
    for (let i = 0; i < 2; i++) {
      const r = recordRound(state, [unrun()], three, 10 + i);
      expect(r.transition).toBeUndefined();
      state = r.state;
    }
    // A probe that runs in between restarts the count.
    state = recordRound(state, [lost('a')], three, 12).state;
    for (let i = 0; i < 2; i++) state = recordRound(state, [unrun()], three, 13 + i).state;
    expect(state.verdict).toBe('down');
    const released = recordRound(state, [unrun()], three, 15);
    expect(released.state.verdict).toBe('unknown');
    expect(released.transition).toMatchObject({ at: 15, from: 'down', to: 'unknown' });
    expect(released.transition?.reason).toBe(
      '3 rounds in a row without a probe that could run (cannot run ping: spawn ping ENOENT): released, unknown counts as up',
    );
    // Once probes run again, the ordinary rules apply from unknown.
    expect(recordRound(released.state, [ok()], three, 16).state.verdict).toBe('up');
  });

  it('never fails an uplink over, however many rounds', () => {
    let state = play('+', defaults).state;
    for (let i = 0; i < 50; i++) state = recordRound(state, [unrun()], defaults, i).state;
    expect(state.verdict).toBe('up');
    expect(state.failStreak).toBe(0);
    expect(lossRatio(state)).toBe(0);
    expect(toProviderHealth('isp1', state, true).probeError).toBe('cannot run ping: spawn ping ENOENT');
  });

  it('left out of a mixed round: k of n counts only the probes that ran', () => {
    const k2: Thresholds = { failAfter: 1, recoverAfter: 1, minTargetsUp: 2 };
    const r = recordRound(initialVerdict, [ok('a'), unrun('b')], k2, 0);
    expect(r.state.verdict).toBe('up');
    expect(r.transition?.reason).toBe('first round answered (1/1 targets)');
    expect(r.state.window).toEqual([[ok('a')]]);
    const down = recordRound(r.state, [lost('a'), unrun('b')], k2, 1);
    expect(down.state.verdict).toBe('down');
    expect(down.transition?.reason).toBe(
      '1 failed rounds in a row: 0/1 targets answered, 1 needed (a no reply)',
    );
  });

  it('the error goes once every probe runs again; status carries it only while it lasts', () => {
    const broken = recordRound(play('+', defaults).state, [unrun()], t, 1).state;
    expect(toProviderHealth('isp1', broken, true)).toHaveProperty('probeError');
    // Probing switched off since: the old error is not news.
    expect(toProviderHealth('isp1', broken, false)).not.toHaveProperty('probeError');
    const fixed = recordRound(broken, [ok()], t, 2).state;
    expect(fixed.probeError).toBeNull();
    expect(toProviderHealth('isp1', fixed, true)).not.toHaveProperty('probeError');
    expect(toProviderHealth('isp1', initialVerdict, true)).not.toHaveProperty('probeError');
  });

  it('a real failure is still a failure', () => {
    expect(
      recordRound(
        initialVerdict,
        [{ target: 'a', ok: false, error: 'ping: connect: Network is unreachable' }],
        t,
        0,
      ).state.verdict,
    ).toBe('down');
  });
});
