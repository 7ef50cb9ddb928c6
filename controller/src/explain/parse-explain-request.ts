/**
 * The command line of `uplink explain` → a packet and the providers to take down. Pure;
 * every problem is a message that names the flag and says what to write instead.
 */
import type { Packet, ProtoName } from '#agent/sim';
import { checkAddress, checkAddress6 } from '../spec/addresses.js';
import type { ValidSite } from '../spec/valid-site.js';
import { clientAddressIn } from './synthesize-facts.js';

/** Options as the CLI parser hands them over: strings, not yet checked. */
export interface RawExplainOptions {
  readonly dst?: string;
  readonly src?: string;
  readonly iif?: string;
  readonly proto?: string;
  readonly dport?: string;
  readonly sport?: string;
  readonly uid?: string;
  readonly mark?: string;
  readonly down?: readonly string[];
  /** The packet is the first of a connection arriving on `iif`; the answer is its replies' way. */
  readonly inbound?: boolean;
  /** `IP` or `IP:PORT`: the site firewall forwards the inbound connection there (DNAT). */
  readonly dnatTo?: string;
}

export interface ExplainRequest {
  readonly packet: Packet;
  /** Providers whose health probe is taken to have failed. */
  readonly down: readonly string[];
  /** Set for `--inbound`: `packet` arrives on an uplink (`iif`, `sport`, `dport` set) and its replies are asked. */
  readonly inbound?: { readonly dnatTo?: string; readonly dnatPort?: number };
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string };

const PROTOS: readonly ProtoName[] = ['tcp', 'udp', 'icmp', 'icmpv6'];

export function parseExplainRequest(
  site: ValidSite,
  raw: RawExplainOptions,
  /** The router's own interfaces from its facts (a VPN's tun0, mgmt0), beside the spec's. */
  routerInterfaces: readonly string[] = [],
): Parsed<ExplainRequest> {
  const fail = (message: string): Parsed<ExplainRequest> => ({ ok: false, message });

  if (raw.dst === undefined)
    return fail('--dst: required; write the destination address, e.g. --dst 203.0.113.25');
  // IPv4 or IPv6; source and destination of one packet are one family.
  const dst = checkAnyAddress(raw.dst);
  if (!dst.ok) return fail(`--dst: ${dst.message}`);
  const family = dst.value.includes(':') ? 'IPv6' : 'IPv4';

  let src: string | undefined;
  if (raw.src !== undefined) {
    const checked = checkAnyAddress(raw.src);
    if (!checked.ok) return fail(`--src: ${checked.message}`);
    if (checked.value.includes(':') !== (family === 'IPv6'))
      return fail(
        `--src ${raw.src}: --dst ${raw.dst} is ${family}; a packet's source and destination are one family, write an ${family} source`,
      );
    src = checked.value;
  }

  const interfaces = [
    ...new Set([...interfacesOf(site), ...routerInterfaces.filter((name) => name !== 'lo')]),
  ];
  if (raw.iif !== undefined) {
    if (raw.iif === 'lo')
      return fail(
        "--iif lo: leave --iif out to ask about the router's own traffic (the kernel uses iif lo for it)",
      );
    if (!interfaces.includes(raw.iif))
      return fail(
        `--iif ${raw.iif}: not an interface of site ${site.name}; write one of ${interfaces.join(', ')}`,
      );
    if (src === undefined)
      return fail(
        `--src: required with --iif (a forwarded packet already has a source); write e.g. --src ${exampleSource(site, raw.iif, family)}`,
      );
  }

  let proto: ProtoName | undefined;
  if (raw.proto !== undefined) {
    const lower = raw.proto.toLowerCase();
    if (!PROTOS.includes(lower as ProtoName))
      return fail(`--proto ${raw.proto}: write tcp, udp, icmp (IPv4) or icmpv6 (IPv6)`);
    proto = lower as ProtoName;
    if (proto === 'icmpv6' && family !== 'IPv6')
      return fail(`--proto icmpv6: ICMP for IPv6 needs an IPv6 packet; give an IPv6 --dst, or --proto icmp`);
    if (proto === 'icmp' && family === 'IPv6')
      return fail(`--proto icmp: ICMPv4 is not an IPv6 packet's; write --proto icmpv6`);
  }

  const ports: { sport?: number; dport?: number } = {};
  for (const flag of ['sport', 'dport'] as const) {
    const text = raw[flag];
    if (text === undefined) continue;
    const port = parseInteger(text);
    if (port === undefined || port < 1 || port > 65535)
      return fail(`--${flag} ${text}: write a port number from 1 to 65535`);
    if (proto !== 'tcp' && proto !== 'udp')
      return fail(`--${flag} ${text}: only TCP and UDP have ports; add --proto tcp or --proto udp`);
    ports[flag] = port;
  }

  let uid: number | undefined;
  if (raw.uid !== undefined) {
    uid = parseInteger(raw.uid);
    if (uid === undefined || uid > 0xfffffffe)
      return fail(`--uid ${raw.uid}: write a numeric user id, e.g. --uid 108`);
    if (raw.iif !== undefined)
      return fail(
        `--uid ${raw.uid}: only the router's own traffic has a uid (forwarded packets carry uid 0); leave out --iif or --uid`,
      );
  }

  let mark: number | undefined;
  if (raw.mark !== undefined) {
    mark = parseMark(raw.mark);
    if (mark === undefined)
      return fail(`--mark ${raw.mark}: write a 32-bit mark in hex or decimal, e.g. 0x1 or 256`);
  }

  // A provider's IPv6 half is judged on its own (D183): `isp1:ipv6` takes only it down.
  const names = site.providers.flatMap((p) => (p.ipv6 ? [p.name, `${p.name}:ipv6`] : [p.name]));
  const down: string[] = [];
  for (const name of raw.down ?? []) {
    if (!names.includes(name))
      return fail(`--down ${name}: not a provider of site ${site.name}; write one of ${names.join(', ')}`);
    if (!down.includes(name)) down.push(name);
  }

  let inbound: ExplainRequest['inbound'];
  if (raw.dnatTo !== undefined && raw.inbound !== true)
    return fail(`--dnat-to ${raw.dnatTo}: only for --inbound (a connection arriving on an uplink)`);
  if (raw.inbound === true) {
    if (raw.iif === undefined || src === undefined)
      return fail(
        '--inbound: write the interface it arrives on and the remote peer, e.g. --iif wan1 --src 203.0.113.9',
      );
    if (proto !== 'tcp' && proto !== 'udp')
      return fail('--inbound: a connection is tcp or udp; add --proto tcp (or udp) and --dport');
    if (ports.dport === undefined) return fail('--inbound: add --dport, the port the peer connected to');
    ports.sport ??= 40000;
    inbound = {};
    if (raw.dnatTo !== undefined) {
      // IP, IP:PORT, or for IPv6 [IP]:PORT.
      const m = /^(?:\[([^\]]+)\]|([^:]+)|([0-9a-fA-F:.]+))(?::(\d{1,5}))?$/.exec(raw.dnatTo);
      const bare6 = m?.[3] !== undefined && m[4] === undefined ? raw.dnatTo : undefined;
      const text = m === null ? undefined : (m[1] ?? m[2] ?? bare6);
      const address = text === undefined ? undefined : checkAnyAddress(text);
      const portText = bare6 === undefined ? m?.[4] : undefined;
      const port = portText === undefined ? undefined : parseInteger(portText);
      if (
        address === undefined ||
        !address.ok ||
        address.value.includes(':') !== (family === 'IPv6') ||
        (portText !== undefined && (port === undefined || port < 1 || port > 65535))
      )
        return fail(
          `--dnat-to ${raw.dnatTo}: write the LAN host it is forwarded to, IP or IP:PORT (IPv6: [IP]:PORT), of the packet's family (${family}), e.g. ${family === 'IPv6' ? '[2001:db8:1::10]:443' : '172.20.40.10:443'}`,
        );
      inbound = { dnatTo: address.value, ...(port === undefined ? {} : { dnatPort: port }) };
    }
  }

  const packet: Packet = {
    dst: dst.value,
    ...(src === undefined ? {} : { src }),
    ...(raw.iif === undefined ? {} : { iif: raw.iif }),
    ...(proto === undefined ? {} : { proto }),
    ...ports,
    ...(uid === undefined ? {} : { uid }),
    ...(mark === undefined ? {} : { mark }),
  };
  return { ok: true, value: { packet, down, ...(inbound === undefined ? {} : { inbound }) } };
}

