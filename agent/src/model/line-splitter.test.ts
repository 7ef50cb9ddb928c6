import { describe, expect, it } from 'vitest';
import { LineSplitter, type SplitItem } from './line-splitter.js';

const text = (items: SplitItem[]) =>
  items.map((i) => ('line' in i ? i.line.toString('utf8') : { tooLong: i.tooLong }));

describe('LineSplitter', () => {
  it('splits lines across chunk boundaries and keeps multi-byte characters whole', () => {
    const splitter = new LineSplitter(100);
    const bytes = Buffer.from('{"a":1}\n{"b":"é€"}\n{"c"');
    expect(text(splitter.push(bytes.subarray(0, 3)))).toEqual([]);
    expect(text(splitter.push(bytes.subarray(3, 16)))).toEqual(['{"a":1}']);
    expect(text(splitter.push(bytes.subarray(16)))).toEqual(['{"b":"é€"}']);
    expect(splitter.buffered).toBe(4);
    expect(text(splitter.push(Buffer.from(':3}\n\n')))).toEqual(['{"c":3}', '']);
  });

  it('accepts a line of exactly the limit and reports one byte more as too long, in its place', () => {
    expect(text(new LineSplitter(5).push(Buffer.from('12345\n')))).toEqual(['12345']);
    expect(text(new LineSplitter(5).push(Buffer.from('123456\nok\n')))).toEqual([{ tooLong: 6 }, 'ok']);
  });

  it('knows an over-long line is too long before its newline arrives, and does not buffer it', () => {
    const splitter = new LineSplitter(5);
    splitter.push(Buffer.from('123'));
    expect(splitter.overflowing).toBe(false);
    expect(splitter.push(Buffer.from('456'))).toEqual([]);
    expect(splitter.overflowing).toBe(true);
    expect(splitter.buffered).toBe(0);
    expect(text(splitter.push(Buffer.from('789\nnext\n')))).toEqual([{ tooLong: 9 }, 'next']);
    expect(splitter.overflowing).toBe(false);
  });

  it('ends a last line without its newline', () => {
    const splitter = new LineSplitter(10);
    splitter.push(Buffer.from('tail'));
    expect(text(splitter.end())).toEqual(['tail']);
    expect(splitter.end()).toEqual([]);
  });
});
