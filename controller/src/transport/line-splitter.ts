/**
 * Split a byte stream into newline-terminated lines, refusing any line longer than the
 * limit as soon as it is known to be too long — without buffering the rest of it.
 */
export class LineTooLongError extends Error {
  override readonly name = 'LineTooLongError';
  constructor(readonly maxBytes: number) {
    super(`line exceeds ${maxBytes} bytes`);
  }
}

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Feed a chunk; returns the complete lines it finished (without '\n', trailing '\r' kept). Throws LineTooLongError. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const length = this.pendingBytes + (newline - start);
      if (length > this.maxBytes) throw new LineTooLongError(this.maxBytes);
      const part = chunk.subarray(start, newline);
      lines.push(
        this.pending.length === 0
          ? part.toString('utf8')
          : Buffer.concat([...this.pending, part]).toString('utf8'),
      );
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.maxBytes) throw new LineTooLongError(this.maxBytes);
      // Copy: the caller may reuse its buffer.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /** Bytes received after the last newline. */
  get buffered(): number {
    return this.pendingBytes;
  }
}
