/**
 * Entry of dist/uplink-agent-rpc.mjs: `uplink-agent rpc` and nothing else, as a bundle of its
 * own (a few kB), because it starts on every SSH connection. Node must parse a whole file
 * before running any of it: the full agent bundle (≈ 1.2 MB) costs 20–45 ms more per
 * connection than this one, even though `rpc` evaluates none of the rest (D21, D55).
 *
 *   node uplink-agent-rpc.mjs rpc [--socket PATH]     (default: $UPLINK_AGENT_SOCKET, then
 *                                                      /run/uplink-agent/agent.sock)
 * Exit codes as `uplink-agent rpc`: 0 done, 2 usage, 7 the daemon is not reachable.
 */
import { runRpcBridge } from './rpc-bridge.js';
import { DEFAULT_SOCKET_PATH, SOCKET_ENV } from './wire-limits.js';

/** `rpc [--socket P]` → the socket option; undefined for anything else. */
export function parseRpcArgv(argv: readonly string[]): { socket?: string } | undefined {
  if (argv[0] !== 'rpc') return undefined;
  const args = argv.slice(1);
  if (args.length === 0) return {};
  if (args.length === 1 && args[0]!.startsWith('--socket=') && args[0]!.length > 9) {
    return { socket: args[0]!.slice(9) };
  }
  if (args.length === 2 && args[0] === '--socket' && !args[1]!.startsWith('-')) return { socket: args[1]! };
  return undefined;
}

async function main(): Promise<number> {
  const parsed = parseRpcArgv(process.argv.slice(2));
  if (parsed === undefined) {
    process.stderr.write('usage: uplink-agent rpc [--socket PATH] (this entry runs the rpc bridge only)\n');
    return 2;
  }
  const outcome = await runRpcBridge(
    { socketPath: parsed.socket ?? process.env[SOCKET_ENV] ?? DEFAULT_SOCKET_PATH },
    {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: (text) => process.stderr.write(text),
      env: process.env,
    },
  );
  return outcome === 'ok' ? 0 : 7;
}

process.exitCode = await main();
