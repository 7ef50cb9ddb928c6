/**
 * `uplink` — the controller CLI. This file is the one place that maps errors to exit
 * codes: 0 ok, 1 the command's negative answer (invalid, changes, drift, failure, needs
 * attention), 2 usage or internal error.
 *
 * Every command that prints takes `-o FORMAT` (= `--format FORMAT`); `--repo`, `--identity`,
 * `--known-hosts`, the controller (`--config`/`--state-dir`) and the output format default
 * from the environment and ~/.config/uplink/config.yaml (config/cli-defaults.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { applyCommand } from './commands/apply-command.js';
import { compileCommand } from './commands/compile-command.js';
import { configCommand } from './commands/config-command.js';
import { resumeCommand, retryCommand, suspendCommand } from './commands/control-commands.js';
import { driftCommand } from './commands/drift-command.js';
import { explainCommand } from './commands/explain-command.js';
import { planCommand } from './commands/plan-command.js';
import { rolloutCommand } from './commands/rollout-command.js';
import { runCommand } from './commands/run-command.js';
import { statusCommand } from './commands/status-command.js';
import { validateCommand } from './commands/validate-command.js';
import { loadCliDefaults } from './config/cli-defaults.js';
import { ExitCode, UplinkError } from './errors.js';

export const VERSION = '0.1.0';

function buildProgram(): Command {
  const program = new Command('uplink')
    .description(
      'GitOps for fleets of multi-homed Linux gateways: validate, compile and roll out routing from git',
    )
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError();

  // Defaults (flag > environment > ~/.config/uplink/config.yaml > built-in): fill the options
  // the user did not give before the command runs.
  program.hook('preAction', async (_, action) => {
    const defaults = await loadCliDefaults();
    const given = (name: string) => {
      const source = action.getOptionValueSource(name);
      return source !== undefined && source !== 'default';
    };
    const has = (name: string) => action.options.some((o) => o.attributeName() === name);
    const fill = (name: string, value: string | undefined) => {
      if (value !== undefined && has(name) && !given(name))
        action.setOptionValueWithSource(name, value, 'env');
    };
    fill('repo', defaults.values.repo);
    fill('identity', defaults.values.identity);
    fill('knownHosts', defaults.values.knownHosts);
    const format = action.options.find((o) => o.attributeName() === 'format');
    const output = defaults.values.output;
    if (format && output && !given('format') && (format.argChoices ?? []).includes(output))
      action.setOptionValueWithSource('format', output, 'env');
  });

  program
    .command('validate')
    .description(
      'validate the fleet repository; exit 0 valid (warnings allowed), 1 invalid, 2 usage or internal error',
    )
    .option('--repo <dir>', 'fleet repository working directory', '.')
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(validateCommand);

  program
    .command('compile')
    .description("print one site's desired state as JSON or as a reviewable ip/nft script")
    .argument('<site>', 'site name')
    .option('--repo <dir>', 'fleet repository working directory', '.')
    .addOption(
      new Option('-o, --format <format>', 'output format').choices(['json', 'script']).default('json'),
    )
    .action(compileCommand);

  program
    .command('explain')
    .description(
      "where a packet would leave a site's router, offline from the spec: verdict and rule trace; exit 0 with an answer (a drop included), 1 the site is invalid, 2 usage",
    )
    .argument('<site>', 'site name')
    .option('--repo <dir>', 'fleet repository working directory', '.')
    .option('--rev <rev>', 'read the spec as committed at this revision (--repo must be a git repository)')
    .option('--dst <ip>', 'destination address, IPv4 or IPv6 (required)')
    .option('--src <ip>', 'source address (required with --iif)')
    .option(
      '--iif <interface>',
      "incoming interface of a forwarded packet; leave out for the router's own traffic",
    )
    .option('--proto <proto>', 'tcp, udp or icmp')
    .option('--dport <port>', 'destination port (tcp/udp)')
    .option('--sport <port>', 'source port (tcp/udp)')
    .option('--uid <uid>', "socket user id of the router's own traffic")
    .option('--mark <mark>', 'packet mark on arrival (or socket mark), hex or decimal')
    .option(
      '--down <provider...>',
      'take these providers as down (failed health probe); NAME:ipv6 only its IPv6 half',
    )
    .option(
      '--inbound',
      'the packet is the first of a connection arriving on --iif from --src: which interface and source its replies leave by',
    )
    .option(
      '--dnat-to <ip[:port]>',
      'with --inbound: the site firewall forwards the connection to this LAN host',
    )
    .option(
      '--facts <file>',
      "the router's facts (`uplink-agent show --facts`, or a file of the controller's state dir)",
    )
    .option('--state-dir <dir>', "the controller's state dir: the site's last reported facts")
    .option('--config <file>', 'controller config file (reads the facts in its state dir)')
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(explainCommand);

  program
    .command('apply')
    .description(
      'compile sites and apply them over SSH, commit-confirmed, from a clean work tree on the branch (or --break-glass); exit 1 if any site failed, was refused or reverted',
    )
    .argument('<site...>', 'site names')
    .option('--repo <dir>', 'fleet repository working directory', '.')
    .option('--rev <rev>', 'apply the spec as committed at this revision (--repo must be a git repository)')
    .option('--identity <file>', 'SSH private key (default $UPLINK_SSH_KEY or ~/.ssh/id_ed25519)')
    .option('--known-hosts <file>', 'pin host keys from this known_hosts file for sites without hostKey')
    .option(
      '--confirm-within <duration>',
      "revert unless confirmed within this long: 15s, 2m, … (a bare number is seconds; default: fleet.yaml's rollout.confirmWithin)",
    )
    .option('--concurrency <n>', 'sites at a time', '8')
    .option('--allow-management-change', 'apply even if the route back to the controller would change')
    .option(
      '--break-glass <reason>',
      'apply uncommitted work, or a commit not on the branch, recording who and why on the router (a manual override the controller reconciles back to git)',
    )
    .option(
      '--branch <branch>',
      "the branch git's truth lives on (default: $UPLINK_BRANCH, the defaults file, main)",
    )
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(applyCommand);

  program
    .command('plan')
    .description(
      'offline: what changes per site between two revisions of the fleet repository; exit 0 no change, 1 changes, 2 head invalid or usage error',
    )
    .option('--repo <dir>', 'fleet repository (a git clone)', '.')
    .requiredOption('--base <rev>', 'the revision to compare from (e.g. the target branch or merge base)')
    .option('--head <rev>', 'the revision to compare to', 'HEAD')
    .option(
      '--facts <site=file...>',
      "a site's router facts from a file (`uplink-agent show --facts`): traffic classes over them, and the management-path check",
    )
    .option('--state-dir <dir>', "the controller's state dir: every site's last reported facts")
    .option(
      '--controller-address <ip>',
      'the controller as the routers see it, for facts without a connection (`uplink-agent show --facts`)',
    )
    .option('--config <file>', 'controller config file (reads the facts in its state dir)')
    .addOption(
      new Option('-o, --format <format>', 'output format')
        .choices(['text', 'markdown', 'json'])
        .default('text'),
    )
    .action(planCommand);

  program
    .command('drift')
    .description(
      "ask each site's agent whether its kernel and applied generation match git; exit 0 no drift, 1 drift found, 2 some site unreachable or failed",
    )
    .option('--repo <dir>', 'fleet repository working directory', '.')
    .option('--sites <site...>', 'only these sites (default: every site)')
    .addOption(
      new Option('-o, --format <format>', 'report format')
        .choices(['text', 'json', 'junit', 'markdown'])
        .default('text'),
    )
    .option('--output <file>', 'write the report to FILE and a text summary to stdout')
    .option('--identity <file>', 'SSH private key (default $UPLINK_SSH_KEY or ~/.ssh/id_ed25519)')
    .option('--known-hosts <file>', 'pin host keys from this known_hosts file for sites without hostKey')
    .option('--concurrency <n>', 'sites at a time', '16')
    .action(driftCommand);

  program
    .command('run')
    .description(
      'the controller daemon: watch the fleet repository (poll + webhook), roll out in waves, poll status, serve /metrics, /healthz, /api/status and the status page',
    )
    .requiredOption('--config <file>', 'controller config file (YAML or JSON)')
    .action((opts: { config: string }) => runCommand(opts, VERSION));

  program
    .command('rollout')
    .description(
      'one rollout of a commit in waves, then exit; exit 0 done, 1 halted or the commit is invalid, 2 usage',
    )
    .option('--repo <dir>', 'a clone of the fleet repository, read in place (no fetch)')
    .option('--rev <rev>', 'commit, branch or tag to roll out (default: HEAD / the configured branch)')
    .option('--config <file>', 'controller config file: repository, SSH key, known_hosts, state dir')
    .option('--state-dir <dir>', 'persist the controller state here (resume an interrupted rollout)')
    .option('--identity <file>', 'SSH private key (default: config, $UPLINK_SSH_KEY or ~/.ssh/id_ed25519)')
    .option('--known-hosts <file>', 'pin host keys from this known_hosts file for sites without hostKey')
    .option(
      '--concurrency <n>',
      "status calls at a time (waves have their own concurrency; default: the config's concurrency, else 32)",
    )
    .option(
      '--allow-management-change',
      'apply even if the route back to the controller would change (commit-confirmed still reverts a cut)',
    )
    .option('--log', 'pino JSON logs on stderr')
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(rolloutCommand);

  program
    .command('status')
    .description(
      "the controller's view: target commit, what each router runs, rollout, per-site state; with SITE its detail and timeline. Exit 0 all in sync and healthy, 1 something needs attention (a fault on a router included), 2 usage or error",
    )
    .argument('[site]', 'one site: its conditions, providers, drift in full and timeline')
    .option('--config <file>', 'controller config file (reads its state dir)')
    .option('--state-dir <dir>', "the controller's state dir")
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'wide', 'json']))
    .option('-w, --watch', 'redraw every --interval until interrupted')
    .option('--interval <duration>', 'how often --watch redraws (default 2s)')
    .action(
      (
        site: string | undefined,
        opts: { config?: string; stateDir?: string; format?: string; watch?: boolean; interval?: string },
      ) => statusCommand(site, opts, VERSION),
    );

  program
    .command('suspend')
    .description(
      'pause rollouts and reconciliation (the fleet, or only the sites named): persisted, shown by status, the page and metrics; a running rollout stops at its next wave boundary',
    )
    .argument('[site...]', 'only these sites (default: the whole fleet)')
    .requiredOption('--reason <text>', 'why (shown everywhere with who and when)')
    .option('--config <file>', 'controller config file (its state dir)')
    .option('--state-dir <dir>', "the controller's state dir")
    .action(suspendCommand);

  program
    .command('resume')
    .description('lift `uplink suspend` (the fleet and every site, or only the sites named)')
    .argument('[site...]', 'only these sites')
    .option('--config <file>', 'controller config file (its state dir)')
    .option('--state-dir <dir>', "the controller's state dir")
    .action(resumeCommand);

  program
    .command('retry')
    .description('roll the commit in force out again (e.g. after a halt), without a new commit')
    .option('--config <file>', 'controller config file (its state dir)')
    .option('--state-dir <dir>', "the controller's state dir")
    .action(retryCommand);

  program
    .command('config')
    .description(
      'the defaults in force (flags > environment > ~/.config/uplink/config.yaml) and where each came from',
    )
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(configCommand);

  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0
        ? 0
        : 2;
    }
    if (e instanceof UplinkError) {
      process.stderr.write(`uplink: ${e.message}\n`);
      return e.kind === 'usage' || e.kind === 'internal' ? 2 : 1;
    }
    process.stderr.write(
      `uplink: this is a bug; please report it with the details below\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 2;
  }
}

process.exitCode = await main(process.argv);
