import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exampleDesiredState, exampleFacts } from '../../../test/support/example-desired-state.js';
import { StateDirError, ToolMissingError } from '../errors.js';
import { AgentFaults } from './agent-faults.js';

let dir: string;
let bin: string;
let logs: string[];
let probe: () => Promise<void>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uplink-faults-'));
  bin = join(dir, 'bin');
  await writeFile(join(dir, '.keep'), '');
  await (await import('node:fs/promises')).mkdir(bin);
  logs = [];
  probe = async () => {};
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function faults(): AgentFaults {
  return new AgentFaults({
    stateDir: dir,
    now: () => 1_000,
    log: (line) => logs.push(line),
    path: bin,
    probeWrite: () => probe(),
  });
}

async function install(...tools: string[]): Promise<void> {
  for (const tool of tools) {
    await writeFile(join(bin, tool), '#!/bin/sh\n');
    await chmod(join(bin, tool), 0o755);
  }
}

describe('AgentFaults (D103)', () => {
  it('names each fault by kind and subject, and logs it once per change, not per sighting', () => {
    const f = faults();
    const full = new StateDirError('full', dir, 'writing applied.json', 'ENOSPC');
    for (let i = 0; i < 5; i++) f.noteError(full);
    expect(f.list()).toEqual([{ kind: 'state-dir-full', subject: dir, message: full.message, since: 1_000 }]);
    expect(logs).toEqual([`fault: ${full.message}`]);
    // The disk went read-only on top: one state-dir condition replaces the other.
    f.noteError(new StateDirError('read-only', dir, 'writing commit.json', 'EROFS'));
    expect(f.list().map((x) => x.kind)).toEqual(['state-dir-read-only']);
    // A write that works clears it, logged once.
    f.noteWrite({ ok: true, file: 'commit.json', bytes: 300 });
    f.noteWrite({ ok: true, file: 'commit.json', bytes: 300 });
    expect(f.list()).toEqual([]);
    expect(logs.filter((l) => l.startsWith('fault gone'))).toEqual([
      `fault gone: state-dir-read-only ${dir}`,
    ]);
  });

  it('a nearly full disk: a small write that works does not clear a full fault a larger write met', () => {
    const f = faults();
    f.noteWrite({
      ok: false,
      file: 'applied.json',
      bytes: 50_000,
      error: new StateDirError('full', dir, 'writing applied.json', 'ENOSPC'),
    });
    f.noteWrite({ ok: true, file: 'journal.jsonl', bytes: 200 });
    expect(f.list().map((x) => x.kind)).toEqual(['state-dir-full']);
    f.noteWrite({ ok: true, file: 'write-probe.json', bytes: 50_000 });
    expect(f.list()).toEqual([]);
    expect(logs.filter((l) => l.startsWith('fault:'))).toHaveLength(1);
  });

  it('finds missing tools on PATH and clears them when installed', async () => {
    const f = faults();
    await install('ip');
    await f.refresh(undefined, undefined);
    expect(f.list().map((x) => `${x.kind} ${x.subject}`)).toEqual(['tool-missing nft']);
    expect(f.list()[0]!.message).toBe(
      "nft is not installed or not executable on the agent's PATH: install the Debian package nftables",
    );
    await f.refresh(undefined, undefined);
    expect(logs.filter((l) => l.startsWith('fault:'))).toHaveLength(1);
    // The applied state probes with ping and flushes with conntrack: those are needed too.
    await install('nft');
    await f.refresh(exampleDesiredState(), exampleFacts());
    expect(
      f
        .list()
        .map((x) => x.subject)
        .sort(),
    ).toEqual(['conntrack', 'ping']);
    // A tool a spawn found missing (sysctl in netns mode) stays until it is there.
    f.noteError(new ToolMissingError('sysctl', 'spawn sysctl ENOENT'));
    await install('ping', 'conntrack');
    await f.refresh(exampleDesiredState(), exampleFacts());
    expect(f.list().map((x) => x.subject)).toEqual(['sysctl']);
    await install('sysctl');
    await f.refresh(exampleDesiredState(), exampleFacts());
    expect(f.list()).toEqual([]);
  });

  it('reports a provider interface that does not exist, and forgets it when it is back', async () => {
    await install('ip', 'nft', 'ping', 'conntrack');
    const f = faults();
    const facts = exampleFacts();
    const { eth2, ...rest } = facts.interfaces;
    await f.refresh(exampleDesiredState(), { interfaces: rest });
    expect(f.list()).toEqual([
      {
        kind: 'interface-missing',
        subject: 'eth2',
        message:
          'interface eth2 of provider isp3 does not exist: its routes and sysctls are not in the kernel until it returns',
        since: 1_000,
      },
    ]);
    await f.refresh(exampleDesiredState(), { interfaces: { ...rest, eth2: eth2! } });
    expect(f.list()).toEqual([]);
  });

  it('while a write fault stands, status probes with a real write, which clears or keeps it', async () => {
    await install('ip', 'nft');
    const f = faults();
    f.noteError(new StateDirError('unwritable', dir, 'fsync of applied.json', 'EIO'));
    let probes = 0;
    probe = async () => {
      probes++;
      f.noteWrite({
        ok: false,
        file: 'write-probe.json',
        bytes: 30,
        error: new StateDirError('unwritable', dir, 'writing write-probe.json', 'EIO'),
      });
    };
    await f.refresh(undefined, undefined);
    expect(probes).toBe(1);
    expect(f.list().map((x) => x.kind)).toEqual(['state-dir-unwritable']);
    probe = async () => {
      probes++;
      f.noteWrite({ ok: true, file: 'write-probe.json', bytes: 30 });
    };
    await f.refresh(undefined, undefined);
    expect(f.list()).toEqual([]);
    // No fault, no probe: a healthy directory costs no writes.
    await f.refresh(undefined, undefined);
    expect(probes).toBe(2);
  });
});
