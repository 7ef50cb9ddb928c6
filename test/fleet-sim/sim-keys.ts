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
  /** The same, as its OpenSSH public key line (what a shard of the simulator is handed). */
  readonly controllerPublicKeyLine: string;
}

export function generateSimKeys(): SimKeys {
  const host = generateEd25519KeyPair();
  const controller = generateEd25519KeyPair();
  return {
    hostPrivateKey: host.private,
    hostKeyLine: host.public.split(' ').slice(0, 2).join(' '),
    controllerPrivateKey: controller.private,
    controllerPublicKey: controller.parsedPublic,
    controllerPublicKeyLine: controller.public,
  };
}

/** The keys as JSON text, for the processes of a sharded simulator (they all share one set). */
export function simKeysToText(keys: SimKeys): string {
  const { controllerPublicKey: _parsed, ...text } = keys;
  return JSON.stringify(text);
}

/** Reads back simKeysToText's output; throws when a key does not parse. */
export function simKeysFromText(text: string): SimKeys {
  const fields = JSON.parse(text) as Omit<SimKeys, 'controllerPublicKey'>;
  for (const key of [
    'hostPrivateKey',
    'hostKeyLine',
    'controllerPrivateKey',
    'controllerPublicKeyLine',
  ] as const) {
    if (typeof fields[key] !== 'string') throw new Error(`simulator keys: ${key} is missing`);
  }
  const parsed = utils.parseKey(fields.controllerPublicKeyLine);
  if (parsed instanceof Error) throw new Error(`simulator keys: controller key: ${parsed.message}`);
  if (utils.parseKey(fields.hostPrivateKey) instanceof Error)
    throw new Error('simulator keys: host key does not parse');
  return { ...fields, controllerPublicKey: parsed };
}

/** Draws before giving up: a bad draw has probability 1/256, so 32 bad draws in a row is 2^-256. */
const MAX_KEY_DRAWS = 32;

/**
 * An ed25519 key pair that ssh2 itself can read back. ssh2's generator strips leading zero
 * bytes from the raw public key, so about one key in 256 (a public key starting with 0x00)
 * comes out truncated and `parseKey` — and so every connection using it — rejects it as
 * "Malformed OpenSSH private/public key" (mscdex/ssh2 #1390, #1513). Such a draw is thrown
 * away and another made: a rejection sample, every key handed out is an ordinary valid key.
 */
export function generateEd25519KeyPair(
  generate: () => { private: string; public: string } = () => utils.generateKeyPairSync('ed25519'),
): { private: string; public: string; parsedPublic: ParsedKey } {
  for (let draw = 0; draw < MAX_KEY_DRAWS; draw++) {
    const pair = generate();
    const parsedPrivate = utils.parseKey(pair.private);
    const parsedPublic = utils.parseKey(pair.public);
    if (parsedPrivate instanceof Error || parsedPublic instanceof Error) continue;
    // The private key file carries its public half: both must name the same key.
    if (!parsedPrivate.getPublicSSH().equals(parsedPublic.getPublicSSH())) continue;
    return { ...pair, parsedPublic };
  }
  throw new Error(`ssh2 generated ${MAX_KEY_DRAWS} unparsable ed25519 keys in a row`);
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
