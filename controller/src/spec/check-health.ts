/** A provider's (or the fleet's) `health:` block, inherited key by key, checked against the agent's limits. */
import { formatMs, type HealthSettings, LIMITS, type Range } from '#agent/model';
import { checkAddress } from './addresses.js';
import { parseDuration } from './duration.js';
import type { HealthSpec } from './spec-schema.js';

export function checkHealth(
  base: HealthSettings,
  spec: HealthSpec | undefined,
  err: (path: (string | number)[], message: string) => void,
): HealthSettings {
  if (!spec) return base;
  const out = { ...base, targets: [...base.targets] };
  if (spec.enabled !== undefined) out.enabled = spec.enabled;
  if (spec.method !== undefined) out.method = spec.method;
  if (spec.tcpPort !== undefined) out.tcpPort = spec.tcpPort;
  if (spec.interval !== undefined) out.intervalMs = parseDuration(spec.interval);
  if (spec.timeout !== undefined) out.timeoutMs = parseDuration(spec.timeout);
  if (spec.failAfter !== undefined) out.failAfter = spec.failAfter;
  if (spec.recoverAfter !== undefined) out.recoverAfter = spec.recoverAfter;
  if (spec.minTargetsUp !== undefined) out.minTargetsUp = spec.minTargetsUp;
  if (spec.targets !== undefined) {
    out.targets = [];
    spec.targets.forEach((t, i) => {
      const c = checkAddress(t);
      if (c.ok) out.targets.push(c.value);
      else err(['targets', i], `targets: ${c.message}`);
    });
  }
  checkDurationRange(['interval'], 'interval', out.intervalMs, LIMITS.health.intervalMs, err);
  checkDurationRange(['timeout'], 'timeout', out.timeoutMs, LIMITS.health.timeoutMs, err);
  if (out.timeoutMs > out.intervalMs) {
    err(
      ['timeout'],
      `timeout: ${out.timeoutMs}ms is longer than the interval (${out.intervalMs}ms); a probe must time out before the next round`,
    );
  }
  if (out.method === 'tcp' && out.tcpPort === undefined)
    err(['method'], 'method: tcp needs tcpPort: <port>, e.g. 443');
  if (out.targets.length > 0 && out.minTargetsUp > out.targets.length) {
    err(
      ['minTargetsUp'],
      `minTargetsUp: ${out.minTargetsUp} is more than the ${out.targets.length} targets listed`,
    );
  }
  return out;
}

/** A duration the agent bounds: `interval: 2h` is refused here, not by every router. */
export function checkDurationRange(
  path: (string | number)[],
  name: string,
  ms: number,
  range: Range,
  err: (path: (string | number)[], message: string) => void,
): void {
  if (ms < range.min)
    err(path, `${name}: ${formatMs(ms)} is too short; write ${formatMs(range.min)} or more`);
  else if (ms > range.max)
    err(path, `${name}: ${formatMs(ms)} is too long; write ${formatMs(range.max)} or less`);
}
