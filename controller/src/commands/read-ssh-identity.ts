/** The SSH private key a one-shot command (apply, drift, rollout) connects with. */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

/** `identity` if given, else $UPLINK_SSH_KEY, else ~/.ssh/id_ed25519; an unreadable file is a usage error. */
export async function readSshIdentity(identity: string | undefined): Promise<Buffer> {
  const identityPath = identity ?? process.env.UPLINK_SSH_KEY ?? join(homedir(), '.ssh', 'id_ed25519');
  return readFile(identityPath).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(
      `${identityPath}: cannot read the SSH private key (${e.code}); pass --identity FILE or set UPLINK_SSH_KEY`,
    );
  });
}
