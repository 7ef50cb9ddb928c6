/**
 * The Linux dataplane: iproute2 JSON to read, `ip -batch` and one `nft -f` transaction to
 * write, sysctl for the few knobs Uplink sets. A thin shell around the pure parsers and
 * renderers in agent/src/core.
 *
 * Process count is constant in the number of rules. One `ip -batch` process prints several
 * JSON listings, so readKernel runs 3 commands (ip -4, ip -6, nft; +1 sysctl in netns mode — on
 * a router sysctls are read from /proc/sys files), readCurrent 3 as well (addresses and both
 * families' routes join one ip batch, IPv6 rules need `ip -6` of their own;
 * the detected gateways come from main's routes in the `table all` listing), readFacts 2, apply
 * one per contiguous group of steps of the same tool. A process costs ~2.5 ms here whatever it does,
 * so fewer processes, not cheaper ones, is what makes a reconcile fast.
 *
 * `ip -batch` stops at the first failing line and does not undo the lines before it; the
 * thrown `StepFailedError` says which step failed and how many were applied, and the engine
 * reverts by reconciling to its snapshot (a re-read, not this error, is the truth).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIpFacts, parseIpRoutes, parseIpRules } from '../core/parse-ip-json.js';
import { parseNftTable } from '../core/parse-nft-json.js';
import {
  type IpStep,
  ipStepFamily,
  isIpStep,
  renderIpBatch,
  renderIpBatchLine,
} from '../core/render-ip-batch.js';
import { NFT_TABLE_FAMILY, NFT_TABLE_NAME, renderNftTable } from '../core/render-nft.js';
import { ToolMissingError } from '../errors.js';
import type { Facts, KernelState } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { isSysctlKey, sysctlPath, sysctlToolKey } from '../model/sysctl-key.js';
import { type Dataplane, DataplaneError, type ReadRequest } from './dataplane.js';
import {
  type CommandResult,
  CommandRunner,
  formatCommand,
  missingToolInNetnsExec,
  type RunOptions,
} from './run-command.js';
import { splitJsonLines } from './split-json-lines.js';

export interface LinuxDataplaneOptions {
  /** Operate inside this network namespace (`ip -n`, `ip netns exec`); tests use it. */
  readonly netns?: string;
  /** Where sysctls live when not in a netns (default /proc/sys); tests may point it elsewhere. */
  readonly sysctlRoot?: string;
  /** Share a runner to count processes across dataplanes. */
  readonly runner?: CommandRunner;
  /** Mark mask used to recognise track rules when reading nft (default 0xff00). */
  readonly markMask?: number;
}

/** A step the kernel refused. Steps before `appliedSteps` were applied, the rest were not. */
export class StepFailedError extends DataplaneError {
  constructor(
    message: string,
    detail: string,
    /** Index into the `apply` steps of the step that failed; undefined when the tool did not say. */
    readonly stepIndex: number | undefined,
    /** Steps known to be applied (a prefix of the list). */
    readonly appliedSteps: number,
  ) {
    super(message, detail);
  }
}

/** A kernel object the parsers could not express in the model (foreign by construction). */
export interface SkippedObject {
  readonly source: 'rule' | 'route';
  readonly entry: unknown;
  readonly reason: string;
}

const SAFE_NETNS = /^[A-Za-z0-9_.-]{1,64}$/;
const SYSCTL_VALUE = /^-?[0-9]{1,10}$/;
const DEFAULT_MARK_MASK = 0xff00;

export class LinuxDataplane implements Dataplane {
  readonly #netns: string | undefined;
  readonly #sysctlRoot: string;
  readonly #runner: CommandRunner;
  #markMask: number;
  #skipped: SkippedObject[] = [];

  constructor(options: LinuxDataplaneOptions = {}) {
    if (options.netns !== undefined && !SAFE_NETNS.test(options.netns)) {
      throw new DataplaneError(`netns ${JSON.stringify(options.netns)}: not a safe namespace name`, '');
    }
    this.#netns = options.netns;
    this.#sysctlRoot = options.sysctlRoot ?? '/proc/sys';
    this.#runner = options.runner ?? new CommandRunner();
    this.#markMask = options.markMask ?? DEFAULT_MARK_MASK;
  }

