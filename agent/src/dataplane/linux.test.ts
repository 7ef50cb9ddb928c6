import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LinuxDataplane, readSysctlFiles, StepFailedError } from './linux.js';

describe('LinuxDataplane sysctls on the host (sysctlRoot)', () => {
  let root = '';
  afterEach(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  async function fakeProcSys(): Promise<string> {
    root = await mkdtemp(join(tmpdir(), 'uplink-sysctl-'));
    await mkdir(join(root, 'net/ipv4/conf/eth0.100'), { recursive: true });
    await writeFile(join(root, 'net/ipv4/ip_forward'), '0\n');
    await writeFile(join(root, 'net/ipv4/conf/eth0.100/rp_filter'), '1\n');
    return root;
  }

  it('writes with no process and reads back, leaving out missing keys', async () => {
    const sysctlRoot = await fakeProcSys();
    const dataplane = new LinuxDataplane({ sysctlRoot });
    await dataplane.apply([
      { op: 'sysctl-set', key: 'net.ipv4.ip_forward', value: '1' },
      { op: 'sysctl-set', key: 'net.ipv4.conf.eth0.100.rp_filter', value: '2' },
    ]);
    expect(dataplane.commandCount).toBe(0);
    expect(await readFile(join(sysctlRoot, 'net/ipv4/conf/eth0.100/rp_filter'), 'utf8')).toBe('2\n');
    expect(
      await readSysctlFiles(sysctlRoot, [
        'net.ipv4.ip_forward',
        'net.ipv4.conf.eth0.100.rp_filter',
        'net.ipv4.conf.gone.rp_filter',
      ]),
    ).toEqual({ 'net.ipv4.conf.eth0.100.rp_filter': '2', 'net.ipv4.ip_forward': '1' });
  });

  it('names the failing step when a key does not exist', async () => {
    const sysctlRoot = await fakeProcSys();
    const dataplane = new LinuxDataplane({ sysctlRoot });
    const failure = await dataplane
      .apply([
        { op: 'sysctl-set', key: 'net.ipv4.ip_forward', value: '1' },
        { op: 'sysctl-set', key: 'net.ipv4.conf.gone.rp_filter', value: '2' },
      ])
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StepFailedError);
    expect((failure as StepFailedError).stepIndex).toBe(1);
    expect((failure as StepFailedError).message).toMatch(
      /^sysctl net\.ipv4\.conf\.gone\.rp_filter=2 \(step 1\) failed/,
    );
  });

  it.each([
    ['a key outside net.ipv4', 'kernel.panic', '1'],
    ['a path with slashes', 'net.ipv4.conf.../../../etc.x', '1'],
    ['a ".." interface part', 'net.ipv4.conf....rp_filter', '1'],
    ['an empty part', 'net.ipv4..ip_forward', '1'],
    ['a non-numeric value', 'net.ipv4.ip_forward', '1\n2'],
  ])('refuses %s before touching anything', async (_name, key, value) => {
    const sysctlRoot = await fakeProcSys();
    const dataplane = new LinuxDataplane({ sysctlRoot });
    await expect(dataplane.apply([{ op: 'sysctl-set', key, value }])).rejects.toThrow(/refused/);
    expect(await readFile(join(sysctlRoot, 'net/ipv4/ip_forward'), 'utf8')).toBe('0\n');
  });

  it('refuses an unsafe namespace name', () => {
    expect(() => new LinuxDataplane({ netns: 'a b' })).toThrow(/not a safe namespace name/);
  });
});
