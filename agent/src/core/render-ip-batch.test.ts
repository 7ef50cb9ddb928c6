import { describe, expect, it } from 'vitest';
import type { KernelRoute, KernelRule } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { type IpStep, RenderError, renderIpBatch, renderIpBatchLine } from './render-ip-batch.js';

const rule = (fields: Partial<KernelRule>): KernelRule => ({
  priority: 1000,
  action: 'lookup',
  table: 101,
  protocol: 252,
  ...fields,
});
const route = (fields: Partial<KernelRoute>): KernelRoute => ({
  table: 101,
  dst: '0.0.0.0/0',
  type: 'unicast',
  protocol: 252,
  ...fields,
});

describe('renderIpBatchLine', () => {
  it.each<[string, IpStep, string]>([
    ['plain lookup', { op: 'rule-add', rule: rule({}) }, 'rule add priority 1000 lookup 101 protocol 252'],
    [
      'every selector',
      {
        op: 'rule-add',
        rule: rule({
          from: '172.20.1.0/24',
          to: '192.0.2.128/25',
          iif: 'lan0',
          oif: 'isp1',
          fwmark: 0x100,
          fwmask: 0xff00,
          uidrange: { start: 108, end: 110 },
          ipproto: 'tcp',
          sport: { start: 1000, end: 2000 },
          dport: { start: 25, end: 25 },
          tos: 0x10,
        }),
      },
      'rule add priority 1000 from 172.20.1.0/24 to 192.0.2.128/25 iif lan0 oif isp1 fwmark 0x100/0xff00 uidrange 108-110 ipproto tcp sport 1000-2000 dport 25 tos 0x10 lookup 101 protocol 252',
    ],
    [
      'fwmark without mask',
      { op: 'rule-add', rule: rule({ fwmark: 5 }) },
      'rule add priority 1000 fwmark 0x5 lookup 101 protocol 252',
    ],
    [
      'suppress_prefixlength',
      { op: 'rule-add', rule: rule({ priority: 900, table: 254, suppressPrefixlength: 0 }) },
      'rule add priority 900 lookup 254 suppress_prefixlength 0 protocol 252',
    ],
    [
      'blackhole action',
      { op: 'rule-delete', rule: rule({ action: 'blackhole', table: undefined, from: '10.9.0.0/16' }) },
      'rule del priority 1000 from 10.9.0.0/16 blackhole protocol 252',
    ],
    [
      'gateway route with src',
      { op: 'route-replace', route: route({ gateway: '192.0.2.1', dev: 'isp2', src: '192.0.2.2' }) },
      'route replace 0.0.0.0/0 via 192.0.2.1 dev isp2 src 192.0.2.2 table 101 proto 252',
    ],
    [
      'dev route with scope and metric',
      { op: 'route-replace', route: route({ dst: '10.50.0.0/16', dev: 'ppp0', scope: 'link', metric: 100 }) },
      'route replace 10.50.0.0/16 dev ppp0 scope link metric 100 table 101 proto 252',
    ],
    [
      'multipath',
      {
        op: 'route-replace',
        route: route({
          table: 200,
          nexthops: [
            { gateway: '198.51.100.1', dev: 'isp1', weight: 8 },
            { dev: 'ppp0', weight: 2 },
          ],
        }),
      },
      'route replace 0.0.0.0/0 table 200 proto 252 nexthop via 198.51.100.1 dev isp1 weight 8 nexthop dev ppp0 weight 2',
    ],
    [
      'typed route delete',
      { op: 'route-delete', route: route({ type: 'unreachable', dst: '10.61.0.0/16' }) },
      'route del unreachable 10.61.0.0/16 table 101 proto 252',
    ],
  ])('%s', (_name, step, line) => {
    expect(renderIpBatchLine(step)).toBe(line);
  });
});

describe('renderIpBatch', () => {
  it('writes one line per step, in order, newline-terminated', () => {
    const steps: IpStep[] = [
      { op: 'route-replace', route: route({ gateway: '198.51.100.1', dev: 'isp1' }) },
      { op: 'rule-add', rule: rule({}) },
    ];
    expect(renderIpBatch(steps)).toBe(
      'route replace 0.0.0.0/0 via 198.51.100.1 dev isp1 table 101 proto 252\nrule add priority 1000 lookup 101 protocol 252\n',
    );
    expect(renderIpBatch([])).toBe('');
  });

  it.each<[string, Step, RegExp]>([
    [
      'an interface name with a space',
      { op: 'rule-add', rule: rule({ iif: 'eth0 table 5' }) },
      /interface name/,
    ],
    [
      'an interface name with a newline',
      { op: 'route-replace', route: route({ dev: 'eth0\nrule' }) },
      /interface name/,
    ],
    [
      'an address with extra text',
      { op: 'route-replace', route: route({ gateway: '192.0.2.1 dev x', dev: 'a' }) },
      /IPv4/,
    ],
    ['a non-canonical CIDR', { op: 'rule-add', rule: rule({ from: '10.1.2.3/8' }) }, /write 10.0.0.0\/8/],
    ['a fractional priority', { op: 'rule-add', rule: rule({ priority: 1.5 }) }, /priority/],
    ['a lookup without table', { op: 'rule-add', rule: rule({ table: undefined }) }, /needs a table/],
    ['a blackhole with a table', { op: 'rule-add', rule: rule({ action: 'blackhole' }) }, /has no table/],
    ['fwmask without fwmark', { op: 'rule-add', rule: rule({ fwmask: 0xff00 }) }, /fwmask without fwmark/],
    ['an unknown ipproto', { op: 'rule-add', rule: rule({ ipproto: 'gre' as 'tcp' }) }, /ipproto/],
    ['a reversed port range', { op: 'rule-add', rule: rule({ dport: { start: 80, end: 20 } }) }, /dport end/],
    ['a unicast route with nothing to send to', { op: 'route-replace', route: route({}) }, /needs a dev/],
    [
      'a blackhole route with a dev',
      { op: 'route-replace', route: route({ type: 'blackhole', dev: 'a' }) },
      /has no dev/,
    ],
    [
      'nexthops and a gateway',
      { op: 'route-replace', route: route({ gateway: '192.0.2.1', nexthops: [{ dev: 'a', weight: 1 }] }) },
      /not both/,
    ],
    [
      'a weight of 0',
      { op: 'route-replace', route: route({ nexthops: [{ dev: 'a', weight: 0 }] }) },
      /weight/,
    ],
    [
      'a step ip cannot run',
      { op: 'sysctl-set', key: 'net.ipv4.ip_forward', value: '1' },
      /not an ip -batch step/,
    ],
  ])('refuses %s', (_name, step, message) => {
    expect(() => renderIpBatch([step as IpStep])).toThrow(RenderError);
    expect(() => renderIpBatch([step as IpStep])).toThrow(message);
  });
});
