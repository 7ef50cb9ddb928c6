import { describe, expect, it } from 'vitest';
import { splitJsonLines } from './split-json-lines.js';

describe('splitJsonLines', () => {
  it('returns one array per line, in order', () => {
    expect(splitJsonLines('[{"priority":0}]\n[]\n', 2)).toEqual([[{ priority: 0 }], []]);
  });

  it.each([
    ['fewer lines than commands', '[1]\n', 2],
    ['more lines than commands', '[1]\n[2]\n[3]\n', 2],
    ['a line that is not JSON', '[1]\n[2\n', 2],
    ['a line that is not an array', '[1]\n{"a":1}\n', 2],
    ['one array pretty-printed over several lines', '[\n1\n]\n', 1],
  ])('gives up on %s', (_name, text, expected) => {
    expect(splitJsonLines(text, expected)).toBeUndefined();
  });
});
