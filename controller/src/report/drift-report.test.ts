import { describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import type { StatusResult } from '#agent/model';
import { assessSiteDrift, type SiteStatusAnswer } from './assess-site-drift.js';
import { buildDriftReport, driftExitCode } from './build-drift-report.js';
import { isoTime } from './iso-time.js';
import { renderDriftJunit, renderDriftMarkdown, renderDriftText } from './render-drift-report.js';

const WANT = 'a'.repeat(64);
const OLD = 'b'.repeat(64);
const T0 = 1_714_564_800_000; // 2024-05-01T12:00:00Z

function status(overrides: Partial<StatusResult> = {}): StatusResult {
  return {
    agent: 'uplink-agent/0.1.0',
    protocol: 1,
    site: 'berlin',
    applied: { generation: 'c0ffee-aaaaaaaaaaaa', hash: WANT, site: 'berlin', at: T0 },
    pending: null,
    lastRevert: null,
    owned: { rules: 5, routes: 2, nftRules: 3, sysctls: 1 },
    facts: { interfaces: 3, providers: [] },
    health: [],
    drift: { policy: 'report', checkedAt: T0 + 1000, items: [], shadowed: [], heals: 0, lastHeal: null },
    now: T0 + 2000,
    ...overrides,
  };
}

const answer = (s: StatusResult | undefined, extra: Partial<SiteStatusAnswer> = {}): SiteStatusAnswer => ({
  site: 'berlin',
  host: '192.0.2.10',
  desiredHash: WANT,
  durationMs: 120,
  ...(s === undefined ? {} : { status: s }),
  ...extra,
});

const RULE_MISSING = {
  object: 'rule 10010 ipproto tcp dport 25 lookup 100',
  kind: 'missing' as const,
  expected: 'priority 10010 from all ipproto tcp dport 25 lookup 100 proto 252',
  found: null,
  firstSeen: T0 + 500,
};
const FOREIGN = {
  object: 'rule 50 from all lookup 7',
  kind: 'shadowed' as const,
  expected: null,
  found: 'priority 50 from all lookup 7 proto boot',
  firstSeen: T0 + 600,
};

describe('assessSiteDrift', () => {
  it.each<[string, SiteStatusAnswer, string, string[]]>([
    ['in sync', answer(status()), 'in-sync', []],
    [
      'kernel drift',
      answer(status({ drift: { ...status().drift!, items: [RULE_MISSING] } })),
      'drift',
      ['missing'],
    ],
    [
      'applied generation is not what git says',
      answer(status({ applied: { ...status().applied!, hash: OLD } })),
      'drift',
      ['out-of-date'],
    ],
    [
      'nothing applied yet',
      answer(status({ applied: null, drift: null, site: null })),
      'drift',
      ['out-of-date'],
    ],
    [
      "git's state is being applied (pending): a rollout in progress, not drift",
      answer(
        status({
          applied: { ...status().applied!, hash: OLD },
          pending: { generation: 'new', hash: WANT, site: 'berlin', at: T0, deadline: T0 + 60_000 },
        }),
      ),
      'in-sync',
      [],
    ],
    [
      'shadowing foreign rule only: a warning',
      answer(status({ drift: { ...status().drift!, shadowed: [FOREIGN] } })),
      'in-sync',
      [],
    ],
    [
      'unreachable',
      answer(undefined, { error: { kind: 'transport (timed-out)', message: 'berlin: timed out' } }),
      'error',
      [],
    ],
    ['the agent manages another site', answer(status({ site: 'paris' })), 'error', []],
  ])('%s', (_name, input, outcome, kinds) => {
    const site = assessSiteDrift(input);
    expect(site.outcome).toBe(outcome);
    expect(site.findings.map((f) => f.kind)).toEqual(kinds);
  });

  it('keeps shadowed objects as warnings and says when the agent has not checked yet', () => {
    const shadowed = assessSiteDrift(answer(status({ drift: { ...status().drift!, shadowed: [FOREIGN] } })));
    expect(shadowed.warnings).toEqual([FOREIGN]);
    const unchecked = assessSiteDrift(answer(status({ drift: { ...status().drift!, checkedAt: null } })));
    expect(unchecked.notes.join()).toMatch(/not finished a drift check/);
  });
});

describe('driftExitCode', () => {
  const site = (s: StatusResult | undefined, name: string, error?: SiteStatusAnswer['error']) =>
    answer(s === undefined ? undefined : { ...s, site: name }, { site: name, ...(error ? { error } : {}) });
  const drifted = status({ drift: { ...status().drift!, items: [RULE_MISSING] } });
  const down = { kind: 'transport', message: 'refused' };
  it.each<[string, SiteStatusAnswer[], number]>([
    ['all in sync', [site(status(), 'a'), site(status(), 'b')], 0],
    ['one drifted', [site(status(), 'a'), site(drifted, 'b')], 1],
    ['one unreachable', [site(status(), 'a'), site(undefined, 'b', down)], 2],
    ['unreachable wins over drift', [site(drifted, 'a'), site(undefined, 'b', down)], 2],
    ['no sites at all', [], 0],
  ])('%s → exit %s', (_name, answers, code) => {
    expect(driftExitCode(buildDriftReport(answers, T0))).toBe(code);
  });
});

describe('renderers', () => {
  const report = buildDriftReport(
    [
      answer(status(), { site: 'amsterdam' }),
      answer(status({ drift: { ...status().drift!, items: [RULE_MISSING], shadowed: [FOREIGN] } })),
      answer(undefined, {
        site: 'cairo',
        host: '192.0.2.30',
        error: {
          kind: 'transport (connection-refused)',
          message: 'cairo: connect ECONNREFUSED <&> "quoted"',
        },
      }),
    ].map((a) => (a.status ? { ...a, status: { ...a.status, site: a.site } } : a)),
    T0,
  );

  it('JUnit parses as XML: one test case per site, drift a failure, unreachable an error', () => {
    const xml = renderDriftJunit(report);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    // A real DOM parse: entities decoded, structure checked element by element.
    const suites = create(xml).root().node as unknown as Element;
    expect(suites.tagName).toBe('testsuites');
    expect(['tests', 'failures', 'errors'].map((a) => suites.getAttribute(a))).toEqual(['3', '1', '1']);
    const suite = suites.getElementsByTagName('testsuite')[0]!;
    expect(suite.getAttribute('timestamp')).toBe('2024-05-01T12:00:00');
    const cases = [...suite.getElementsByTagName('testcase')];
    const child = (c: Element, tag: string) => c.getElementsByTagName(tag)[0];
    expect(cases.map((c) => c.getAttribute('name'))).toEqual(['amsterdam', 'berlin', 'cairo']);
    expect(cases.every((c) => c.getAttribute('classname') === 'uplink.drift')).toBe(true);
    expect(child(cases[0]!, 'failure') ?? child(cases[0]!, 'error')).toBeUndefined();
    expect(child(cases[1]!, 'failure')!.textContent).toContain(
      `missing ${RULE_MISSING.object}: expected ${RULE_MISSING.expected}`,
    );
    expect(child(cases[1]!, 'error')).toBeUndefined();
    expect(child(cases[1]!, 'system-out')!.textContent).toContain(
      'warning: shadowed rule 50 from all lookup 7',
    );
    expect(child(cases[2]!, 'error')!.getAttribute('type')).toBe('transport (connection-refused)');
    expect(child(cases[2]!, 'error')!.getAttribute('message')).toBe(
      'cairo: connect ECONNREFUSED <&> "quoted"',
    );
  });

  it('text names every finding with expected, found and since when', () => {
    const text = renderDriftText(report);
    expect(text).toContain(
      `DRIFT berlin (192.0.2.10): drift: 1 difference from git\n    missing ${RULE_MISSING.object}: expected ${RULE_MISSING.expected}, found nothing (since 2024-05-01T12:00:00Z)`,
    );
    expect(text).toMatch(/^not checked: cairo$/m);
  });

  it('Markdown: a table row per site, escaped text, details for the drifted one', () => {
    const md = renderDriftMarkdown(report);
    expect(md).toContain('| amsterdam | ✅ in sync |');
    expect(md).toContain('| berlin | ⚠️ drift | 1 difference, 1 warning(s) |');
    expect(md).toContain('ECONNREFUSED &lt;&amp;&gt;');
    expect(md).toMatch(/<details><summary><b>berlin<\/b>/);
  });
});

describe('isoTime', () => {
  it.each([
    [0, '1970-01-01T00:00:00Z'],
    [951_782_400_000, '2000-02-29T00:00:00Z'],
    [T0 + 59_999, '2024-05-01T12:00:59Z'],
    [4_102_444_799_000, '2099-12-31T23:59:59Z'],
  ])('%i → %s', (ms, iso) => {
    expect(isoTime(ms)).toBe(iso);
  });
});