  /** Processes started so far (for benchmarks and the "constant process count" tests). */
  get commandCount(): number {
    return this.#runner.count;
  }

  /** Kernel objects the last readKernel left out because the model cannot express them. */
  get skipped(): readonly SkippedObject[] {
    return this.#skipped;
  }

  async readFacts(): Promise<Facts> {
    const [addresses, main, main6] = await Promise.all([
      this.#mustRun(this.#ip('-j', 'addr', 'show')),
      this.#mustRun(this.#ip('-4', '-N', '-j', 'route', 'show', 'table', 'main')),
      this.#mustRun(this.#ip('-6', '-N', '-j', 'route', 'show', 'table', 'main')),
    ]);
    return parseIpFacts(addresses.stdout, main.stdout, main6.stdout);
  }

  async readKernel(request: ReadRequest): Promise<KernelState> {
    const [listings, listings6, nft, sysctls] = await Promise.all([
      this.#readRulesAndRoutes(),
      this.#readRulesAndRoutes6(),
      this.#readNft(),
      this.#readSysctls(request.sysctls),
    ]);
    return this.#kernelState(listings, listings6, nft, sysctls);
  }

  /**
   * readFacts + readKernel in two or three parallel processes instead of five: one `ip -batch`
   * lists addresses, rules and routes, beside nft (and sysctl in netns mode).
   */
  async readCurrent(request: ReadRequest): Promise<{ facts: Facts; kernel: KernelState }> {
    const [listings, rules6, nft, sysctls] = await Promise.all([
      this.#readAllListings(),
      this.#mustRun(this.#ip('-6', '-N', '-j', '-d', 'rule', 'show')),
      this.#readNft(),
      this.#readSysctls(request.sysctls),
    ]);
    // `table all` holds table main's routes (with `table: 254` under -d): the same entries
    // `ip -4 -N -j route show table main` lists, which is all parseIpFacts looks at.
    const facts = parseIpFacts(listings.addresses, listings.routes, listings.routes6);
    const listings6 = { rules: rules6.stdout, routes: listings.routes6 };
    return { facts, kernel: this.#kernelState(listings, listings6, nft, sysctls) };
  }

  #kernelState(
    listings: { rules: unknown; routes: unknown },
    listings6: { rules: unknown; routes: unknown },
    nft: KernelState['nft'],
    sysctls: Record<string, string>,
  ): KernelState {
    const skipped: SkippedObject[] = [];
    const onSkip = (source: SkippedObject['source']) => (entry: unknown, reason: string) =>
      skipped.push({ source, entry, reason });
    const state: KernelState = {
      rules: [
        ...parseIpRules(listings.rules, { onSkip: onSkip('rule') }),
        ...parseIpRules(listings6.rules, { onSkip: onSkip('rule'), family: 'inet6' }),
      ],
      routes: [
        ...parseIpRoutes(listings.routes, { onSkip: onSkip('route') }),
        ...parseIpRoutes(listings6.routes, { onSkip: onSkip('route'), family: 'inet6' }),
      ],
      nft,
      sysctls,
    };
    this.#skipped = skipped;
    return state;
  }

