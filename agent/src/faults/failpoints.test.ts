import { describe, expect, it } from 'vitest';
import { Failpoints, fsError, parseFailpoints } from './failpoints.js';

const boom = () => new Error('boom');

describe('failpoints', () => {
  it('does nothing and costs nothing when none is configured', () => {
    expect(Failpoints.none.active).toBe(false);
    expect(Failpoints.none.hit('state.write:applied.json', boom)).toBeUndefined();
  });

  it('parses POINT[@N]=ACTION rules and fires exactly where they say', async () => {
    const failpoints = new Failpoints(
      parseFailpoints(
        'state.write:applied.json=ENOSPC; kernel.sysctl:*@2=tool-missing ;kernel.nft=kernel-error',
      ),
    );
    const made: string[] = [];
    const fail = (action: { kind: string; code?: string }) => {
      made.push(action.kind === 'errno' ? (action.code ?? '') : action.kind);
      return new Error(action.kind);
    };
    await expect(failpoints.hit('state.write:applied.json', fail)).rejects.toThrow('errno');
    expect(failpoints.hit('state.write:commit.json', fail)).toBeUndefined();
    expect(failpoints.hit('kernel.sysctl:net.ipv4.conf.eth1.rp_filter', fail)).toBeUndefined();
    await expect(failpoints.hit('kernel.sysctl:net.ipv4.conf.eth1.rp_filter', fail)).rejects.toThrow();
    // @2 counts per point: another key's first hit does not fire.
    expect(failpoints.hit('kernel.sysctl:net.ipv4.conf.eth2.rp_filter', fail)).toBeUndefined();
    await expect(failpoints.hit('kernel.nft', fail)).rejects.toThrow('kernel-error');
    expect(made).toEqual(['ENOSPC', 'tool-missing', 'kernel-error']);
    expect(failpoints.hits).toBe(6);
  });

  it('refuses rules it cannot read, naming them', () => {
    expect(() => parseFailpoints('state.write:applied.json')).toThrow(/write POINT=ACTION/);
    expect(() => parseFailpoints('kernel.nft=explode')).toThrow(/unknown action "explode"/);
  });

  it('pauses until a file exists, saying so', async () => {
    const logs: string[] = [];
    let present = false;
    const failpoints = new Failpoints(parseFailpoints('kernel.nft=pause:/run/go'), {
      log: (line) => logs.push(line),
      exists: async (path) => path === '/run/go' && present,
      pollMs: 5,
    });
    let resumed = false;
    const paused = failpoints.hit('kernel.nft', boom)!.then(() => {
      resumed = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(resumed).toBe(false);
    present = true;
    await paused;
    expect(logs).toEqual([
      'failpoint kernel.nft: paused until /run/go exists',
      'failpoint kernel.nft: resumed',
    ]);
  });

  it('fsError looks like the error node:fs raises', () => {
    const error = fsError('ENOSPC', 'write', '/var/lib/uplink-agent/applied.json.tmp-1');
    expect(error).toMatchObject({ code: 'ENOSPC', errno: -28, syscall: 'write' });
    expect(error.message).toMatch(/^ENOSPC: no space left on device, write/);
  });
});
