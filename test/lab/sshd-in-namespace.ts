/**
 * OpenSSH inside a lab namespace: a throwaway host key, sshd -D started (and killed by pid)
 * through the lab, a known_hosts file pinning that key, and `ssh` argv builders for a
 * client namespace. Keys live in a temporary directory, hence `StrictModes no`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';

export interface SshdOptions {
  /** Address sshd listens on inside `ns`. */
  readonly address: string;
  readonly port?: number;
  /** Directory for the host key, config and known_hosts (created). */
  readonly dir: string;
  /** sshd's AuthorizedKeysFile pattern, e.g. `/tmp/x/root%h/.ssh/authorized_keys`. */
  readonly authorizedKeysFile: string;
}

export interface NamespaceSshd {
  readonly process: LabProcess;
  readonly address: string;
  readonly port: number;
  /** known_hosts pinning the host key (for `-o UserKnownHostsFile=`). */
  readonly knownHosts: string;
}

export interface SshdFiles {
  /** sshd_config to pass with `-f`. */
  readonly config: string;
  /** known_hosts pinning the host key. */
  readonly knownHosts: string;
  /** The host key, `ssh-ed25519 AAAA…` (no comment). */
  readonly hostKey: string;
}

/** A throwaway host key, sshd_config and known_hosts in `options.dir` (created). */
export async function writeSshdFiles(lab: Lab, options: SshdOptions): Promise<SshdFiles> {
  const port = options.port ?? 22;
  await mkdir(options.dir, { recursive: true });
  // Privilege separation needs this directory to exist (the Makefile's deps target creates it too).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKeyFile = join(options.dir, 'host_ed25519');
  await lab.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lab-host', '-f', hostKeyFile]);
  const config = join(options.dir, 'sshd_config');
  await writeFile(
    config,
    [
      `ListenAddress ${hostPort(options.address, port)}`,
      `HostKey ${hostKeyFile}`,
      'PidFile none',
      `AuthorizedKeysFile ${options.authorizedKeysFile}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // Allowed here so that the key's `restrict` is what refuses forwarding.
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const knownHosts = join(options.dir, 'known_hosts');
  const hostKey = (await readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const hostPattern = port === 22 ? options.address : `[${options.address}]:${port}`;
  await writeFile(knownHosts, `${hostPattern} ${hostKey}\n`);
  return { config, knownHosts, hostKey };
}

/** `address:port`, an IPv6 address in brackets (as sshd_config and `ss` write it). */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Waits until something listens on address:port in `ns`; `exited()` returning a message aborts. */
export async function waitTcpListening(
  lab: Lab,
  ns: string,
  address: string,
  port: number,
  exited: () => string | undefined,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listening = await lab.exec(ns, ['ss', '-Hltn', `sport = :${port}`], { allowFailure: true });
    if (listening.stdout.includes(hostPort(address, port))) return;
    const gone = exited();
    if (gone !== undefined) throw new Error(gone);
    if (Date.now() > deadline) throw new Error(`nothing listens on ${address}:${port} in ${ns}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshdInNamespace(
  lab: Lab,
  ns: string,
  options: SshdOptions,
): Promise<NamespaceSshd> {
  const port = options.port ?? 22;
  const files = await writeSshdFiles(lab, options);
  const process = lab.start(ns, ['/usr/sbin/sshd', '-D', '-e', '-f', files.config]);
  await waitTcpListening(lab, ns, options.address, port, () =>
    process.child.exitCode !== null ? `sshd exited: ${process.stderr}` : undefined,
  ).catch((e: Error) => {
    throw new Error(`sshd did not listen on ${options.address}:${port}: ${e.message} ${process.stderr}`);
  });
  return { process, address: options.address, port, knownHosts: files.knownHosts };
}

/** `ssh` argv with a pinned host key, no agent, no config files, batch mode. */
export function sshArgv(
  sshd: NamespaceSshd,
  identity: string,
  user: string,
  remote: readonly string[],
  extra: readonly string[] = [],
): string[] {
  return [
    'ssh',
    '-F',
    '/dev/null',
    '-i',
    identity,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${sshd.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-T',
    '-p',
    String(sshd.port),
    ...extra,
    `${user}@${sshd.address}`,
    ...remote,
  ];
}
