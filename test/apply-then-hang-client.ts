/**
 * A controller that dies between apply and confirm, for test/controller-killed.test.ts: the
 * real transport (ssh2, pinned host key, the restricted key) sends hello + apply, prints the
 * apply's answer as one JSON line, then stops where applyAndConfirm would open the confirm
 * connection — and waits there until the test SIGKILLs it. With `closeFirst` it ends the
 * apply session and connection first (as applyAndConfirm does); without, it dies with the
 * connection still open.
 *
 *   node dist/test-apply-then-hang.mjs CONFIG.json
 */
import { readFile } from 'node:fs/promises';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { AgentSession } from '../controller/src/transport/rpc-client.js';
import { connectSsh } from '../controller/src/transport/ssh-transport.js';

export interface HangClientConfig {
  readonly host: string;
  readonly hostKey: string;
  readonly identity: string;
  readonly desired: DesiredState;
  readonly generation: string;
  readonly confirmWithinMs: number;
  readonly closeFirst: boolean;
}

const config = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as HangClientConfig;
const connection = await connectSsh(
  {
    site: config.desired.site,
    host: config.host,
    user: 'root',
    hostKey: config.hostKey,
    privateKey: await readFile(config.identity),
  },
  {},
);
const session = await AgentSession.open(connection);
await session.hello();
const result = await session.apply({
  desired: config.desired,
  generation: config.generation,
  confirmWithinMs: config.confirmWithinMs,
});
if (config.closeFirst) {
  await session.close();
  connection.close();
}
process.stdout.write(`${JSON.stringify({ applied: result })}\n`);
// Where the confirm connection would be opened: wait for the SIGKILL.
setInterval(() => {}, 60_000);
