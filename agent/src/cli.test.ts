import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../test/support/example-desired-state.js';
import { EXIT, runCli } from './cli.js';
import { MemoryDataplane } from './dataplane/memory.js';
import { factsRecord, routerFactsHash } from './model/router-facts.js';

let dir: string;
let dataplane: MemoryDataplane;
let out: string;
let err: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-cli-'));
  dataplane = new MemoryDataplane({ facts: exampleFacts() });
  out = '';
  err = '';
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<number> {
  out = '';
  err = '';
  return runCli([...args, '--state-dir', join(dir, 'state')], {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    dataplane: () => dataplane,
  });
}

async function desiredFile(content: unknown): Promise<string> {
  const file = join(dir, 'desired.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('uplink-agent', () => {
  it('plan → 1, apply → 0, plan → 0, revert → 0 and back to empty', async () => {
    const file = await desiredFile(exampleDesiredState());
    expect(await run('plan', '--desired', file)).toBe(EXIT.changesPending);
    expect(out).toContain('+ rule priority 2001 from 203.0.113.5/32 lookup 102 proto 252');
    expect(dataplane.applyCalls).toBe(0);

    expect(await run('apply', '--desired', file)).toBe(EXIT.ok);
    expect(out).toContain('verified');
    expect(await run('plan', '--desired', file, '--format', 'json')).toBe(EXIT.ok);
    expect(JSON.parse(out).changes).toEqual([]);

    expect(await run('show', '--format', 'json')).toBe(EXIT.ok);
    expect(JSON.parse(out).owned.rules).toHaveLength(10);

    expect(await run('revert')).toBe(EXIT.ok);
    expect(dataplane.dump().rules).toEqual([]);
    expect(await run('revert')).toBe(EXIT.state);
    expect(err).toContain('nothing to revert');
  });

  it('show --facts prints the router facts: every address, the routes and rules Uplink does not own, the sysctls', async () => {
    const vpn = { table: 254, dst: '10.9.0.0/16', type: 'unicast', dev: 'tun0', protocol: 4 } as const;
    dataplane = new MemoryDataplane({
      facts: exampleFacts(),
      routes: [vpn],
      sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.ppp1.rp_filter': '2' },
    });
    await run('apply', '--desired', await desiredFile(exampleDesiredState()));
    expect(await run('show', '--facts')).toBe(EXIT.ok);
    const record = factsRecord.parse(JSON.parse(out));
    expect(record.site).toBe(exampleDesiredState().site);
    expect(record.hash).toBe(routerFactsHash(record.facts));
    expect(record.facts.interfaces).toEqual(exampleFacts().interfaces);
    // Uplink's own routes (protocol 252) are not facts; main's VPN route is.
    expect(record.facts.routes).toEqual([vpn]);
    expect(record.facts.rules).toEqual([]);
    // The kernel's values, whoever set them (eth1's rp_filter is the applied state's).
    expect(record.facts.sysctls).toEqual({
      'net.ipv4.conf.eth1.rp_filter': '2',
      'net.ipv4.conf.ppp1.rp_filter': '2',
      'net.ipv4.ip_forward': '1',
    });
  });

  it('reconcile re-resolves the applied desired state after a readdress', async () => {
    expect(await run('reconcile')).toBe(EXIT.state);
    expect(err).toContain('nothing applied yet');
    await run('apply', '--desired', await desiredFile(exampleDesiredState()));
    dataplane.setInterface('ppp1', {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.1' }],
    });
    expect(await run('reconcile')).toBe(EXIT.ok);
    expect(out).toContain('+ rule priority 2001 from 203.0.113.77/32 lookup 102 proto 252');
    expect(out).toContain('- rule priority 2001 from 203.0.113.5/32 lookup 102 proto 252');
  });

  it('invalid desired state → exit 2 naming the path, kernel untouched', async () => {
    const desired = exampleDesiredState() as unknown as { rules: { priority: number }[] };
    desired.rules[3]!.priority = 40000;
    expect(await run('apply', '--desired', await desiredFile(desired))).toBe(EXIT.invalidInput);
    expect(err).toContain('rules.3.priority');
    expect(dataplane.applyCalls).toBe(0);
    expect(await run('apply', '--desired', await desiredFile('{ nope'))).toBe(EXIT.invalidInput);
    expect(err).toContain('not valid JSON');
  });

  it('conflict → exit 3 with the message', async () => {
    dataplane.addRule({ priority: 2000, action: 'lookup', table: 50, protocol: 4 });
    expect(await run('apply', '--desired', await desiredFile(exampleDesiredState()))).toBe(EXIT.conflict);
    expect(err).toContain('priority 2000 holds a rule not written by Uplink');
    expect(dataplane.applyCalls).toBe(0);
  });

  it('kernel refusal → exit 4, reverted', async () => {
    dataplane.injectFault({ match: (step) => step.op === 'rule-add', effect: 'throw' });
    expect(await run('apply', '--desired', await desiredFile(exampleDesiredState()))).toBe(EXIT.kernel);
    expect(err).toContain('the previous state was restored');
    expect(dataplane.dump().rules).toEqual([]);
  });

  it('unexpected errors say this is a bug', async () => {
    const code = await runCli(['show', '--state-dir', join(dir, 'state')], {
      stdout: () => {},
      stderr: (t) => {
        err += t;
      },
      dataplane: () => {
        throw new TypeError('boom');
      },
    });
    expect(code).toBe(EXIT.bug);
    expect(err).toContain('this is a bug');
    expect(err).toContain('boom');
  });

  it('usage errors exit 2', async () => {
    expect(await run('apply')).toBe(EXIT.invalidInput);
    expect(err).toContain('--desired');
  });
});
