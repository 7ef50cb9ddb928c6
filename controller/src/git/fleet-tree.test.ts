import { describe, expect, it } from 'vitest';
import { isFleetFile, parseCatFileBatch, parseLsTree, selectFleetEntries } from './fleet-tree.js';

describe('isFleetFile', () => {
  it.each([
    ['fleet.yaml', true],
    ['fleet.yml', true],
    ['groups/isp.yaml', true],
    ['sites/a.yml', true],
    ['sites/sub/a.yaml', false],
    ['sites/a.json', false],
    ['README.md', false],
    ['docs/fleet.yaml', false],
    ['sitesX/a.yaml', false],
  ])('%s → %s', (path, expected) => expect(isFleetFile(path)).toBe(expected));
});

describe('parseLsTree / selectFleetEntries', () => {
  const blob = 'a'.repeat(40);
  const output = [
    `100644 blob ${blob}\tfleet.yaml`,
    `100755 blob ${blob}\tsites/exec.yaml`,
    `120000 blob ${blob}\tsites/link.yaml`,
    `160000 commit ${blob}\tsites/sub.yaml`,
    `100644 blob ${blob}\tsites/with tab\tand space.yaml`,
    `100644 blob ${blob}\tREADME.md`,
    '',
  ].join('\0');

  it('parses paths verbatim (tabs and spaces included)', () => {
    expect(parseLsTree(output).map((e) => e.path)).toContain('sites/with tab\tand space.yaml');
  });

  it('keeps regular fleet files only', () => {
    expect(selectFleetEntries(parseLsTree(output)).map((e) => e.path)).toEqual([
      'fleet.yaml',
      'sites/exec.yaml',
      'sites/with tab\tand space.yaml',
    ]);
  });

  it('refuses a malformed entry', () => {
    expect(() => parseLsTree('garbage\0')).toThrow(/cannot read entry/);
  });
});

describe('parseCatFileBatch', () => {
  const a = 'a'.repeat(40);
  const b = 'b'.repeat(40);
  it('splits blobs by their sizes, newlines and multi-byte text included', () => {
    const textA = 'name: a\n\n';
    const textB = 'x: "é"\n';
    const out = Buffer.concat([
      Buffer.from(`${a} blob ${Buffer.byteLength(textA)}\n${textA}\n`),
      Buffer.from(`${b} blob ${Buffer.byteLength(textB)}\n${textB}\n`),
    ]);
    const blobs = parseCatFileBatch(out, [a, b]);
    expect(blobs.get(a)!.toString('utf8')).toBe(textA);
    expect(blobs.get(b)!.toString('utf8')).toBe(textB);
  });

  it.each([
    ['a missing object', `${a} missing\n`, /expected blob/],
    ['a truncated blob', `${a} blob 10\nabc`, /truncated/],
    ['no output', '', /ends before/],
  ])('refuses %s', (_name, text, error) => {
    expect(() => parseCatFileBatch(Buffer.from(text), [a])).toThrow(error);
  });
});
