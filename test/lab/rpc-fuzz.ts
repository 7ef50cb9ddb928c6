/**
 * Seeded random protocol messages that must all be refused (fuzzing the agent's RPC):
 * garbage, truncated JSON, scalars, and valid requests broken in one random way.
 */
import { exampleDesiredState } from '../support/example-desired-state.js';

/** Seeded, so the fuzz cases are the same on every run. */
export { mulberry32 } from './mulberry32.js';

/** Methods whose params ignore fields they do not know (a newer controller's, D91): only a non-object breaks them. */
const TOLERANT = new Set(['status', 'hello']);

/** A line that must be refused: garbage, or a valid request broken in one random way. */
export function randomInvalidLine(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const valid = (): Record<string, unknown> =>
    pick([
      { v: 1, id: 1, method: 'status', params: {} },
      { v: 1, id: 'x', method: 'hello', params: { protocol: 1, client: 'c' } },
      { v: 1, id: 2, method: 'confirm', params: { generation: 'g1' } },
      { v: 1, id: 3, method: 'revert', params: {} },
      {
        v: 1,
        id: 4,
        method: 'apply',
        params: { desired: exampleDesiredState(), generation: 'g1', confirmWithinMs: 60_000 },
      },
      { v: 1, id: 5, method: 'plan', params: { desired: exampleDesiredState() } },
    ]);
  const junk = () =>
    pick<unknown>([
      null,
      true,
      -1,
      1.5,
      'x',
      '',
      [],
      {},
      [1, 'a'],
      { a: 1 },
      2 ** 60,
      '\u0000',
      'a'.repeat(300),
    ]);
  const mutate = (message: Record<string, unknown>): Record<string, unknown> => {
    const m = structuredClone(message);
    const key = pick(['v', 'id', 'method', 'params', 'extra']);
    switch (pick(['delete', 'junk', 'extra-param'])) {
      case 'delete':
        if (key === 'extra') m.method = `${String(m.method)}x`;
        else if (key === 'id' || key === 'v' || key === 'method') delete m[key];
        else m.params = pick([null, 1, 'x', [], [{}]]);
        return m;
      case 'junk':
        if (key === 'extra') m.extra = junk();
        else if (key === 'params' && TOLERANT.has(String(m.method))) m.params = pick([null, 1, 'x', []]);
        else if (key === 'params' && typeof m.params === 'object')
          (m.params as Record<string, unknown>).bogus = junk();
        else m[key] = junk() ?? 'null';
        if (
          key === 'id' &&
          (typeof m.id === 'string' ? m.id.length <= 64 : Number.isSafeInteger(m.id) && (m.id as number) >= 0)
        ) {
          m.params = 7;
        }
        if (key === 'method' && typeof m.method === 'string') m.method = `${m.method}!`;
        return m;
      default:
        (m as { params: unknown }).params = TOLERANT.has(String(m.method))
          ? pick([null, 1, 'x', []])
          : { ...(m.params as object), [`p${Math.floor(random() * 1e6)}`]: junk() };
        return m;
    }
  };
  switch (pick(['bytes', 'truncated', 'mutated', 'mutated', 'mutated', 'scalar'])) {
    case 'bytes': {
      const length = 1 + Math.floor(random() * 200);
      let text = '';
      for (let i = 0; i < length; i++) text += String.fromCharCode(32 + Math.floor(random() * 95));
      return text.trim() === '' || /^\s*(\d|-|"|\[|\{|t|f|n)/.test(text) ? `#${text}` : text;
    }
    case 'truncated': {
      const text = JSON.stringify(valid());
      return text.slice(0, 1 + Math.floor(random() * (text.length - 2)));
    }
    case 'scalar':
      return JSON.stringify(pick([null, 1, 'str', true, [], [{}]]));
    default:
      return JSON.stringify(mutate(valid()));
  }
}
