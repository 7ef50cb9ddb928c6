/**
 * A dataplane with a failpoint before each kernel step (D102): `kernel.read` before every
 * read, and for `apply` one point per tool run — `kernel.ip-batch` for each run of
 * consecutive ip steps (one `ip -batch`), `kernel.nft` for the nft transaction,
 * `kernel.sysctl:KEY` for each sysctl. The wrapped dataplane then applies that group, so
 * with failpoints active every sysctl is its own write (one process each in netns mode);
 * without them nothing is wrapped and nothing changes.
 *
 * `kernel-error` at an ip batch applies the first half of the batch and then fails, like an
 * `ip -batch` that stops at a refused line; `tool-missing` fails before anything of the
 * group ran, as a missing program does.
 */
import { isIpStep } from '../core/render-ip-batch.js';
import { ToolMissingError } from '../errors.js';
import type { Failpoints, FailureAction } from '../faults/failpoints.js';
import type { Facts, KernelState } from '../model/kernel-state.js';
import type { Step } from '../model/steps.js';
import { type Dataplane, DataplaneError, type ReadRequest } from './dataplane.js';

export function withFailpoints(dataplane: Dataplane, failpoints: Failpoints): Dataplane {
  if (!failpoints.active) return dataplane;
  const read = (tool: string) =>
    failpoints.hit('kernel.read', (action) => failure(action, tool, 'reading the kernel'));
  const wrapped: Dataplane = {
    async readFacts(): Promise<Facts> {
      await read('ip');
      return dataplane.readFacts();
    },
    async readKernel(request: ReadRequest): Promise<KernelState> {
      await read('ip');
      return dataplane.readKernel(request);
    },
    async apply(steps: readonly Step[]): Promise<void> {
      for (const group of toolGroups(steps)) {
        try {
          await failpoints.hit(group.point, (action) => failure(action, group.tool, group.point));
        } catch (error) {
          // ip -batch semantics for an injected refusal: the lines before the failing one stay applied.
          if (error instanceof InjectedRefusal && group.tool === 'ip' && group.steps.length > 1) {
            await dataplane.apply(group.steps.slice(0, Math.floor(group.steps.length / 2)));
          }
          throw error;
        }
        await dataplane.apply(group.steps);
      }
    },
  };
  if (dataplane.readCurrent !== undefined) {
    const readCurrent = dataplane.readCurrent.bind(dataplane);
    wrapped.readCurrent = async (request) => {
      await read('ip');
      return readCurrent(request);
    };
  }
  return wrapped;
}

class InjectedRefusal extends DataplaneError {}

function failure(action: FailureAction, tool: string, where: string): Error {
  switch (action.kind) {
    case 'tool-missing':
      return new ToolMissingError(tool, `spawn ${tool} ENOENT (failpoint ${where})`);
    case 'kernel-error':
      return new InjectedRefusal(
        `${where}: RTNETLINK answers: Operation not permitted (failpoint)`,
        'failpoint',
      );
    case 'errno':
      return new InjectedRefusal(`${where}: ${action.code} (failpoint)`, 'failpoint');
  }
}

interface ToolGroup {
  readonly point: string;
  readonly tool: 'ip' | 'nft' | 'sysctl';
  readonly steps: readonly Step[];
}

/** Steps as the tools run them: consecutive ip steps together, nft alone, each sysctl alone. */
export function toolGroups(steps: readonly Step[]): ToolGroup[] {
  const groups: ToolGroup[] = [];
  let index = 0;
  while (index < steps.length) {
    const step = steps[index]!;
    if (isIpStep(step)) {
      let end = index;
      while (end < steps.length && isIpStep(steps[end]!)) end++;
      groups.push({ point: 'kernel.ip-batch', tool: 'ip', steps: steps.slice(index, end) });
      index = end;
    } else if (step.op === 'nft-replace') {
      groups.push({ point: 'kernel.nft', tool: 'nft', steps: [step] });
      index++;
    } else {
      groups.push({ point: `kernel.sysctl:${step.key}`, tool: 'sysctl', steps: [step] });
      index++;
    }
  }
  return groups;
}
