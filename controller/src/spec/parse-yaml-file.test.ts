/**
 * The fast parse (js-yaml events) must answer exactly what the position-carrying `yaml`
 * document answered (D90): the same value, and the same FILE:LINE:COL for every path, key or
 * value, over tricky YAML, the example fleet and generated fleets. And hostile input gets a
 * located error, never a stack trace or a hang.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { parseEvents } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { fleetArbitrary } from '../../../test/contract/fleet-arbitrary.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { formatDiagnostic } from './diagnostic.js';
import { loadFleet } from './load-fleet.js';
import { indexEvents, MAX_FILE_CHARS, parseYamlFile, positionDocument } from './parse-yaml-file.js';

const TRICKY = [
  'a: "x"\nb: \'y\'\nc: |\n  lit\nd: >-\n  fold\ne: &an v\nf: !!str 5\ng: *an\nh:\ni: [ "q", \'r\', {k: "v"} ]\nj:\n  - "x"\n  - &b2 { z: 1 }\nk: ~\nl: null\n',
  '# comment\nname: s1 # trailing\nlist:\n- a\n-   b\n- - nested\n  - seq\nmap: &m\n  x: 1\n  "quoted key": 2\n  \'single\': 3\nref: *m\n',
  'multi: this is\n  a folded plain\n  scalar\nnext: {a: , b: 2}\nempty_seq: []\nempty_map: {}\nblock: |+\n\n  text after blank\n\nlast: 0x1f\n',
  'providers:\n  - name: isp1\n    interface: enp1s0.100\n    health: { interval: 1s, targets: [192.0.2.1, "192.0.2.2"] }\n  -\n    name: isp2\n    gateway: detect\n',
  'k1: 1\nk2:\n  # only a comment here\n  k3: [a,\n    b]\n',
];

function paths(value: unknown, prefix: (string | number)[], out: (string | number)[][]): void {
  out.push(prefix);
  if (Array.isArray(value)) for (const [i, v] of value.entries()) paths(v, [...prefix, i], out);
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
}

function expectSameAsYaml(name: string, text: string): void {
  const slow = positionDocument(text);
  const fast = parseYamlFile(name, text);
  expect(fast.diagnostics, name).toEqual([]);
  const value = slow.value();
  expect(fast.parsed.value, name).toEqual(value);
  const index = indexEvents(text, parseEvents(text, {}));
  const all: (string | number)[][] = [];
  paths(value, [], all);
  // A path that does not exist is located at its nearest ancestor, both ways.
  all.push(['no-such-key'], [0], ['providers', 99, 'name']);
  for (const path of all) {
    for (const key of [false, true]) {
      expect(index.locate(path, { key }), `${name} ${JSON.stringify(path)} key=${key}`).toEqual(
        slow.locate(path, { key }),
      );
    }
  }
}

describe('parseYamlFile: the fast parse answers what the position-carrying one did', () => {
  it.each(TRICKY.map((text, i) => [`tricky ${i}`, text]))('%s', (name, text) => expectSameAsYaml(name, text));

  it('every file of fleet-repo-example', async () => {
    const files = await readFleetFiles(join(import.meta.dirname, '../../../fleet-repo-example'));
    expect(files.size).toBeGreaterThan(5);
    for (const [name, text] of files) expectSameAsYaml(name, text);
  });

  it('100 generated fleets', async () => {
    for (const fleet of fc.sample(fleetArbitrary, { seed: 7, numRuns: 100 })) {
      await new Promise((resolve) => setImmediate(resolve));
      for (const [name, text] of fleet.files) expectSameAsYaml(name, text);
    }
  });
});

const FLEET = 'rollout:\n  waves:\n    - name: all\n';
const run = (site: string) =>
  loadFleet(
    new Map([
      ['fleet.yaml', FLEET],
      ['sites/s1.yaml', site],
    ]),
  ).diagnostics.map(formatDiagnostic);

describe('parseYamlFile: hostile input gets a located error', () => {
  it.each([
    [
      'an alias bomb',
      'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n',
      /^sites\/s1\.yaml:2:8: error: YAML: aliases expand this file past 1000000 values \(an alias bomb\?\)/,
    ],
    [
      'more aliases than allowed',
      `a: &a x\nb: [${Array(101).fill('*a').join(', ')}]\n`,
      /^sites\/s1\.yaml:2:\d+: error: YAML: more than 100 aliases; Uplink allows at most 100 per file/,
    ],
    [
      'an alias without its anchor',
      'name: *nope\n',
      /^sites\/s1\.yaml:1:7: error: YAML: alias \*nope names no anchor before it; define &nope first$/,
    ],
    [
      'flow nesting 5,000 deep',
      `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`,
      /^sites\/s1\.yaml:1:\d+: error: YAML: nested more than 64 levels deep/,
    ],
    [
      'block nesting 200 deep',
      `${Array.from({ length: 200 }, (_, i) => `${' '.repeat(i * 2)}k:`).join('\n')} 1\n`,
      /^sites\/s1\.yaml:\d+:\d+: error: YAML: nested more than 64 levels deep/,
    ],
    [
      'a file over the size limit',
      `name: s1\ndescription: "${'x'.repeat(MAX_FILE_CHARS)}"\n`,
      /^sites\/s1\.yaml:1:1: error: YAML: sites\/s1\.yaml is \d+ characters; Uplink reads at most 4194304 per file/,
    ],
    [
      'a duplicate key',
      'name: s1\nname: s2\n',
      /^sites\/s1\.yaml:2:1: error: YAML: Map keys must be unique$/,
    ],
  ])('%s', (_name, text, message) => {
    const diagnostics = run(text);
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics[0]).toMatch(message);
  });

  it('finds a duplicate among 40,000 keys of one map, each once', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `  k${i}: v`);
    keys.push('  k17: again');
    const diagnostics = run(`name: s1\nlabels:\n${keys.join('\n')}\n`);
    expect(diagnostics).toEqual(['sites/s1.yaml:40003:3: error: YAML: Map keys must be unique']);
  });
});
