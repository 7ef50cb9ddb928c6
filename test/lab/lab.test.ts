import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildRouterTopology, Lab, requireRoot, useLab, withLab } from './index.js';

function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name !== '');
}

describe.skipIf(!requireRoot())('namespace lab', () => {
  const lab = useLab('labself');

  it('builds the router topology and carries real traffic through an ISP', async () => {
    const topo = await buildRouterTopology(lab.current, {
      isps: [{}, { pointToPoint: true }],
      mainDefaultVia: 1,
    });
    const [isp1, isp2] = topo.isps;
    expect(topo.isps.map((isp) => isp.routerAddress)).toEqual(['198.51.100.2', '100.64.2.2']);
    // The ISPs do not NAT: the router masquerades its LAN out of isp1.
    await lab.current.exec(topo.router, ['nft', '-f', '-'], {
      stdin: `table ip labnat {\n chain post {\n type nat hook postrouting priority srcnat;\n oifname "${isp1!.routerIf}" masquerade\n }\n}\n`,
    });
    await lab.current.exec(topo.lan!.ns, ['ping', '-c', '1', '-W', '5', topo.internetHosts[0]!]);
    await lab.current.exec(topo.router, ['ping', '-c', '1', '-W', '5', topo.internetHosts[0]!]);
    // The point-to-point uplink works too, when the router sends from its address.
    await lab.current.exec(topo.router, [
      'ping',
      '-c',
      '1',
      '-W',
      '5',
      '-I',
      isp2!.routerAddress,
      isp2!.gateway,
    ]);
  });

  it('cleans up exactly what it created, including started processes', async () => {
    const other = new Lab('other');
    const ns = await other.netns('a');
    const proc = other.start(ns, ['sleep', '300']);
    expect(netnsList()).toContain(ns);
    await other.cleanup();
    expect(netnsList()).not.toContain(ns);
    expect(await proc.exited).toBeNull();
    expect(proc.child.signalCode).toBe('SIGTERM');
    await other.cleanup();
  });

  it('withLab cleans up when the body throws', async () => {
    let created = '';
    await expect(
      withLab('throws', async (l) => {
        created = await l.netns('x');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(created).not.toBe('');
    expect(netnsList()).not.toContain(created);
  });

  it('rejects interface names longer than 15 bytes', async () => {
    const ns = await lab.current.netns('names');
    await expect(lab.current.veth({ ns, name: 'a'.repeat(16) }, { ns, name: 'b' })).rejects.toThrow(
      /interface name/,
    );
  });
});
