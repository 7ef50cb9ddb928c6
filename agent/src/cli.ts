/**
 * `uplink-agent`: the agent's command line. One-shot commands (plan, apply, reconcile, show,
 * revert) over the linux dataplane, `daemon` (agent/src/daemon) and `rpc` (the SSH forced command).
 *
 * This file is the one place where errors become exit codes and messages:
 *   0 done / nothing to change      1 plan: changes pending      2 invalid input or usage
 *   3 conflict (nothing changed)    4 kernel refused a step      5 verify failed
 *   6 state directory problem       7 rpc: the daemon is not reachable
 *   8 a tool is not installed       9 an interface vanished during the apply
 *   70 a bug (unexpected error)
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Dataplane } from './dataplane/dataplane.js';
import type { reconcile as reconcileFn } from './engine/reconcile.js';
import type { DesiredState } from './model/desired-state.js';
import type { FactsRecord } from './model/router-facts.js';

// Only node builtins are imported statically. `uplink-agent rpc` runs on every SSH
// connection and must start fast, so everything heavy (commander, zod, the engine) is
// loaded with import() by the commands that need it; the bundle (scripts/build.mjs) keeps
// those modules in the same file but evaluates them only when imported.
const loadCommands = () =>
  Promise.all([
    import('commander'),
    import('./core/describe-object.js'),
    import('./core/format-changes.js'),
    import('./engine/plan.js'),
    import('./engine/reconcile.js'),
    import('./engine/revert.js'),
    import('./engine/show.js'),
    import('./engine/state-store.js'),
    import('./errors.js'),
    import('./model/desired-state.js'),
    import('./model/format-issues.js'),
    import('./faults/failpoints.js'),
    import('./dataplane/with-failpoints.js'),
    import('./model/router-facts.js'),
    import('./engine/delegated-store.js'),
    import('./core/delegated-facts.js'),
  ]);
type Commands = Awaited<ReturnType<typeof loadCommands>>;

export const EXIT = {
  ok: 0,
  changesPending: 1,
  invalidInput: 2,
  conflict: 3,
  kernel: 4,
  verifyFailed: 5,
  state: 6,
  /** rpc: the daemon is not running, or went away mid-session. */
  unavailable: 7,
  toolMissing: 8,
  interfaceMissing: 9,
  bug: 70,
} as const;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Which kernel to talk to; the real CLI always uses linux. */
  readonly dataplane: (options: { markMask?: number }) => Dataplane;
  /** Streams for `rpc` (default: the process's). */
  readonly stdio?: { readonly stdin: NodeJS.ReadableStream; readonly stdout: NodeJS.WritableStream };
  /** Environment for `rpc` and `daemon` (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

type Format = 'text' | 'json';

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const rpcSocket = argv[0] === 'rpc' ? parseRpcArgs(argv.slice(1)) : undefined;
  if (rpcSocket !== undefined) return runRpc(rpcSocket, io);
  let modules: Commands;
  try {
    modules = await loadCommands();
  } catch (error) {
    io.stderr(`uplink-agent: cannot load its modules — this is a bug\n${String(error)}\n`);
    return EXIT.bug;
  }
  const [
    { Command, InvalidArgumentError, Option },
    { describeNftRule, describeRoute, describeRule },
    { formatChanges },
    { plan },
    { reconcile, refuseUnsafe },
    { revert },
    { show },
    { DEFAULT_STATE_DIR, StateStore },
    { StateError },
    { interfaceName },
    ,
    { Failpoints, parseFailpoints },
    { withFailpoints },
    { routerFactsHash },
    { readDelegated, withDelegatedFacts, writeDelegated },
    { checkDelegatedPrefix, validUntil },
  ] = modules;
  // D102: failpoints for reproducing faults on a lab router; nothing is active without the variable.
  const env = io.env ?? process.env;
  let failpoints = Failpoints.none;
  const failpointText = env.UPLINK_AGENT_FAILPOINTS;
  if (failpointText !== undefined && failpointText.trim() !== '') {
    try {
      const log = (line: string) => io.stderr(`uplink-agent: ${line}\n`);
      failpoints = new Failpoints(parseFailpoints(failpointText), { log });
      log(
        `WARNING: failpoints active (UPLINK_AGENT_FAILPOINTS=${failpointText}): this agent fails on purpose`,
      );
    } catch (error) {
      io.stderr(`uplink-agent: UPLINK_AGENT_FAILPOINTS: ${(error as Error).message}\n`);
      return EXIT.invalidInput;
    }
  }
  // The facts carry the delegated prefixes the DHCPv6 client reported into this state dir (D155).
  const dataplaneFor = (options: { markMask?: number }, stateDir: string) =>
    withDelegatedFacts(withFailpoints(io.dataplane(options), failpoints), stateDir, Date.now);
  const engine = (opts: { stateDir: string }) => ({ stateDir: opts.stateDir, failpoints });
  let exitCode: number = EXIT.ok;
  const program = new Command('uplink-agent')
    .description('Uplink agent: reconciles this router’s multi-uplink routing to a desired state')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  const stateDir = () =>
    new Option('--state-dir <dir>', 'where snapshots and the applied state live').default(DEFAULT_STATE_DIR);
  const format = () =>
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');
  const parseSeconds = (value: string): number => {
    const seconds = Number(value);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600)
      throw new InvalidArgumentError('write a number of seconds between 0 and 3600, e.g. 10');
    return seconds;
  };

  program
    .command('plan')
    .description('show what apply would change; exit 0 when nothing, 1 when something')
    .requiredOption('--desired <file>', 'desired state (JSON)')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { desired: string; format: Format; stateDir: string }) => {
      const desired = await readDesired(opts.desired, modules);
      const result = await plan(
        dataplaneFor({ markMask: desired.settings.markMask }, opts.stateDir),
        desired,
        {},
        engine(opts),
      );
      if (opts.format === 'json') {
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        io.stdout(
          lines([
            ...result.problems.map((p) => `problem: ${p}`),
            ...result.conflicts.map((c) => `conflict: ${c.message}`),
            ...result.unavailable.map((u) => `unavailable: ${u.provider} (${u.reason})`),
            ...(result.changes.length === 0 ? ['no changes'] : formatChanges(result.changes)),
          ]),
        );
      }
      refuseUnsafe(result);
      exitCode = result.changes.length === 0 ? EXIT.ok : EXIT.changesPending;
    });

  program
    .command('apply')
    .description('apply a desired state: snapshot, apply, verify; roll back on any failure')
    .requiredOption('--desired <file>', 'desired state (JSON)')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { desired: string; format: Format; stateDir: string }) => {
      const desired = await readDesired(opts.desired, modules);
      const report = await reconcile(
        dataplaneFor({ markMask: desired.settings.markMask }, opts.stateDir),
        desired,
        {},
        engine(opts),
      );
      printReport(io, opts.format, report, formatChanges);
    });

  program
    .command('reconcile')
    .description('re-resolve the last applied desired state against current facts (e.g. after a PPP re-dial)')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { format: Format; stateDir: string }) => {
      const applied = await new StateStore(opts.stateDir).readApplied();
      if (applied === undefined) {
        throw new StateError(
          `nothing applied yet in ${opts.stateDir}: run \`uplink-agent apply --desired FILE\` first`,
        );
      }
      const { desired } = applied;
      const report = await reconcile(
        dataplaneFor({ markMask: desired.settings.markMask }, opts.stateDir),
        desired,
        {},
        engine(opts),
      );
      printReport(io, opts.format, report, formatChanges);
    });

  program
    .command('show')
    .description('show what Uplink owns in the kernel, and the facts it resolves against')
    .addOption(format())
    .addOption(stateDir())
    .option(
      '--facts',
      'print the router facts as a file for `uplink explain --facts FILE` (JSON): addresses, peers, link state, gateways, the routes and rules Uplink does not own',
    )
    .action(async (opts: { format: Format; stateDir: string; facts?: boolean }) => {
      const applied = await new StateStore(opts.stateDir).readApplied();
      const dataplane = dataplaneFor({ markMask: applied?.desired.settings.markMask }, opts.stateDir);
      // Every interface's rp_filter and src_valid_mark: list the interfaces first.
      const interfaces = opts.facts === true ? Object.keys((await dataplane.readFacts()).interfaces) : [];
      const result = await show(dataplane, engine(opts), interfaces);
      if (opts.facts === true) {
        const record: FactsRecord = {
          site: result.applied?.site ?? null,
          hash: routerFactsHash(result.routerFacts),
          readAt: Date.now(),
          facts: result.routerFacts,
        };
        io.stdout(`${JSON.stringify(record, null, 2)}\n`);
        return;
      }
      if (opts.format === 'json') {
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const { facts, owned } = result;
      io.stdout(
        lines([
          result.applied === null
            ? 'applied: nothing'
            : `applied: site ${result.applied.site} ${result.applied.hash.slice(0, 12)} at ${result.applied.appliedAt}`,
          `snapshot: ${result.snapshot === null ? 'none' : result.snapshot.createdAt}`,
          'interfaces:',
          ...Object.entries(facts.interfaces).map(
            ([name, f]) =>
              `  ${name} ${f.exists ? (f.up ? 'up' : 'down') : 'missing'} ${f.addresses
                .map((a) => `${a.address}/${a.prefixLength}${a.peer === undefined ? '' : ` peer ${a.peer}`}`)
                .join(', ')}${f.detectedGateway === undefined ? '' : ` gateway ${f.detectedGateway}`}${
                f.delegated6 === undefined ? '' : ` delegated ${f.delegated6.map((p) => p.prefix).join(', ')}`
              }`,
          ),
          'rules:',
          ...owned.rules.map((r) => `  ${describeRule(r)}`),
          'routes:',
          ...owned.routes.map((r) => `  table ${r.table} ${describeRoute(r)}`),
          `nft table inet uplink:${owned.nft === null ? ' absent' : ''}`,
          ...(owned.nft ?? []).map((r) => `  ${describeNftRule(r)}`),
          'sysctls:',
          ...Object.entries(owned.sysctls).map(([k, v]) => `  ${k} = ${v}`),
        ]),
      );
    });

  program
    .command('revert')
    .description('restore what Uplink owned before the last apply that changed something')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { format: Format; stateDir: string }) => {
      const snapshot = await new StateStore(opts.stateDir).readSnapshot();
      const report = await revert(
        dataplaneFor({ markMask: snapshot?.markMask }, opts.stateDir),
        engine(opts),
      );
      if (opts.format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else
        io.stdout(
          lines([
            report.complete
              ? `reverted to the state of ${report.restoredTo}`
              : `the revert to the state of ${report.restoredTo} is NOT complete`,
            ...formatChanges(report.changes),
            ...report.skipped.map((s) => `skipped (interface ${s.interface} is gone): ${s.object}`),
            ...report.failed.map((f) => `not restored: ${f.object}: ${f.error}`),
          ]),
        );
      if (report.recordError !== undefined) throw report.recordError;
      if (!report.complete) {
        io.stderr('uplink-agent: the revert is not complete; run `uplink-agent revert` again\n');
        exitCode = EXIT.kernel;
      }
    });

  program
    .command('delegated')
    .description(
      'record the prefix the ISP delegated over an interface (DHCPv6-PD), for the DHCPv6 client’s hook; without --prefix or --clear, print the prefixes recorded',
    )
    .option('--interface <name>', 'the uplink interface the DHCPv6 client runs on')
    .option(
      '--prefix <prefix>',
      'a delegated prefix (repeat for several); replaces what the interface had',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--valid-lifetime <seconds>', 'the prefix’s valid lifetime (DHCPv6: 4294967295 = infinite)')
    .option('--clear', 'the interface has no delegated prefix any more (released or expired)')
    .addOption(stateDir())
    .action(
      async (opts: {
        interface?: string;
        prefix?: string[];
        validLifetime?: string;
        clear?: boolean;
        stateDir: string;
      }) => {
        const usage = (message: string) => {
          io.stderr(`uplink-agent delegated: ${message}\n`);
          exitCode = EXIT.invalidInput;
        };
        if (opts.prefix === undefined && opts.clear !== true) {
          const { records } = await readDelegated(opts.stateDir);
          const now = Date.now();
          io.stdout(
            lines(
              records
                .filter((r) => opts.interface === undefined || r.interface === opts.interface)
                .flatMap((r) =>
                  r.prefixes
                    .filter((p) => p.validUntil === undefined || p.validUntil > now)
                    .map((p) =>
                      opts.interface === undefined
                        ? `${r.interface} ${p.prefix}${p.validUntil === undefined ? '' : ` valid until ${new Date(p.validUntil).toISOString()}`}`
                        : p.prefix,
                    ),
                ),
            ),
          );
          return;
        }
        if (opts.interface === undefined || !interfaceName.safeParse(opts.interface).success)
          return usage(
            `--interface ${opts.interface ?? '(missing)'}: write the uplink interface the DHCPv6 client runs on (e.g. --interface enp2s0)`,
          );
        if (opts.clear === true && opts.prefix !== undefined)
          return usage('--clear and --prefix: give one (--clear: the interface has no delegated prefix)');
        let lifetime: number | undefined;
        if (opts.validLifetime !== undefined) {
          lifetime = Number(opts.validLifetime);
          if (!/^\d{1,10}$/.test(opts.validLifetime) || lifetime > 0xffffffff)
            return usage(
              `--valid-lifetime ${opts.validLifetime}: write the lifetime in seconds (0–4294967295, e.g. $new_max_life)`,
            );
        }
        const now = Date.now();
        const prefixes: { prefix: string; validUntil?: number }[] = [];
        for (const text of opts.prefix ?? []) {
          const checked = checkDelegatedPrefix(text);
          if (!checked.ok) return usage(`--prefix ${checked.message}; nothing was recorded`);
          const until = validUntil(now, lifetime);
          if (!prefixes.some((p) => p.prefix === checked.prefix))
            prefixes.push({ prefix: checked.prefix, ...(until === undefined ? {} : { validUntil: until }) });
        }
        await writeDelegated(opts.stateDir, { interface: opts.interface, prefixes, reportedAt: now });
        io.stdout(
          prefixes.length === 0
            ? `${opts.interface}: no delegated prefix\n`
            : `${opts.interface}: delegated ${prefixes.map((p) => p.prefix).join(', ')}\n`,
        );
      },
    );

  program
    .command('daemon')
    .description(
      'run the agent: serve the RPC socket, apply with commit-confirmed, revert unconfirmed applies',
    )
    .addOption(stateDir())
    .option(
      '--socket <path>',
      'unix socket to listen on (default: $UPLINK_AGENT_SOCKET, else /run/uplink-agent/agent.sock)',
    )
    .option(
      '--on-transition <path>',
      'command run (no shell, no arguments) on every provider up/down transition',
    )
    .option('--hook-timeout <seconds>', 'kill the --on-transition command after this long', parseSeconds, 10)
    .option('--no-probes', 'do not probe uplink health: every provider counts as up')
    .action(
      async (opts: {
        stateDir: string;
        socket?: string;
        onTransition?: string;
        hookTimeout: number;
        probes: boolean;
      }) => {
        const [{ runDaemon }, socketPath, { HealthMonitor }] = await Promise.all([
          import('./daemon/run-daemon.js'),
          agentSocketPath(opts.socket, io.env ?? process.env),
          import('./health/health-monitor.js'),
        ]);
        const log = (line: string) => io.stderr(`uplink-agent: ${line}\n`);
        const health = opts.probes
          ? new HealthMonitor({
              readFacts: () => io.dataplane({}).readFacts(),
              log,
              onTransition: opts.onTransition,
              hookTimeoutMs: opts.hookTimeout * 1000,
            })
          : undefined;
        await runDaemon({
          stateDir: opts.stateDir,
          socketPath,
          dataplane: (markMask) => dataplaneFor(markMask === undefined ? {} : { markMask }, opts.stateDir),
          failpoints,
          stderr: io.stderr,
          ...(health === undefined ? {} : { health }),
        });
      },
    );

  program
    .command('rpc')
    .description('the SSH forced command: bridge stdin/stdout to the daemon (JSON lines)')
    .option(
      '--socket <path>',
      'daemon socket (default: $UPLINK_AGENT_SOCKET, else /run/uplink-agent/agent.sock)',
    )
    .action(async (opts: { socket?: string }) => {
      exitCode = await runRpc(opts, io);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(io, error, modules);
  }
}

/**
 * The daemon's socket, where `rpc` also looks for it (one rule, so they cannot disagree):
 * --socket, else $UPLINK_AGENT_SOCKET, else systemd's RuntimeDirectory path.
 */
