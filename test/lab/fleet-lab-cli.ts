/**
 * `uplink-lab` (dist/uplink-lab.mjs) — the fleet lab as a command, for `make demo` and for
 * trying things by hand (root required). See fleet-lab.ts for what a lab is.
 *
 *   uplink-lab up [--dir DIR] [--repo DIR] [--sites a,b] [--name-prefix P] [--fleet-yaml FILE]
 *   uplink-lab status [--dir DIR] [--format text|json]
 *   uplink-lab spawn --name NAME [--ns NS] --log FILE [--dir DIR] -- ARGV…
 *   uplink-lab down [--dir DIR]
 *
 * `up` on a directory that holds a lab tears that one down first, so `up` twice works.
 * Exit codes: 0 ok, 1 something could not be created or removed, 2 usage.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import {
  type FleetLabInfo,
  readFleetLab,
  spawnInFleetLab,
  startFleetLab,
  stopFleetLab,
} from './fleet-lab.js';
import { isRecordedProcessAlive } from './fleet-lab-record.js';

const DEFAULT_DIR = '/tmp/uplink-lab';

function program(): Command {
  const cli = new Command('uplink-lab')
    .description('a fleet of lab routers in network namespaces (real sshd, installed agents)')
    .exitOverride()
    .showHelpAfterError();

  cli
    .command('up')
    .description('build the lab; a lab already in --dir is torn down first')
    .option('--dir <dir>', 'lab directory (state, keys, logs, fleet repository)', DEFAULT_DIR)
    .option('--repo <dir>', 'source fleet repository', 'fleet-repo-example')
    .option('--sites <names>', 'comma-separated sites (default: all)')
    .option('--name-prefix <prefix>', 'fixed names: namespaces <prefix>-<site>-router …')
    .option('--fleet-yaml <file>', "replace the copy's fleet.yaml")
    .action(async (o: UpOptions) => {
      const problems = await stopFleetLab(o.dir);
      if (problems.length > 0) throw new Error(`could not remove the previous lab: ${problems.join('; ')}`);
      const lab = await startFleetLab({
        dir: o.dir,
        repo: o.repo,
        ...(o.sites === undefined ? {} : { sites: o.sites.split(',').filter((s) => s !== '') }),
        ...(o.namePrefix === undefined ? {} : { namePrefix: o.namePrefix }),
        ...(o.fleetYaml === undefined ? {} : { fleetYaml: readFileSync(o.fleetYaml, 'utf8') }),
        log: (line) => process.stdout.write(`lab: ${line}\n`),
      });
      lab.release();
      process.stdout.write(describe(lab));
    });

  cli
    .command('status')
    .description('what the lab in --dir holds; exit 1 when a recorded process is not running')
    .option('--dir <dir>', 'lab directory', DEFAULT_DIR)
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((o: { dir: string; format: 'text' | 'json' }) => {
      const found = readFleetLab(o.dir);
      if (found === undefined) {
        process.stdout.write(o.format === 'json' ? 'null\n' : `no lab in ${o.dir}\n`);
        process.exitCode = 1;
        return;
      }
      const processes = found.record.processes.map((p) => ({ ...p, running: isRecordedProcessAlive(p) }));
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify({ ...found.record, processes }, null, 2)}\n`);
      } else {
        if (found.info !== undefined) process.stdout.write(describe(found.info));
        for (const p of processes)
          process.stdout.write(`${p.running ? 'running' : 'stopped'}  ${p.name} (pid ${p.pid})\n`);
      }
      if (processes.some((p) => !p.running)) process.exitCode = 1;
    });

  cli
    .command('spawn')
    .description('start a detached process in the lab (killed by `down`), e.g. the controller')
    .requiredOption('--name <name>', 'what it is (one running process per name)')
    .option('--ns <ns>', 'namespace to run it in (default: the host)')
    .requiredOption('--log <file>', 'where its stdout and stderr go')
    .option('--dir <dir>', 'lab directory', DEFAULT_DIR)
    .argument('<argv...>', 'the command (after --)')
    .action((argv: string[], o: { name: string; ns?: string; log: string; dir: string }) => {
      const proc = spawnInFleetLab(o.dir, o.name, o.ns ?? null, argv, o.log);
      process.stdout.write(`${proc.name}: pid ${proc.pid}, log ${proc.log}\n`);
    });

  cli
    .command('down')
    .description('remove every namespace, link, process and file of the lab in --dir')
    .option('--dir <dir>', 'lab directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      const problems = await stopFleetLab(o.dir);
      if (problems.length > 0) throw new Error(`left behind: ${problems.join('; ')}`);
      process.stdout.write(`lab in ${o.dir} removed\n`);
    });
  return cli;
}

interface UpOptions {
  dir: string;
  repo: string;
  sites?: string;
  namePrefix?: string;
  fleetYaml?: string;
}

function describe(lab: FleetLabInfo): string {
  const lines = [
    `lab ${lab.dir}: controller ${lab.controllerAddress} in namespace ${lab.controllerNs}`,
    `  fleet repository ${lab.repo.bare} (clone: ${lab.repo.work})`,
    `  controller key ${lab.controllerKey}, known hosts ${lab.knownHosts}`,
  ];
  for (const s of lab.sites) {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    lines.push(
      `  ${s.name.padEnd(16)} ${s.mgmtAddress.padEnd(12)} ns ${s.ns}  uplinks ${s.uplinks.map((u) => u.interface).join(',')}  ${labels}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

try {
  await program().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`uplink-lab: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
