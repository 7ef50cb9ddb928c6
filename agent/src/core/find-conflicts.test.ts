import { describe, expect, it } from 'vitest';
import { exampleDesiredState } from '../../../test/support/example-desired-state.js';
import type { KernelState } from '../model/kernel-state.js';
import { findConflicts } from './find-conflicts.js';

const base: KernelState = {
  rules: [
    { priority: 0, action: 'lookup', table: 255, protocol: 2 },
    { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
  ],
  routes: [
    { table: 254, dst: '0.0.0.0/0', type: 'unicast', dev: 'eth1', gateway: '198.51.100.1', protocol: 3 },
  ],
  nft: null,
  sysctls: {},
};

describe('findConflicts', () => {
  const cases: { name: string; kernel: KernelState; adopt?: number[]; messages: string[] }[] = [
    { name: 'a plain router has none', kernel: base, messages: [] },
    {
      name: 'untagged route in a provider table',
      kernel: {
        ...base,
        routes: [
          ...base.routes,
          {
            table: 101,
            dst: '0.0.0.0/0',
            type: 'unicast',
            dev: 'eth1',
            gateway: '198.51.100.1',
            protocol: 4,
          },
        ],
      },
      messages: [
        'table 101 holds a route not written by Uplink: default via 198.51.100.1 dev eth1 proto 4; add 101 to adoptTables to take it over',
      ],
    },
    {
      name: 'untagged route in an adopted table is not a conflict',
      kernel: {
        ...base,
        routes: [
          {
            table: 101,
            dst: '0.0.0.0/0',
            type: 'unicast',
            dev: 'eth1',
            gateway: '198.51.100.1',
            protocol: 4,
          },
        ],
      },
      adopt: [101],
      messages: [],
    },
    {
      name: 'tagged route in a provider table is ours',
      kernel: {
        ...base,
        routes: [
          {
            table: 101,
            dst: '0.0.0.0/0',
            type: 'unicast',
            dev: 'eth1',
            gateway: '198.51.100.1',
            protocol: 252,
          },
        ],
      },
      messages: [],
    },
    {
      name: 'foreign rule at a priority Uplink uses',
      kernel: {
        ...base,
        rules: [
          ...base.rules,
          { priority: 2000, action: 'lookup', table: 50, from: '192.0.2.9/32', protocol: 4 },
        ],
      },
      messages: [
        "priority 2000 holds a rule not written by Uplink: from 192.0.2.9/32 lookup 50 proto 4; delete it or move Uplink's rule priorities away from 2000",
      ],
    },
    {
      name: 'foreign rule at another priority is fine',
      kernel: {
        ...base,
        rules: [...base.rules, { priority: 2500, action: 'lookup', table: 50, protocol: 4 }],
      },
      messages: [],
    },
  ];

  it.each(cases)('$name', ({ kernel, adopt, messages }) => {
    const desired = exampleDesiredState();
    if (adopt) desired.settings.adoptTables = adopt;
    expect(findConflicts(kernel, desired).map((c) => c.message)).toEqual(messages);
  });
});
