/**
 * A seeded mutator of fleet repositories, for fuzzing the spec pipeline with what a hostile
 * or careless pull request can hold: flipped and deleted bytes, duplicated and swapped lines,
 * anchors and aliases (bombs and dangling ones), deep nesting, huge maps and lists, keys
 * repeated, values of the wrong type, control characters, tabs. Every mutant must come back
 * from `loadFleet` as diagnostics or a fleet — never an exception (D90).
 */
import { mulberry32 } from '../lab/mulberry32.js';

type Mutation = (text: string, rand: () => number) => string;

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const lines = (text: string) => text.split('\n');
const at = (rand: () => number, n: number) => Math.floor(rand() * Math.max(1, n));

const MUTATIONS: readonly [string, Mutation][] = [
  [
    'flip a byte',
    (t, r) => {
      const i = at(r, t.length);
      return t.slice(0, i) + String.fromCharCode(at(r, 128)) + t.slice(i + 1);
    },
  ],
  [
    'delete a span',
    (t, r) => {
      const i = at(r, t.length);
      return t.slice(0, i) + t.slice(i + 1 + at(r, 40));
    },
  ],
  [
    'duplicate a line',
    (t, r) => {
      const ls = lines(t);
      const i = at(r, ls.length);
      ls.splice(i, 0, ls[i] ?? '');
      return ls.join('\n');
    },
  ],
  [
    'swap two lines',
    (t, r) => {
      const ls = lines(t);
      const [i, j] = [at(r, ls.length), at(r, ls.length)];
      [ls[i], ls[j]] = [ls[j] ?? '', ls[i] ?? ''];
      return ls.join('\n');
    },
  ],
  [
    're-indent a line',
    (t, r) => {
      const ls = lines(t);
      const i = at(r, ls.length);
      ls[i] = ' '.repeat(at(r, 12)) + (ls[i] ?? '').trimStart();
      return ls.join('\n');
    },
  ],
  [
    'a tab in the indentation',
    (t, r) => {
      const ls = lines(t);
      const i = at(r, ls.length);
      ls[i] = `\t${ls[i] ?? ''}`;
      return ls.join('\n');
    },
  ],
  [
    'an alias bomb',
    (t, r) => {
      const width = 5 + at(r, 10);
      const depth = 4 + at(r, 5);
      const bomb = [`x0: &x0 [${Array(width).fill('"lol"').join(', ')}]`];
      for (let d = 1; d < depth; d++)
        bomb.push(
          `x${d}: &x${d} [${Array(width)
            .fill(`*x${d - 1}`)
            .join(', ')}]`,
        );
      return `${t}\n${bomb.join('\n')}\n`;
    },
  ],
  [
    'a dangling alias',
    (t, r) => t.replace(/: ([^\n]+)/, (_m, v) => `: *${pick(r, ['nope', 'a', 'x1'])} # was ${v}`),
  ],
  [
    'an anchor and an alias used as a value',
    (t, r) => {
      const ls = lines(t);
      const i = ls.findIndex((l) => /^\w+:\s*\S/.test(l));
      if (i < 0) return t;
      ls[i] = ls[i]!.replace(/:\s*/, ': &shared ');
      ls.push(`${pick(r, ['description', 'extra', 'labels'])}: *shared`);
      return ls.join('\n');
    },
  ],
  [
    'deep flow nesting',
    (t, r) => {
      const n = 10 + at(r, 3000);
      return `${t}\ndeep: ${'['.repeat(n)}${']'.repeat(n)}\n`;
    },
  ],
  [
    'deep block nesting',
    (t, r) => {
      const n = 10 + at(r, 150);
      return `${t}\n${Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')} 1\n`;
    },
  ],
  [
    'a huge map',
    (t, r) => {
      const n = 1_000 + at(r, 20_000);
      return `${t}\nlabels:\n${Array.from({ length: n }, (_, i) => `  k${i}: "${i}"`).join('\n')}\n`;
    },
  ],
  [
    'a huge list of unknown keys',
    (t, r) => {
      const n = 100 + at(r, 3_000);
      return `${t}\n${Array.from({ length: n }, (_, i) => `unknown${i}: ${i}`).join('\n')}\n`;
    },
  ],
  [
    'a repeated key',
    (t) => {
      const first = lines(t).find((l) => /^\w+:/.test(l));
      return first === undefined ? t : `${t}\n${first}\n`;
    },
  ],
  [
    'a value of another type',
    (t, r) =>
      t.replace(
        /: ([^\n&*]+)/,
        () =>
          `: ${pick(r, ['[1, 2]', '{a: 1}', 'null', 'true', '-1', '1e400', '"x"', '0x', '!!binary aGk=', '!custom x'])}`,
      ),
  ],
  [
    'control characters',
    (t, r) => {
      const i = at(r, t.length);
      return (
        t.slice(0, i) + pick(r, ['\u0000', '\u0007', '\u001b[2J', '\ufeff', '\u2028', '\r']) + t.slice(i)
      );
    },
  ],
  ['a second document', (t) => `${t}\n---\nname: other\n`],
  ['emptied', () => ''],
  ['a comment only', () => '# nothing here\n'],
];

/** `count` mutants of `files`, each with 1–3 mutations applied to 1–2 files. Deterministic for a seed. */
export function* mutateFleet(
  files: ReadonlyMap<string, string>,
  seed: number,
  count: number,
): Generator<{ readonly files: Map<string, string>; readonly applied: readonly string[] }> {
  const rand = mulberry32(seed);
  const names = [...files.keys()];
  for (let n = 0; n < count; n++) {
    const out = new Map(files);
    const applied: string[] = [];
    const touched = 1 + at(rand, 2);
    for (let f = 0; f < touched; f++) {
      const name = pick(rand, names);
      let text = out.get(name)!;
      const steps = 1 + at(rand, 3);
      for (let s = 0; s < steps; s++) {
        const [label, mutate] = pick(rand, MUTATIONS);
        text = mutate(text, rand);
        applied.push(`${name}: ${label}`);
      }
      out.set(name, text);
    }
    yield { files: out, applied };
  }
}
