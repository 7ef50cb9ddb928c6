// Usage (as root, from the repository root; Debian's ansible installed): node scripts/build.mjs && npx esbuild bench/rollout-ns.ts --bundle --platform=node --format=esm --packages=external --outfile=dist/bench-rollout-ns.mjs && node dist/bench-rollout-ns.mjs [sites=20] [runs=3] [ansibleRuns=3] [--socat]
/**
 * Issue 4/8 "Benchmark", second part: SITES namespace routers with real OpenSSH sshd and the
 * installed agent daemon (test/lab/fleet-lab.ts), everything driven from the lab's controller
 * namespace, in one script:
 *   (a) floor: a bare `ssh root@host true` to every site in parallel (OpenSSH client, the
 *       benchmark's own unrestricted key);
 *   (b) `uplink rollout` of a change (isp1's balance weight in the dual-isp group: one route
 *       update per site), one wave of every site at concurrency SITES, no bake;
 *   (c) `uplink rollout` again with nothing changed;
 *   (d) Ansible (bench/ansible/uplink.yml, forks = SITES) setting the same sysctls, routes,
 *       rules and nft table: first run on clean routers, then a run with nothing to change.
 * Each measurement round starts with its own floor; ratios are taken within the round, then
 * the median. Connections per site are counted from each router's sshd log ("Accepted
 * publickey"), and what Ansible leaves in the kernel is compared with what Uplink's agent
 * applies for the same commit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { renderScript } from '../controller/src/compile/render-script.js';
import { readFleetFiles } from '../controller/src/repo/read-fleet-files.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { generateFleetFiles, writeFleetFiles } from '../test/fleet-sim/generate-fleet.js';
import { type FleetLab, type FleetLabSite, startFleetLab } from '../test/lab/fleet-lab.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const SITES = Number(positional[0] ?? 20);
const RUNS = Math.max(1, Number(positional[1] ?? 3));
/** 0 skips Ansible (and the comparison of the kernel objects). */
const ANSIBLE_RUNS = Math.max(0, Number(positional[2] ?? 3));
/** `--socat`: the agent installed with install.sh's sh + socat bridge instead of node. */
const RPC_BRIDGE = process.argv.includes('--socat') ? 'socat' : 'node';
const PROTOCOL = 252;

/** One wave of every site, all at once, no bake: the rollout's cost, not its pacing. */
const WAVES = `    - name: all
      percent: 100
      concurrency: ${SITES}
      maxFailures: 0
`;

const fleetFiles = (variant: number) =>
  generateFleetFiles({
    count: SITES,
    variant,
    canaries: 0,
    management: (_site, i) => ({ address: `192.0.2.${10 + i}`, port: 22 }),
    waves: WAVES,
  });

interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Load average (1 min) when the command ended. */
  readonly load: number;
}

