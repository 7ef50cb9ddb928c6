/**
 * `ip -j -batch -` prints one JSON array per command, each on its own line (iproute2 6.1).
 * Splits that output back into one value per command; `undefined` when it does not look like
 * that (another iproute2 version), so the caller can fall back to one process per command.
 */
export function splitJsonLines(text: string, expected: number): unknown[][] | undefined {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines.length !== expected) return undefined;
  const arrays: unknown[][] = [];
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (!Array.isArray(value)) return undefined;
    arrays.push(value);
  }
  return arrays;
}
