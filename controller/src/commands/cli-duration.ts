/**
 * Durations on the command line are written as in YAML (`500ms`, `15s`, `5m`, `1h`), so
 * `--confirm-within 15s` means what `confirmWithin: 15s` means in fleet.yaml; a bare number
 * is seconds (as older versions took it).
 */
import { UsageError } from '../errors.js';
import { parseDuration } from '../spec/duration.js';

export function parseCliDuration(
  flag: string,
  text: string,
  limits: { readonly min?: number; readonly max?: number } = {},
): number {
  const trimmed = text.trim();
  const ms = /^\d+(?:\.\d+)?$/.test(trimmed)
    ? Math.round(Number(trimmed) * 1000)
    : /^\d+(?:\.\d+)?(?:ms|s|m|h)$/.test(trimmed)
      ? parseDuration(trimmed)
      : Number.NaN;
  const range = `${limits.min !== undefined ? `≥ ${show(limits.min)}` : ''}${limits.min !== undefined && limits.max !== undefined ? ' and ' : ''}${limits.max !== undefined ? `≤ ${show(limits.max)}` : ''}`;
  if (!Number.isFinite(ms))
    throw new UsageError(
      `${flag} ${text}: write a duration such as 15s, 500ms, 2m or 1h (a bare number is seconds)${range ? `, ${range}` : ''}`,
    );
  if ((limits.min !== undefined && ms < limits.min) || (limits.max !== undefined && ms > limits.max))
    throw new UsageError(`${flag} ${text}: write a duration ${range}`);
  return ms;
}

function show(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