export async function agentSocketPath(
  option: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const { DEFAULT_SOCKET_PATH, SOCKET_ENV } = await import('./daemon/wire-limits.js');
  return option ?? env[SOCKET_ENV] ?? DEFAULT_SOCKET_PATH;
}

/** `rpc [--socket P]`, parsed by hand so the bridge starts without loading commander; else undefined. */
function parseRpcArgs(args: readonly string[]): { socket?: string } | undefined {
  if (args.length === 0) return {};
  if (args.length === 1 && args[0]!.startsWith('--socket=') && args[0]!.length > 9) {
    return { socket: args[0]!.slice(9) };
  }
  if (args.length === 2 && args[0] === '--socket' && !args[1]!.startsWith('-')) return { socket: args[1]! };
  return undefined;
}

async function runRpc(args: { socket?: string }, io: CliIo): Promise<number> {
  const env = io.env ?? process.env;
  const [{ runRpcBridge }, socketPath] = await Promise.all([
    import('./daemon/rpc-bridge.js'),
    agentSocketPath(args.socket, env),
  ]);
  const outcome = await runRpcBridge(
    { socketPath },
    {
      stdin: io.stdio?.stdin ?? process.stdin,
      stdout: io.stdio?.stdout ?? process.stdout,
      stderr: io.stderr,
      env,
    },
  );
  return outcome === 'ok' ? EXIT.ok : EXIT.unavailable;
}