/** Decimal without sign or leading zeros. */
function parseInteger(text: string): number | undefined {
  return /^(0|[1-9]\d{0,9})$/.test(text) ? Number(text) : undefined;
}

/** `0x1f` or `31`, within 32 bits. */
export function parseMark(text: string): number | undefined {
  const value = /^0x[0-9a-f]{1,8}$/i.test(text) ? Number.parseInt(text.slice(2), 16) : parseInteger(text);
  return value !== undefined && value <= 0xffffffff ? value : undefined;
}

/** Interfaces the offline router has: LAN first, then uplinks, without repeats. */
export function interfacesOf(site: ValidSite): string[] {
  const out: string[] = [];
  for (const name of [...site.lan.map((l) => l.interface), ...site.providers.map((p) => p.interface)])
    if (!out.includes(name)) out.push(name);
  return out;
}

function exampleSource(site: ValidSite, iif: string, family: 'IPv4' | 'IPv6'): string {
  // A subnet of the LAN of the packet's family.
  const subnet = site.lan
    .find((l) => l.interface === iif)
    ?.subnets.find((s) => s.includes(':') === (family === 'IPv6'));
  if (subnet === undefined) return family === 'IPv6' ? '2001:db8:99::10' : '203.0.113.10';
  return family === 'IPv6' ? `${subnet.split('/')[0]!.replace(/::$/, '')}::10` : clientAddressIn(subnet);
}

/** An IPv4 or IPv6 address, canonical (RFC 5952 for IPv6). */
function checkAnyAddress(text: string): { ok: true; value: string } | { ok: false; message: string } {
  const v4 = checkAddress(text);
  if (v4.ok || !v4.ipv6) return v4;
  const v6 = checkAddress6(text);
  return v6.ok ? v6 : { ok: false, message: v4.message };
}
