/**
 * Keys for a simulated fleet: one host key shared by every simulated router (they are all
 * this process; the controller still pins it per site) and the controller's client key.
 * Made with ssh2's key generator, in OpenSSH format, so the controller reads them exactly
 * like keys made by ssh-keygen.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';

// ssh2 is CommonJS: take `utils` from the default export (what Node's ESM loader offers).
const { utils } = ssh2;

export interface SimKeys {
  /** The routers' host key (private, OpenSSH format). */
  readonly hostPrivateKey: string;
  /** `ssh-ed25519 AAAA…` without a comment: the form the fleet spec's `management.hostKey` takes. */
  readonly hostKeyLine: string;
  /** The controller's key (private, OpenSSH format). */
  readonly controllerPrivateKey: string;
  /** The controller's public key, parsed: what the routers accept. */
  readonly controllerPublicKey: ParsedKey;
}

export function generateSimKeys(): SimKeys {
  const host = utils.generateKeyPairSync('ed25519');
  const controller = utils.generateKeyPairSync('ed25519');
  const parsed = utils.parseKey(controller.public);
  if (parsed instanceof Error) throw parsed;
  return {
    hostPrivateKey: host.private,
    hostKeyLine: host.public.split(' ').slice(0, 2).join(' '),
    controllerPrivateKey: controller.private,
    controllerPublicKey: parsed,
  };
}

/** Writes the controller key (mode 0600) and a known_hosts file with one `[host]:port` line per site. */
export async function writeControllerFiles(
  dir: string,
  keys: SimKeys,
  targets: readonly { readonly host: string; readonly port: number }[],
): Promise<{ controllerKeyPath: string; knownHostsPath: string }> {
  const controllerKeyPath = join(dir, 'controller_ed25519');
  const knownHostsPath = join(dir, 'known_hosts');
  await writeFile(controllerKeyPath, keys.controllerPrivateKey, { mode: 0o600 });
  await writeFile(knownHostsPath, targets.map((t) => `[${t.host}]:${t.port} ${keys.hostKeyLine}\n`).join(''));
  return { controllerKeyPath, knownHostsPath };
}
