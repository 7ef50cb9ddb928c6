import { describe, expect, it } from 'vitest';
import { LineSplitter, LineTooLongError } from './line-splitter.js';

describe('LineSplitter', () => {
  it('splits lines across chunk boundaries and keeps multi-byte characters whole', () => {
    const splitter = new LineSplitter(100);
    const bytes = Buffer.from('{"a":1}\n{"b":"é€"}\n{"c"');
    expect(splitter.push(bytes.subarray(0, 3))).toEqual([]);
    expect(splitter.push(bytes.subarray(3, 16))).toEqual(['{"a":1}']);
    expect(splitter.push(bytes.subarray(16))).toEqual(['{"b":"é€"}']);
    expect(splitter.buffered).toBe(4);
    expect(splitter.push(Buffer.from(':3}\n\n'))).toEqual(['{"c":3}', '']);
  });

  it('accepts a line of exactly the limit and refuses one byte more', () => {
    expect(new LineSplitter(5).push(Buffer.from('12345\n'))).toEqual(['12345']);
    expect(() => new LineSplitter(5).push(Buffer.from('123456\n'))).toThrow(LineTooLongError);
  });

  it('refuses an over-long line before its newline arrives', () => {
    const splitter = new LineSplitter(5);
    splitter.push(Buffer.from('123'));
    expect(() => splitter.push(Buffer.from('456'))).toThrow('line exceeds 5 bytes');
  });
});
