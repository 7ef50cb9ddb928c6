/**
 * Splits a byte stream into newline-terminated lines, refusing lines over a byte limit
 * without buffering them: an over-long line is skipped up to its newline and reported as
 * one `too-long` item in its place. The one splitter of the wire protocol: the daemon, the rpc
 * bridge and the controller's RPC client all frame with it (no imports, so the bridge stays
 * light).
 */

export type SplitItem = { readonly line: Buffer } | { readonly tooLong: number };

export class LineSplitter {
  #parts: Buffer[] = [];
  #size = 0;
  /** Inside an over-long line: bytes seen so far; -1 when not skipping. */
  #skipped = -1;

  /** `maxBytes`: the longest line accepted, without its newline. */
  constructor(readonly maxBytes: number) {}

  /** Inside a line already known to be too long (its newline not seen yet). */
  get overflowing(): boolean {
    return this.#skipped >= 0;
  }

  /** Bytes of the current, unfinished line. */
  get buffered(): number {
    return this.#size;
  }

  push(chunk: Buffer): SplitItem[] {
    const out: SplitItem[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      const length = end - start;
      if (this.#skipped >= 0) {
        this.#skipped += length;
      } else if (this.#size + length > this.maxBytes) {
        this.#skipped = this.#size + length;
        this.#parts = [];
        this.#size = 0;
      } else if (length > 0) {
        this.#parts.push(chunk.subarray(start, end));
        this.#size += length;
      }
      if (newline === -1) break;
      if (this.#skipped >= 0) {
        out.push({ tooLong: this.#skipped });
        this.#skipped = -1;
      } else {
        out.push({ line: this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts) });
        this.#parts = [];
        this.#size = 0;
      }
      start = newline + 1;
    }
    return out;
  }

  /** At end of input: a last line without its newline still counts. */
  end(): SplitItem[] {
    if (this.#skipped >= 0) {
      const tooLong = this.#skipped;
      this.#skipped = -1;
      return [{ tooLong }];
    }
    if (this.#size === 0) return [];
    const line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#size = 0;
    return [{ line }];
  }
}
