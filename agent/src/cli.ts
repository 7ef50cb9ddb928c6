/**
 * `uplink-agent`: the agent's command line. One-shot commands (plan, apply, reconcile, show,
 * revert) over the linux dataplane; `daemon` and `rpc` are added beside them later.
 *
 * This file is the one place where errors become exit codes and messages:
 *   0 done / nothing to change      1 plan: changes pending      2 invalid input or usage
 *   3 conflict (nothing changed)    4 kernel refused a step      5 verify failed
 *   6 state directory problem       70 a bug (unexpected error)
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { describeNftRule, describeRoute, describeRule } from './core/describe-object.js';
import { formatChanges } from './core/format-changes.js';
import type { Dataplane } from './dataplane/dataplane.js';
import { LinuxDataplane } from './dataplane/linux.js';
import { plan } from './engine/plan.js';
import { reconcile, refuseUnsafe } from './engine/reconcile.js';
import { revert } from './engine/revert.js';
import { show } from './engine/show.js';
import { DEFAULT_STATE_DIR, StateStore } from './engine/state-store.js';
import { InvalidInputError, isAgentError, StateError } from './errors.js';
import { type DesiredState, desiredState } from './model/desired-state.js';

export const EXIT = {
  ok: 0,
  changesPending: 1,
  invalidInput: 2,
  conflict: 3,
  kernel: 4,
  verifyFailed: 5,
  state: 6,
  bug: 70,
} as const;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Which kernel to talk to; the real CLI always uses linux. */
  readonly dataplane: (options: { markMask?: number }) => Dataplane;
}

type Format = 'text' | 'json';

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('uplink-agent')
    .description('Uplink agent: reconciles this router’s multi-uplink routing to a desired state')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  const stateDir = () =>
    new Option('--state-dir <dir>', 'where snapshots and the applied state live').default(DEFAULT_STATE_DIR);
  const format = () =>
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

  program
    .command('plan')
    .description('show what apply would change; exit 0 when nothing, 1 when something')
    .requiredOption('--desired <file>', 'desired state (JSON)')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { desired: string; format: Format; stateDir: string }) => {
      const desired = await readDesired(opts.desired);
      const result = await plan(io.dataplane({ markMask: desired.settings.markMask }), desired, {}, opts);
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
      const desired = await readDesired(opts.desired);
      const report = await reconcile(
        io.dataplane({ markMask: desired.settings.markMask }),
        desired,
        {},
        opts,
      );
      printReport(io, opts.format, report);
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
        io.dataplane({ markMask: desired.settings.markMask }),
        desired,
        {},
        opts,
      );
      printReport(io, opts.format, report);
    });

  program
    .command('show')
    .description('show what Uplink owns in the kernel, and the facts it resolves against')
    .addOption(format())
    .addOption(stateDir())
    .action(async (opts: { format: Format; stateDir: string }) => {
      const applied = await new StateStore(opts.stateDir).readApplied();
      const result = await show(io.dataplane({ markMask: applied?.desired.settings.markMask }), opts);
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
                .join(', ')}${f.detectedGateway === undefined ? '' : ` gateway ${f.detectedGateway}`}`,
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
      const report = await revert(io.dataplane({ markMask: snapshot?.markMask }), opts);
      if (opts.format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else
        io.stdout(lines([`reverted to the state of ${report.restoredTo}`, ...formatChanges(report.changes)]));
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(io, error);
  }
}

function printReport(io: CliIo, format: Format, report: Awaited<ReturnType<typeof reconcile>>): void {
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

async function readDesired(file: string): Promise<DesiredState> {
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
  const parsed = desiredState.safeParse(json);
  if (!parsed.success) {
    throw new InvalidInputError(
      `${file}: not a valid desired state; nothing was changed`,
      parsed.error.issues.map(
        (issue) => `${issue.path.length === 0 ? '(top)' : issue.path.join('.')}: ${issue.message}`,
      ),
    );
  }
  return parsed.data;
}

/** The one place errors become messages and exit codes. */
function reportError(io: CliIo, error: unknown): number {
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
      break;
  }
  io.stderr(lines(out));
  return {
    'invalid-input': EXIT.invalidInput,
    conflict: EXIT.conflict,
    kernel: EXIT.kernel,
    'verify-failed': EXIT.verifyFailed,
    state: EXIT.state,
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
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    dataplane: (options) =>
      new LinuxDataplane(options.markMask === undefined ? {} : { markMask: options.markMask }),
  });
}
