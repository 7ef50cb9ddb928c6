// biome-ignore lint/style/noRestrictedImports: tests read recorded fixtures; the code under test stays pure.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { KernelNftRule } from '../model/kernel-state.js';
import { NftJsonError, parseNftTable } from './parse-nft-json.js';
import { renderNftTable } from './render-nft.js';

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/nftables-1.0.6/${name}`, import.meta.url), 'utf8');

/** The rules uplink-table.nft was rendered from. */
const FIXTURE_NFT_RULES: KernelNftRule[] = [
  { kind: 'track-save', iif: 'isp1', mark: 0x100 },
  { kind: 'track-save', iif: 'isp2', mark: 0x200 },
  { kind: 'track-restore', chain: 'prerouting', mark: 0x100 },
  { kind: 'track-restore', chain: 'prerouting', mark: 0x200 },
  { kind: 'track-restore', chain: 'output', mark: 0x100 },
  { kind: 'track-restore', chain: 'output', mark: 0x200 },
  { kind: 'masquerade', oif: 'ppp0' },
  { kind: 'snat', oif: 'isp1', address: '198.51.100.2' },
];

describe('parseNftTable', () => {
  it('the fixture transaction is exactly what renderNftTable writes', () => {
    expect(renderNftTable(FIXTURE_NFT_RULES, 0xff00)).toBe(fixture('uplink-table.nft'));
  });

  it('round-trips: real `nft -j list table inet uplink` of the rendered table parses back to the input', () => {
    expect(parseNftTable(fixture('uplink-table.json'), { markMask: 0xff00 })).toEqual(FIXTURE_NFT_RULES);
  });

  it('reads an empty table as no rules (distinct from no table)', () => {
    expect(parseNftTable(fixture('uplink-table-empty.json'), { markMask: 0xff00 })).toEqual([]);
  });

  it('reports hand-added rules, chains and sets as unknown, keeping the recognised ones', () => {
    const rules = parseNftTable(fixture('uplink-table-tampered.json'), { markMask: 0xff00 });
    // A hand-added rule of a recognised shape is read as what it is (and is drift because
    // the desired state does not hold it); anything else is unknown.
    const extraRestore: KernelNftRule = { kind: 'track-restore', chain: 'output', mark: 0x300 };
    expect(rules.filter((rule) => rule.kind !== 'unknown')).toEqual([
      ...FIXTURE_NFT_RULES.slice(0, 6),
      extraRestore,
      ...FIXTURE_NFT_RULES.slice(6),
    ]);
    const unknown = rules.filter((rule) => rule.kind === 'unknown');
    expect(unknown.map((rule) => rule.chain)).toEqual(['prerouting', 'postrouting', 'extra', '']);
    expect(unknown[0]!.text).toContain('iifname'); // no uplink comment
    expect(unknown[1]!.text).toContain('masquerade'); // no meta nfproto ipv4
    expect(unknown[2]!.text).toBe('chain extra');
    expect(unknown[3]!.text).toBe('set blocked');
  });

  it('reports a base chain with another hook priority as unknown', () => {
    expect(parseNftTable(fixture('uplink-table-wrong-chain.json'), { markMask: 0xff00 })).toEqual([
      {
        kind: 'unknown',
        chain: 'prerouting',
        text: 'chain prerouting type "filter" hook "prerouting" prio -300 policy "accept"',
      },
    ]);
  });

  it('treats marks written under another mask as unknown (a mask change is drift)', () => {
    const rules = parseNftTable(fixture('uplink-table.json'), { markMask: 0xffff00 });
    expect(rules.filter((rule) => rule.kind === 'track-save' || rule.kind === 'track-restore')).toEqual([]);
  });

  it.each([
    ['not JSON', '<', /not JSON/],
    ['no nftables array', '{"x":1}', /"nftables" array/],
    ['no table entry', '{"nftables":[{"metainfo":{}}]}', /no table inet uplink/],
    ['another table', '{"nftables":[{"table":{"family":"ip","name":"filter"}}]}', /is table ip filter/],
    [
      'a rule of another table',
      '{"nftables":[{"rule":{"family":"inet","table":"x","chain":"c"}}]}',
      /not in table/,
    ],
    ['an entry with two keys', '{"nftables":[{"table":{},"rule":{}}]}', /exactly one key/],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parseNftTable(text, { markMask: 0xff00 })).toThrow(NftJsonError);
    expect(() => parseNftTable(text, { markMask: 0xff00 })).toThrow(message);
  });
});
