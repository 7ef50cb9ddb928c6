import { describe, expect, it } from 'vitest';
import type { KernelNftRule } from '../model/kernel-state.js';
import { RenderError } from './render-ip-batch.js';
import { orderNftRulesByChain, renderNftTable } from './render-nft.js';

describe('renderNftTable', () => {
  it('null deletes the table whether or not it exists (add + delete in one transaction)', () => {
    expect(renderNftTable(null, 0xff00)).toBe('add table inet uplink\ndelete table inet uplink\n');
  });

  it('always writes the three base chains, even without rules', () => {
    const text = renderNftTable([], 0xff00);
    expect(text).toContain(
      'chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n  }',
    );
    expect(text).toContain('chain output {\n    type route hook output priority mangle; policy accept;\n  }');
    expect(text).toContain(
      'chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n  }',
    );
  });

  it('writes marks with constants under the mask, leaving other bits alone', () => {
    const text = renderNftTable(
      [
        { kind: 'track-save', iif: 'ppp1', mark: 0x30000 },
        { kind: 'track-restore', chain: 'output', mark: 0x30000 },
      ],
      0xff0000,
    );
    expect(text).toContain(
      'meta nfproto ipv4 iifname "ppp1" ct state new ct mark set ct mark and 0xff00ffff or 0x30000 comment "uplink:track-save"',
    );
    expect(text).toContain(
      'meta nfproto ipv4 ct mark and 0xff0000 == 0x30000 meta mark set meta mark and 0xff00ffff or 0x30000 comment "uplink:track-restore"',
    );
  });

  it.each<[string, KernelNftRule, RegExp]>([
    ['a mark outside the mask', { kind: 'track-save', iif: 'isp1', mark: 0x10000 }, /outside the mask/],
    [
      'mark 0 (would match every untracked connection)',
      { kind: 'track-restore', chain: 'output', mark: 0 },
      /mark/,
    ],
    ['an interface name with a quote', { kind: 'masquerade', oif: 'isp1"x' }, /interface name/],
    [
      'an address with extra text',
      { kind: 'snat', oif: 'isp1', address: '192.0.2.1; flush ruleset' },
      /IPv4/,
    ],
    ['an unknown rule', { kind: 'unknown', chain: 'prerouting', text: 'accept' }, /cannot be written back/],
  ])('refuses %s', (_name, rule, message) => {
    expect(() => renderNftTable([rule], 0xff00)).toThrow(RenderError);
    expect(() => renderNftTable([rule], 0xff00)).toThrow(message);
  });

  it('refuses a zero mask', () => {
    expect(() => renderNftTable([], 0)).toThrow(/mark mask/);
  });
});

describe('orderNftRulesByChain', () => {
  it('groups by chain in table order, keeping the order within a chain', () => {
    const rules: KernelNftRule[] = [
      { kind: 'masquerade', oif: 'a' },
      { kind: 'track-restore', chain: 'output', mark: 0x100 },
      { kind: 'track-save', iif: 'b', mark: 0x200 },
      { kind: 'snat', oif: 'c', address: '192.0.2.1' },
      { kind: 'track-save', iif: 'a', mark: 0x100 },
    ];
    expect(orderNftRulesByChain(rules)).toEqual([rules[2], rules[4], rules[1], rules[0], rules[3]]);
  });
});