  /**
   * Addresses, rules and routes in one process. Batch flags are global, and addresses need
   * every family, so there is no `-4`: `rule show` lists IPv4 rules by default, and
   * `root 0.0.0.0/0` keeps `route show` to IPv4 (byte-identical to the `-4` listings). `-d`
   * and `-N` add fields to and number the scopes of `addr show`, which the facts ignore.
   */
  async #readAllListings(): Promise<{
    addresses: unknown;
    rules: unknown;
    routes: unknown;
    routes6: unknown;
  }> {
    const result = await this.#runner.run(this.#ip('-N', '-j', '-d', '-batch', '-'), {
      stdin: 'addr show\nrule show\nroute show table all root 0.0.0.0/0\nroute show table all root ::/0\n',
    });
    const listings = result.exitCode === 0 ? splitJsonLines(result.stdout, 4) : undefined;
    if (listings !== undefined)
      return { addresses: listings[0], rules: listings[1], routes: listings[2], routes6: listings[3] };
    // An iproute2 that refuses or prints this differently: the separate listings.
    const [addresses, rest, rest6] = await Promise.all([
      this.#mustRun(this.#ip('-j', 'addr', 'show')),
      this.#readRulesAndRoutes(),
      this.#readRulesAndRoutes6(),
    ]);
    return { addresses: addresses.stdout, ...rest, routes6: rest6.routes };
  }

  /** `ip -6 -N -j -d rule show` and `… route show table all` in one process (IPv6 is its own list). */
  async #readRulesAndRoutes6(): Promise<{ rules: unknown; routes: unknown }> {
    const result = await this.#mustRun(this.#ip('-6', '-N', '-j', '-d', '-batch', '-'), {
      stdin: 'rule show\nroute show table all\n',
    });
    const listings = splitJsonLines(result.stdout, 2);
    if (listings !== undefined) return { rules: listings[0], routes: listings[1] };
    const [rules, routes] = await Promise.all([
      this.#mustRun(this.#ip('-6', '-N', '-j', '-d', 'rule', 'show')),
      this.#mustRun(this.#ip('-6', '-N', '-j', '-d', 'route', 'show', 'table', 'all')),
    ]);
    return { rules: rules.stdout, routes: routes.stdout };
  }

  /**
   * `ip -4 -N -j -d rule show` and `… route show table all` in one process. The flags are
   * global in batch mode.
   */
  async #readRulesAndRoutes(): Promise<{ rules: unknown; routes: unknown }> {
    const result = await this.#mustRun(this.#ip('-4', '-N', '-j', '-d', '-batch', '-'), {
      stdin: 'rule show\nroute show table all\n',
    });
    const listings = splitJsonLines(result.stdout, 2);
    if (listings !== undefined) return { rules: listings[0], routes: listings[1] };
    // An iproute2 that prints batch JSON another way: one process per listing.
    const [rules, routes] = await Promise.all([
      this.#mustRun(this.#ip('-4', '-N', '-j', '-d', 'rule', 'show')),
      this.#mustRun(this.#ip('-4', '-N', '-j', '-d', 'route', 'show', 'table', 'all')),
    ]);
    return { rules: rules.stdout, routes: routes.stdout };
  }

  async apply(steps: readonly Step[]): Promise<void> {
    let index = 0;
    while (index < steps.length) {
      const step = steps[index]!;
      if (isIpStep(step)) {
        // One `ip -batch` per family of a run of ip steps: the family is a global flag (-4/-6),
        // and the two families are separate rule lists and FIBs, so a run's IPv4 steps can go
        // first and its IPv6 steps after, each in its own order (two processes, not one per
        // alternation).
        let end = index;
        while (end < steps.length && isIpStep(steps[end]!)) end++;
        const run = Array.from({ length: end - index }, (_, i) => index + i);
        const v4 = run.filter((i) => ipStepFamily(steps[i] as IpStep) === undefined);
        const v6 = run.filter((i) => ipStepFamily(steps[i] as IpStep) === 'inet6');
        if (v4.length > 0) await this.#applyIpBatch(steps, v4, v6[0]);
        if (v6.length > 0) await this.#applyIpBatch(steps, v6, undefined);
        index = end;
      } else if (step.op === 'nft-replace') {
        await this.#applyNft(step, index);
        // Remember the mask so the next read recognises what was just written.
        this.#markMask = step.markMask;
        index++;
      } else if (step.op === 'sysctl-set') {
        let end = index;
        while (end < steps.length && steps[end]!.op === 'sysctl-set') end++;
        await this.#applySysctls(steps.slice(index, end) as Extract<Step, { op: 'sysctl-set' }>[], index);
        index = end;
      } else {
        throw new StepFailedError(
          `step ${index}: unknown op ${JSON.stringify((step as { op: unknown }).op)}`,
          '',
          index,
          index,
        );
      }
    }
  }

  /**
   * One `ip -batch` of `steps[i]` for each i of `indices` (all one family). `firstUnrun`: the
   * lowest index of the run not yet applied, so a failure reports only a true prefix applied.
   */
  async #applyIpBatch(
    steps: readonly Step[],
    indices: readonly number[],
    firstUnrun: number | undefined,
  ): Promise<void> {
    const batch = indices.map((i) => steps[i] as IpStep);
    const offset = indices[0]!;
    const appliedBefore = (failed: number) => Math.min(failed, firstUnrun ?? failed);
    const text = renderIpBatch(batch);
    const argv = this.#ip(
      batch[0] !== undefined && ipStepFamily(batch[0]) === 'inet6' ? '-6' : '-4',
      '-batch',
      '-',
    );
    const result = await this.#runner.run(argv, { stdin: text });
    if (result.exitCode === 0) return;
    refuseMissingTool(result);
    // iproute2 reports "Command failed -:LINE" for kernel errors and stops there; syntax
    // errors exit at once with no line number (never expected: lines are rendered).
    const lineMatch = /Command failed -:(\d+)/.exec(result.stderr);
    const detail = `${formatCommand(argv)} exited ${result.exitCode ?? result.signal}\n${result.stderr}`;
    if (lineMatch === null) {
      throw new StepFailedError(
        `ip -batch: failed without naming a line (steps ${offset}..${indices.at(-1)} may be partly applied): ${firstLine(result.stderr)}`,
        `${detail}\n--- batch ---\n${text}`,
        undefined,
        appliedBefore(offset),
      );
    }
    const line = Number(lineMatch[1]);
    const failed = batch[line - 1];
    const stepIndex = indices[line - 1] ?? offset + line - 1;
    const lineText = failed === undefined ? '?' : renderIpBatchLine(failed);
    throw new StepFailedError(
      `ip -batch line ${line} (step ${stepIndex}) failed: ${firstLine(result.stderr)}: ${lineText}`,
      `${detail}\n--- line ${line} ---\n${lineText}`,
      stepIndex,
      appliedBefore(stepIndex),
    );
  }

  async #applyNft(step: Extract<Step, { op: 'nft-replace' }>, index: number): Promise<void> {
    const text = renderNftTable(step.rules, step.markMask);
    const argv = this.#nft('-f', '-');
    const result = await this.#runner.run(argv, { stdin: text });
    if (result.exitCode === 0) return;
    refuseMissingTool(result);
    throw new StepFailedError(
      `nft -f (step ${index}, table ${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}) failed, nothing applied: ${firstLine(result.stderr)}`,
      `${formatCommand(argv)} exited ${result.exitCode ?? result.signal}\n${result.stderr}\n--- transaction ---\n${text}`,
      index,
      index,
    );
  }

  async #applySysctls(batch: readonly Extract<Step, { op: 'sysctl-set' }>[], offset: number): Promise<void> {
    batch.forEach((step, i) => {
      if (!isSysctlKey(step.key) || !SYSCTL_VALUE.test(step.value)) {
        throw new StepFailedError(
          `sysctl ${step.key}=${step.value} (step ${offset + i}): refused, not a sysctl key Uplink manages with a numeric value`,
          '',
          offset + i,
          offset,
        );
      }
    });
    if (this.#netns === undefined) {
      for (const [i, step] of batch.entries()) {
        try {
          await writeFile(join(this.#sysctlRoot, sysctlPath(step.key)), `${step.value}\n`);
        } catch (error) {
          throw new StepFailedError(
            `sysctl ${step.key}=${step.value} (step ${offset + i}) failed: ${(error as Error).message}`,
            String(error),
            offset + i,
            offset + i,
          );
        }
      }
      return;
    }
    // One process for the whole group; sysctl(8) goes on after a failing key, so on failure
    // the keys it names failed and the others were written.
    const argv = this.#inNetns(
      'sysctl',
      '-q',
      '-w',
      ...batch.map((step) => `${sysctlToolKey(step.key)}=${step.value}`),
    );
    const result = await this.#runner.run(argv);
    if (result.exitCode === 0) return;
    refuseMissingTool(result);
    const failed = batch.findIndex((step) => result.stderr.includes(sysctlPath(step.key)));
    throw new StepFailedError(
      `sysctl (steps ${offset}..${offset + batch.length - 1}) failed: ${firstLine(result.stderr)}`,
      `${formatCommand(argv)} exited ${result.exitCode ?? result.signal}\n${result.stderr}`,
      failed < 0 ? undefined : offset + failed,
      offset,
    );
  }

  async #readNft(): Promise<KernelState['nft']> {
    const argv = this.#nft('-j', 'list', 'table', NFT_TABLE_FAMILY, NFT_TABLE_NAME);
    const result = await this.#runner.run(argv);
    if (result.exitCode !== 0) {
      refuseMissingTool(result);
      if (/No such file or directory/.test(result.stderr)) return null;
      throw commandError(argv, result);
    }
    return parseNftTable(result.stdout, { markMask: this.#markMask });
  }

  async #readSysctls(keys: readonly string[]): Promise<Record<string, string>> {
    const wanted = keys.filter(isSysctlKey);
    const out: Record<string, string> = {};
    if (wanted.length === 0) return out;
    if (this.#netns === undefined) return readSysctlFiles(this.#sysctlRoot, wanted);
    // `-e`: keys that do not exist (an interface that is gone) are left out, not an error.
    const byToolKey = new Map(wanted.map((key) => [sysctlToolKey(key), key]));
    const result = await this.#mustRun(this.#inNetns('sysctl', '-e', ...byToolKey.keys()));
    for (const line of result.stdout.split('\n')) {
      const separator = line.indexOf(' = ');
      if (separator < 0) continue;
      const key = byToolKey.get(line.slice(0, separator));
      if (key !== undefined) out[key] = line.slice(separator + 3).trim();
    }
    return sortedRecord(out);
  }

  async #mustRun(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    const result = await this.#runner.run(argv, options);
    if (result.exitCode !== 0) {
      refuseMissingTool(result);
      throw commandError(argv, result);
    }
    return result;
  }

  #ip(...args: string[]): string[] {
    return this.#netns === undefined ? ['ip', ...args] : ['ip', '-n', this.#netns, ...args];
  }

  #nft(...args: string[]): string[] {
    return this.#inNetns('nft', ...args);
  }

  #inNetns(...argv: string[]): string[] {
    return this.#netns === undefined ? argv : ['ip', 'netns', 'exec', this.#netns, ...argv];
  }
}

/** Reads sysctls from files under `root` (/proc/sys); keys whose file is missing are left out. */
export async function readSysctlFiles(
  root: string,
  keys: readonly string[],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    keys.map(async (key) => {
      try {
        out[key] = (await readFile(join(root, sysctlPath(key)), 'utf8')).trim();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }),
  );
  return sortedRecord(out);
}

/** `ip netns exec` ran but could not exec the tool: the tool is missing, not the kernel refusing. */
function refuseMissingTool(result: CommandResult): void {
  const tool = missingToolInNetnsExec(result.stderr);
  if (tool !== undefined) throw new ToolMissingError(tool, firstLine(result.stderr));
}

function commandError(argv: readonly string[], result: CommandResult): DataplaneError {
  return new DataplaneError(
    `${formatCommand(argv)} failed: ${firstLine(result.stderr) || `exit ${result.exitCode ?? result.signal}`}`,
    `${formatCommand(argv)} exited ${result.exitCode ?? result.signal}\n${result.stderr}`,
  );
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

function sortedRecord(record: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key]!;
  return out;
}
