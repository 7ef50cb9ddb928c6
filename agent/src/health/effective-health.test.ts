import { describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import type { Facts, Health } from '../model/kernel-state.js';
import { effectiveHealth } from './effective-health.js';

function withoutInterface(name: string): Facts {
  const facts = exampleFacts();
  const interfaces = { ...facts.interfaces };
  delete interfaces[name];
  return { interfaces };
}

describe('effectiveHealth', () => {
  const cases: { name: string; facts: Facts; health: Health; effective: Health }[] = [
    { name: 'all up', facts: exampleFacts(), health: {}, effective: {} },
    {
      name: 'one down is routed around',
      facts: exampleFacts(),
      health: { isp1: 'up', isp2: 'down' },
      effective: { isp1: 'up', isp2: 'down' },
    },
    {
      name: 'every available provider down: the last resort keeps them all',
      facts: exampleFacts(),
      health: { isp1: 'down', isp2: 'down', isp3: 'down' },
      effective: { isp1: 'up', isp2: 'up', isp3: 'up' },
    },
    {
      name: 'last resort among the available ones; the unavailable one stays down',
      facts: withoutInterface('eth2'),
      health: { isp1: 'down', isp2: 'down', isp3: 'down' },
      effective: { isp1: 'up', isp2: 'up', isp3: 'down' },
    },
    {
      name: 'one available provider up: no last resort',
      facts: withoutInterface('eth2'),
      health: { isp1: 'down', isp2: 'up', isp3: 'down' },
      effective: { isp1: 'down', isp2: 'up', isp3: 'down' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(effectiveHealth(exampleDesiredState(), c.facts, c.health)).toEqual(c.effective);
    });
  }
});
