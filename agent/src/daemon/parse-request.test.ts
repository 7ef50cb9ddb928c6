/**
 * The agent defends itself (D89): what a controller would never send is refused as
 * `bad-request`, naming the field, before anything reads the kernel.
 */
import { describe, expect, it } from 'vitest';
import { exampleDesiredState, withContentHash } from '../../../test/support/example-desired-state.js';
import type { DesiredState } from '../model/desired-state.js';
import { parseRequestLine } from './parse-request.js';

const apply = (desired: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    v: 1,
    id: 7,
    method: 'apply',
    params: { desired, generation: 'g1', confirmWithinMs: 30_000, ...extra },
  });

function refusal(line: string): { code: string; message: string } {
  const parsed = parseRequestLine(line);
  if (parsed.ok) throw new Error('expected a refusal');
  expect(parsed.response.id).toBe(7);
  return parsed.response.error;
}

const edited = (edit: (state: DesiredState) => void): DesiredState => {
  const state = structuredClone(exampleDesiredState());
  edit(state);
  return withContentHash(state);
};

describe('parseRequestLine: an apply the agent must refuse', () => {
  it('accepts the example site as the compiler stamps it', () => {
    expect(parseRequestLine(apply(exampleDesiredState())).ok).toBe(true);
  });

  it.each<[string, () => unknown, RegExp]>([
    [
      'a hash that is not the content’s',
      () => ({ ...exampleDesiredState(), hash: 'a'.repeat(64) }),
      /params\.desired\.hash: does not match the content \(sha256 of the canonical JSON is [0-9a-f]{64}\)/,
    ],
    [
      'content edited after compiling',
      () => {
        const state = exampleDesiredState();
        state.sysctls['net.ipv4.conf.eth1.rp_filter'] = '0';
        return state;
      },
      /params\.desired\.hash: does not match the content/,
    ],
    [
      "the kernel's protocol as Uplink's tag",
      () => edited((s) => (s.settings.protocol = 2)),
      /params\.desired\.settings\.protocol: protocol 2 is reserved for kernel/,
    ],
    [
      "proto static (an admin's routes) as Uplink's tag",
      () => edited((s) => (s.settings.protocol = 4)),
      /params\.desired\.settings\.protocol: protocol 4 is reserved for static/,
    ],
    [
      'table local as a provider table',
      () => edited((s) => (s.providers[0]!.table = 255)),
      /params\.desired\.providers\.0\.table: table 255 is the kernel's local table/,
    ],
    [
      'a route into table main',
      () =>
        edited((s) =>
          s.routes.push({
            id: 'x',
            table: 254,
            dst: { kind: 'literal', cidr: '192.0.2.0/24' },
            type: 'blackhole',
          }),
        ),
      /params\.desired\.routes\.\d+\.table: table 254 is not a provider's or the balance table/,
    ],
    [
      'adopting table main',
      () => edited((s) => s.settings.adoptTables.push(254)),
      /params\.desired\.settings\.adoptTables\.0: table 254 is not a provider's or the balance table/,
    ],
    [
      'a non-canonical CIDR',
      () =>
        edited((s) =>
          s.rules.push({
            id: 'x',
            priority: 10500,
            action: 'lookup',
            table: 101,
            to: { kind: 'literal', cidr: '192.0.2.7/24' },
          }),
        ),
      /params\.desired\.rules\.\d+\.to\.cidr: 192\.0\.2\.7\/24 has host bits set; write its network address \(192\.0\.2\.0\/24\)/,
    ],
    [
      'a sysctl outside /proc/sys/net',
      () => edited((s) => (s.sysctls['net.ipv4.conf.all.rp_filter/../../../../kernel/panic'] = '1')),
      /not a sysctl key Uplink manages/,
    ],
    [
      'a rule naming a provider that is not declared',
      () =>
        edited((s) =>
          s.rules.push({ id: 'x', priority: 10500, action: 'lookup', table: 101, requires: 'isp9' }),
        ),
      /params\.desired\.rules\.\d+\.requires: names provider isp9, which is not declared/,
    ],
    [
      'two providers with one mark',
      () => edited((s) => (s.providers[1]!.mark = s.providers[0]!.mark)),
      /params\.desired\.providers\.1\.mark: mark 256 is also provider isp1's/,
    ],
  ])('%s → bad-request naming the field', (_name, make, message) => {
    const error = refusal(apply(make()));
    expect(error.code).toBe('bad-request');
    expect(error.message).toMatch(message);
  });

  it.each([
    ['2h', 7_200_000, /confirmWithinMs: Too big/],
    ['200ms', 200, /confirmWithinMs: Too small/],
  ])('a confirm deadline of %s → bad-request', (_name, ms, message) => {
    const error = refusal(apply(exampleDesiredState(), { confirmWithinMs: ms }));
    expect(error.code).toBe('bad-request');
    expect(error.message).toMatch(message);
  });
});
