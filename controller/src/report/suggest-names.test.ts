import { describe, expect, it } from 'vitest';
import { suggestNames, unknownSiteMessage } from './suggest-names.js';

const KNOWN = ['branch-adsl-vpn', 'dmz-redundant', 'home-pppoe', 'lartc-split', 'shorewall-style'];

describe('did you mean', () => {
  it.each([
    ['dmz-redundnat', ['dmz-redundant']],
    ['home-ppoe', ['home-pppoe']],
    ['lartc', ['lartc-split']],
    ['shorewall-styl', ['shorewall-style']],
    ['atlantis', []],
    ['nowhere', []],
  ])('%s → %j', (name, expected) => {
    expect(suggestNames(name, KNOWN)).toEqual(expected);
  });

  it('names the closest sites, or lists the known ones', () => {
    expect(unknownSiteMessage('dmz-redundnat', KNOWN)).toBe(
      'site dmz-redundnat: not found; did you mean dmz-redundant?',
    );
    expect(unknownSiteMessage('atlantis', KNOWN, 'fleet')).toBe(
      `site atlantis: not found in fleet; known sites: ${KNOWN.join(', ')}`,
    );
    expect(unknownSiteMessage('branch-1', ['branch-2', 'branch-3', 'branch-10'])).toBe(
      'site branch-1: not found; did you mean one of branch-10, branch-2, branch-3?',
    );
  });
});