function printReport(
  io: CliIo,
  format: Format,
  report: Awaited<ReturnType<typeof reconcileFn>>,
  formatChanges: Commands[2]['formatChanges'],
): void {
  if (format === 'json') {
    io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  io.stdout(
    lines([
      ...report.unavailable.map((u) => `unavailable: ${u.provider} (${u.reason})`),
      ...(report.changes.length === 0 ? ['no changes'] : formatChanges(report.changes)),
      report.changes.length === 0 ? 'in sync' : `applied ${report.steps.length} step(s), verified`,
    ]),
  );
}

async function readDesired(file: string, modules: Commands): Promise<DesiredState> {
  const [, , , , , , , , { InvalidInputError }, { receivedDesiredState }, { formatIssues }] = modules;
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidInputError(`${file}: cannot read: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  // As from the wire: its hash must be its content's (D89).
  const parsed = receivedDesiredState.safeParse(json);
  if (!parsed.success) {
    throw new InvalidInputError(
      `${file}: not a valid desired state; nothing was changed`,
      formatIssues(parsed.error.issues, Number.POSITIVE_INFINITY),
    );
  }
  return parsed.data;
}

/** The one place errors become messages and exit codes. */
function reportError(io: CliIo, error: unknown, modules: Commands): number {
  const [{ CommanderError }, , { formatChanges }, , , , , , { isAgentError }] = modules;
  if (error instanceof CommanderError) {
    // Help and version exit 0; usage errors were already printed by commander.
    return error.exitCode === 0 ? EXIT.ok : EXIT.invalidInput;
  }
  if (!isAgentError(error)) {
    io.stderr(
      `uplink-agent: unexpected error — this is a bug, please report it with the details below\n${
        error instanceof Error ? (error.stack ?? error.message) : String(error)
      }\n`,
    );
    return EXIT.bug;
  }
  const out: string[] = [`uplink-agent: ${error.message}`];
  switch (error.kind) {
    case 'invalid-input':
      out.push(...error.problems.map((p) => `  ${p}`));
      break;
    case 'conflict':
      out.push(...error.conflicts.map((c) => `  ${c.message}`));
      break;
    case 'kernel':
      out.push(`  ${error.detail}`, `  ${revertMessage(error.revert, error.revertDetail)}`);
      break;
    case 'verify-failed':
      out.push(
        ...formatChanges(error.differences).map((l) => `  ${l}`),
        `  ${revertMessage(error.revert, error.revertDetail)}`,
      );
      break;
    case 'state':
    case 'state-dir':
    case 'tool-missing':
    case 'interface-missing':
      out.push(`  ${revertMessage(error.revert, error.revertDetail)}`);
      break;
  }
  io.stderr(lines(out));
  return {
    'invalid-input': EXIT.invalidInput,
    conflict: EXIT.conflict,
    kernel: EXIT.kernel,
    'verify-failed': EXIT.verifyFailed,
    state: EXIT.state,
    'state-dir': EXIT.state,
    'tool-missing': EXIT.toolMissing,
    'interface-missing': EXIT.interfaceMissing,
  }[error.kind];
}

function revertMessage(outcome: string, detail: string | undefined): string {
  switch (outcome) {
    case 'reverted':
      return 'the previous state was restored';
    case 'revert-failed':
      return `restoring the previous state FAILED (${detail ?? 'unknown'}); run \`uplink-agent revert\``;
    default:
      return 'nothing was changed';
  }
}

function lines(items: readonly string[]): string {
  return items.length === 0 ? '' : `${items.join('\n')}\n`;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const argv = process.argv.slice(2);
  const linux = argv[0] === 'rpc' ? undefined : await import('./dataplane/linux.js');
  process.exitCode = await runCli(argv, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    dataplane: (options) => {
      if (linux === undefined) throw new Error('uplink-agent rpc has no dataplane');
      return new linux.LinuxDataplane(options.markMask === undefined ? {} : { markMask: options.markMask });
    },
  });
}