/** Runs argv in `ns` and times it (wall, from spawn to exit). */
function timed(ns: string, argv: readonly string[], env: Record<string, string> = {}): Promise<Timed> {
  const started = performance.now();
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((done) =>
    child.once('exit', (code) =>
      done({ ms: performance.now() - started, code, stdout, stderr, load: loadavg()[0]! }),
    ),
  );
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function git(cwd: string, ...args: string[]): void {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

/** SSH connections each router's sshd has accepted so far. */
function acceptedConnections(lab: FleetLab): number {
  return lab.sites.reduce(
    (n, s) => n + (readFileSync(s.sshdLog, 'utf8').match(/Accepted publickey/g)?.length ?? 0),
    0,
  );
}

/** A site's desired state as Ansible host_vars: what `uplink compile --format script` would type. */
function hostVars(
  script: string,
  site: FleetLabSite,
  providers: readonly { name: string; interface: string }[],
  nftFile: string,
) {
  // The script reads a dynamic uplink's address when it runs; here the lab's address is known.
  const vars = new Map<string, string>();
  for (const p of providers) {
    const uplink = site.uplinks.find((u) => u.interface === p.interface);
    if (uplink) vars.set(`${p.name.toUpperCase().replaceAll('-', '_')}_ADDR`, uplink.address.split('/')[0]!);
  }
  const text = script
    .replace(/\\\n\s*/g, '')
    .replace(/"\$([A-Z0-9_]+)"/g, (whole, name: string) => vars.get(name) ?? whole);
  if (/"\$[A-Z0-9_]+"/.test(text)) throw new Error(`${site.name}: unresolved value in the script`);
  const lines = text.split('\n').map((l) => l.replace(/ {2}# .*$/, ''));
  const sysctls: Record<string, string> = {};
  for (const l of lines) {
    const m = /^sysctl -qw (\S+)=(\S+)$/.exec(l);
    if (m) sysctls[m[1]!] = m[2]!;
  }
  const routes = lines
    .filter((l) => l.startsWith('ip route replace '))
    .map((l) => {
      const route = l.slice('ip route replace '.length);
      return { table: Number(/ table (\d+)/.exec(route)![1]), route };
    });
  const rules = lines
    .filter((l) => l.startsWith('ip rule add '))
    .map((l) => l.slice('ip rule add '.length).replace(` protocol ${PROTOCOL}`, ''));
  const nft = /nft -f - <<'NFT'\n([\s\S]*?)\nNFT/.exec(script)?.[1];
  if (nft === undefined) throw new Error(`${site.name}: no nft table in the script`);
  return {
    uplink_protocol: PROTOCOL,
    uplink_sysctls: sysctls,
    uplink_routes: routes,
    uplink_rules: rules,
    uplink_nft: `${nft}\n`,
    uplink_nft_file: nftFile,
  };
}

/** What Uplink owns in a router's kernel, as text (to compare Ansible's result with the agent's). */
async function dumpOwned(lab: FleetLab, site: FleetLabSite): Promise<string> {
  const rules = await lab.run(site.ns, ['ip', 'rule', 'show', 'proto', String(PROTOCOL)]);
  const routes = await lab.run(site.ns, ['ip', 'route', 'show', 'table', 'all', 'proto', String(PROTOCOL)]);
  const nft = await lab.run(site.ns, ['nft', 'list', 'table', 'inet', 'uplink'], { allowFailure: true });
  return [rules.stdout, routes.stdout, nft.stdout].join('\n--\n');
}

/** Removes what Uplink owns (rules, routes, the nft table) and puts the sysctls back. */
async function flushOwned(lab: FleetLab, site: FleetLabSite, sysctls: Record<string, string>): Promise<void> {
  await lab.run(site.ns, ['ip', 'rule', 'flush', 'protocol', String(PROTOCOL)]);
  await lab.run(site.ns, ['ip', 'route', 'flush', 'table', 'all', 'proto', String(PROTOCOL)]);
  await lab.run(site.ns, ['nft', 'delete', 'table', 'inet', 'uplink'], { allowFailure: true });
  for (const [key, value] of Object.entries(sysctls))
    await lab.run(site.ns, ['sysctl', '-qw', `${key}=${value}`]);
}

/** Per host: changed count from Ansible's PLAY RECAP; throws on any failed or unreachable host. */
function recap(out: Timed, hosts: number): number[] {
  const rows = [
    ...out.stdout.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm),
  ];
  const bad = rows.filter((r) => r[4] !== '0' || r[5] !== '0');
  if (out.code !== 0 || rows.length !== hosts || bad.length > 0)
    throw new Error(
      `ansible-playbook exited ${out.code}, ${rows.length} hosts in the recap\n${out.stdout.slice(-3000)}\n${out.stderr.slice(-2000)}`,
    );
  return rows.map((r) => Number(r[3]));
}

interface Row {
  ms: number[];
  ratio: number[];
  connections: number[];
  load: number[];
}
const row = (): Row => ({ ms: [], ratio: [], connections: [], load: [] });

async function main(): Promise<void> {
  const top = mkdtempSync(join(tmpdir(), 'uplink-bench-ns-'));
  const source = join(top, 'source');
  await writeFleetFiles(source, fleetFiles(0));
  // The benchmark's own files live in the lab directory, which the lab's stop() removes.
  const labDir = join(top, 'lab');
  const benchDir = join(labDir, 'bench');
  mkdirSync(join(benchDir, 'host_vars'), { recursive: true });
  const key = join(benchDir, 'id_ed25519');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-ansible', '-f', key]);
  const authorizedKeys = join(benchDir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${key}.pub`));

  const started = performance.now();
  const lab = await startFleetLab({
    dir: labDir,
    repo: source,
    extraAuthorizedKeysFile: authorizedKeys,
    rpcBridge: RPC_BRIDGE,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  try {
    process.stdout.write(
      `lab of ${SITES} sites (rpc bridge: ${RPC_BRIDGE}) up in ${((performance.now() - started) / 1000).toFixed(1)} s (load ${loadavg()[0]!.toFixed(1)})\n`,
    );
    const ns = lab.controllerNs;
    const sites = lab.sites;
    const sshOptions = [
      '-F',
      '/dev/null',
      '-o',
      `UserKnownHostsFile=${lab.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
    ];

    // (a) the floor: every site at once, one `ssh true` each; a failed one prints its address.
    const floorScript = `for h in ${sites.map((s) => s.mgmtAddress).join(' ')}; do (ssh ${sshOptions.join(' ')} -i ${key} root@$h true || echo "failed $h") & done; wait`;
    const floor = async (): Promise<number> => {
      const r = await timed(ns, ['sh', '-c', floorScript]);
      if (r.code !== 0 || r.stdout.includes('failed')) throw new Error(`floor: ${r.stdout} ${r.stderr}`);
      return r.ms;
    };
    await floor(); // warm-up: page cache, sshd's first fork

    // Ansible's inventory, config and host_vars, from the commit the lab starts at.
    const fleet = loadFleet(await readFleetFiles(lab.repo.work));
    if (fleet.fleet === undefined) throw new Error('the lab fleet does not validate');
    const originalSysctls = new Map<string, Record<string, string>>();
    for (const site of fleet.fleet.sites) {
      const labSite = lab.site(site.name);
      const state = compileSite(site);
      const vars = hostVars(
        renderScript(state),
        labSite,
        state.providers,
        join(benchDir, 'nft', `${site.name}.nft`),
      );
      writeFileSync(join(benchDir, 'host_vars', `${site.name}.json`), JSON.stringify(vars, null, 2));
      const before: Record<string, string> = {};
      for (const k of Object.keys(vars.uplink_sysctls))
        before[k] = (await lab.run(labSite.ns, ['sysctl', '-n', k])).stdout.trim();
      originalSysctls.set(site.name, before);
    }
    mkdirSync(join(benchDir, 'nft'), { recursive: true });
    writeFileSync(
      join(benchDir, 'hosts.ini'),
      `[routers]\n${sites.map((s) => `${s.name} ansible_host=${s.mgmtAddress}`).join('\n')}\n\n[routers:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_private_key_file=${key}\n`,
    );
    writeFileSync(
      join(benchDir, 'ansible.cfg'),
      [
        '[defaults]',
        `forks = ${SITES}`,
        'host_key_checking = True',
        `local_tmp = ${join(benchDir, 'tmp-local')}`,
        `remote_tmp = ${join(benchDir, 'tmp-remote')}`,
        'retry_files_enabled = False',
        'interpreter_python = /usr/bin/python3',
        '[ssh_connection]',
        'pipelining = True',
        // Ansible's default ssh_args plus the lab's pinned host keys.
        `ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s ${sshOptions.join(' ')}`,
        '',
      ].join('\n'),
    );
    const playbook = resolve('bench/ansible/uplink.yml');
    let ansibleRun = 0;
    const ansible = async (): Promise<Timed & { changed: number[] }> => {
      // A control-socket directory per run: every run starts without a master connection.
      const cp = join(benchDir, `cp${++ansibleRun}`);
      mkdirSync(cp);
      const out = await timed(ns, ['ansible-playbook', '-i', join(benchDir, 'hosts.ini'), playbook], {
        ANSIBLE_CONFIG: join(benchDir, 'ansible.cfg'),
        ANSIBLE_HOME: join(benchDir, 'home'),
        ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
        ANSIBLE_NOCOLOR: '1',
      });
      // Close the persisted master connections (they would outlive the run by 60 s).
      await timed(ns, [
        'sh',
        '-c',
        `for s in ${cp}/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; true`,
      ]);
      return { ...out, changed: recap(out, SITES) };
    };

    const figures = {
      floor: [] as number[],
      ansibleFirst: row(),
      ansibleSame: row(),
      uplinkFirst: row(),
      change: row(),
      same: row(),
    };
    const record = (r: Row, t: Timed, floorMs: number, connectionsBefore: number) => {
      r.ms.push(t.ms);
      r.ratio.push(t.ms / floorMs);
      r.connections.push((acceptedConnections(lab) - connectionsBefore) / SITES);
      r.load.push(t.load);
    };
    const say = (label: string, t: Timed, floorMs: number) =>
      process.stdout.write(
        `${label}: ${(t.ms / 1000).toFixed(2)} s = ${(t.ms / floorMs).toFixed(2)}× floor ${(floorMs / 1000).toFixed(2)} s (load ${t.load.toFixed(1)})\n`,
      );

    // (d) Ansible: first run on clean routers, then nothing to change; cleaned between rounds.
    let ansibleDump = new Map<string, string>();
    for (let run = 1; run <= ANSIBLE_RUNS; run++) {
      for (const s of sites) await flushOwned(lab, s, originalSysctls.get(s.name)!);
      const f = await floor();
      figures.floor.push(f);
      let c = acceptedConnections(lab);
      const first = await ansible();
      if (first.changed.some((n) => n === 0)) throw new Error(`ansible first run: a host changed nothing`);
      record(figures.ansibleFirst, first, f, c);
      say(`ansible run ${run}, first (changed per host ${median(first.changed)})`, first, f);
      c = acceptedConnections(lab);
      const same = await ansible();
      if (same.changed.some((n) => n !== 0))
        throw new Error(`ansible no-change run: changed ${same.changed}`);
      record(figures.ansibleSame, same, f, c);
      say(`ansible run ${run}, nothing to change`, same, f);
    }
    if (ANSIBLE_RUNS > 0) {
      ansibleDump = new Map(
        await Promise.all(sites.map(async (s) => [s.name, await dumpOwned(lab, s)] as const)),
      );
      for (const s of sites) await flushOwned(lab, s, originalSysctls.get(s.name)!);
    }

    const uplink = () =>
      timed(ns, [
        process.execPath,
        resolve('dist/uplink.mjs'),
        'rollout',
        '--repo',
        lab.repo.work,
        '--identity',
        lab.controllerKey,
        '--known-hosts',
        lab.knownHosts,
        '--concurrency',
        String(SITES),
        '--format',
        'json',
      ]);
    const checkRollout = (t: Timed, expectConfirmed: number) => {
      const doc = JSON.parse(t.stdout) as {
        phase: string;
        perSite: { status: string }[];
        plan: { unchanged: unknown[] };
      };
      const confirmed = doc.perSite.filter((p) => p.status === 'confirmed').length;
      if (
        t.code !== 0 ||
        doc.phase !== 'done' ||
        confirmed !== expectConfirmed ||
        doc.plan.unchanged.length !== SITES - expectConfirmed
      )
        throw new Error(
          `uplink rollout: exit ${t.code}, ${doc.phase}, ${confirmed} confirmed\n${t.stderr.slice(-3000)}`,
        );
    };

    // Uplink's first rollout of the same commit to the clean routers (Ansible's first run's peer).
    {
      const f = await floor();
      figures.floor.push(f);
      const c = acceptedConnections(lab);
      const first = await uplink();
      checkRollout(first, SITES);
      record(figures.uplinkFirst, first, f, c);
      say('uplink rollout, first (clean routers)', first, f);
    }
    // Compared as sorted lines too, so an order difference within a chain is told apart from
    // different objects (the review script renders the agent's order; nft keeps it).
    const sorted = (text: string) => text.split('\n').sort().join('\n');
    const differs: string[] = [];
    const reordered: string[] = [];
    for (const s of ANSIBLE_RUNS > 0 ? sites : []) {
      const uplinkDump = await dumpOwned(lab, s);
      if (sorted(uplinkDump) !== sorted(ansibleDump.get(s.name)!)) differs.push(s.name);
      else if (uplinkDump !== ansibleDump.get(s.name)) reordered.push(s.name);
    }
    if (ANSIBLE_RUNS > 0)
      process.stdout.write(
        differs.length === 0
          ? `kernel objects after Ansible and after Uplink's agent: the same on all ${SITES} sites (${reordered.length} with nft rules in another order within a chain)\n`
          : `kernel objects differ on ${differs.join(', ')}:\n--- ansible\n${ansibleDump.get(differs[0]!)}\n--- uplink\n${await dumpOwned(lab, lab.site(differs[0]!))}\n`,
      );
    if (differs.length > 0) throw new Error('Ansible and Uplink set different kernel objects');

    // (b) and (c): a change, then the same commit again; each round with its own floor.
    for (let run = 1; run <= RUNS; run++) {
      const f = await floor();
      figures.floor.push(f);
      // Only the group changes (the lab's copy pins each router's host key in its site file).
      const group = 'groups/dual-isp.yaml';
      await writeFleetFiles(lab.repo.work, new Map([[group, fleetFiles(run).get(group)!]]));
      git(lab.repo.work, 'commit', '-q', '-am', `isp1 weight ${1 + run}`);
      let c = acceptedConnections(lab);
      const change = await uplink();
      checkRollout(change, SITES);
      record(figures.change, change, f, c);
      say(`uplink rollout run ${run}, one change`, change, f);
      c = acceptedConnections(lab);
      const same = await uplink();
      checkRollout(same, 0);
      record(figures.same, same, f, c);
      say(`uplink rollout run ${run}, nothing changed`, same, f);
    }

    const line = (label: string, r: Row) =>
      `${label} | ${(median(r.ms) / 1000).toFixed(2)} s (${(Math.min(...r.ms) / 1000).toFixed(2)}–${(Math.max(...r.ms) / 1000).toFixed(2)}) | ${median(r.ratio).toFixed(2)}× | ${median(r.connections).toFixed(1)} | ${r.ms.length} | ${Math.min(...r.load).toFixed(1)}–${Math.max(...r.load).toFixed(1)}`;
    process.stdout.write(
      [
        '',
        `${SITES} sites; median (min–max) | ratio to the round's floor (median) | ssh connections per site | runs | load average`,
        `(a) floor: parallel ssh true | ${(median(figures.floor) / 1000).toFixed(2)} s (${(Math.min(...figures.floor) / 1000).toFixed(2)}–${(Math.max(...figures.floor) / 1000).toFixed(2)}) | 1× | 1 | ${figures.floor.length}`,
        line('(b) uplink rollout, one change', figures.change),
        line('(c) uplink rollout, nothing changed', figures.same),
        line('uplink rollout, first (clean routers)', figures.uplinkFirst),
        ...(ANSIBLE_RUNS === 0
          ? []
          : [
              line('(d) ansible-playbook, first run', figures.ansibleFirst),
              line('(d) ansible-playbook, nothing to change', figures.ansibleSame),
              `Ansible first run / uplink change: ${(median(figures.ansibleFirst.ms) / median(figures.change.ms)).toFixed(1)}×; Ansible no-change / uplink no-change: ${(median(figures.ansibleSame.ms) / median(figures.same.ms)).toFixed(1)}×`,
            ]),
        '',
      ].join('\n'),
    );
  } finally {
    await lab.stop();
    spawnSync('rm', ['-rf', top]);
  }
}

await main();
