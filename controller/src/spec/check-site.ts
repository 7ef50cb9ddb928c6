/**
 * Semantic rules for one merged site, and its normalisation into a ValidSite: defaults
 * applied, tables and marks assigned deterministically, policy rule priorities laid out.
 * The site goes through a list of named checks, each reporting into one collection; a site
 * is returned only when none found an error. The limits are the agent's own (D89), so a
 * site that validates is one every agent accepts.
 */
import {
  DEFAULT_TABLE,
  describeRange,
  isSysctlKey,
  LIMITS,
  protocolProblem,
  RESERVED_TABLES,
  SYSCTL_KEY_FORMS,
  suggestSysctlKey,
} from '#agent/model';
import { checkAddress, checkNetworkAny } from './addresses.js';
import { checkPolicies } from './check-policies.js';
import { checkProviders } from './check-providers.js';
import type { Diagnostic } from './diagnostic.js';
import type { MergedSite } from './merge-groups.js';
import { type SiteCheck, siteCheck, siteOrigin } from './site-check.js';
import type { FleetDefaults, ValidPolicy, ValidProvider, ValidSite } from './valid-site.js';

export { checkHealth } from './check-health.js';

export function checkSite(
  merged: MergedSite,
  defaults: FleetDefaults,
): { site?: ValidSite; diagnostics: Diagnostic[] } {
  const check = siteCheck(merged);
  const settings = checkSettings(check, defaults);
  const lan = checkLan(check);
  const providers = checkProviders(check, defaults, {
    markMask: settings.markMask,
    balanceTable: settings.balanceTable,
    lanInterfaces: lan.map((l) => l.interface),
  });
  checkDefaultTraffic(check, providers);
  checkAdoptedTables(check, settings, providers);
  const policies = checkPolicies(
    check,
    defaults,
    new Set(providers.map((p) => p.name)),
    providers.some((p) => p.balance !== null),
    lan,
    settings.markMask,
    new Set(providers.filter((p) => p.ipv6 !== undefined).map((p) => p.name)),
    new Set(providers.filter((p) => p.gateway.kind === 'none').map((p) => p.name)),
  );
  checkRuleCount(check, providers, policies);
  const sysctls = checkSysctls(check);
  const management = checkManagement(check);

  const { diagnostics } = check;
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  return {
    diagnostics,
    site: {
      name: merged.spec.name,
      file: merged.parsed.file,
      labels: merged.labels,
      management,
      lan,
      providers,
      policies,
      sysctls,
      settings: {
        ...settings,
        drift: merged.settings.value.drift ?? defaults.drift,
        priorities: defaults.priorities,
      },
    },
  };
}

interface CheckedSettings {
  readonly protocol: number;
  readonly markMask: number;
  readonly balanceTable: number;
  readonly adoptTables: readonly number[];
}

function checkSettings(check: SiteCheck, defaults: FleetDefaults): CheckedSettings {
  const { site, err } = check;
  const s = site.settings.value;
  const at = (name: string) => site.settings.fields[name];
  const protocol = s.protocol ?? defaults.protocol;
  const protocolIssue = protocolProblem(protocol);
  // A bad fleet default is reported once, in fleet.yaml.
  if (protocolIssue !== undefined && s.protocol !== undefined) {
    err(
      at('protocol'),
      `settings.protocol: ${protocol} is ${protocolIssue}; Uplink takes every rule and route with its protocol for its own, so write a free value such as 252 (the default)`,
    );
  }
  const markMask = s.markMask ?? defaults.markMask;
  if (markMask === 0 || markMask > 0xffffffff) {
    err(
      at('markMask'),
      `settings.markMask: 0x${markMask.toString(16)} must be a non-zero 32-bit mask, e.g. 0xff00`,
    );
  }
  const balanceTableSetting = s.balanceTable ?? defaults.balanceTable;
  const balanceTable = balanceTableSetting === 'default' ? DEFAULT_TABLE : balanceTableSetting;
  if (balanceTable !== DEFAULT_TABLE && (RESERVED_TABLES.has(balanceTable) || !inTableRange(balanceTable))) {
    err(
      at('balanceTable'),
      `settings.balanceTable: ${balanceTable} ${RESERVED_TABLES.has(balanceTable) ? `is the kernel's "${RESERVED_TABLES.get(balanceTable)}" table` : `is outside ${describeRange(LIMITS.table)}`}; write a free table id such as 200, or default (table 253)`,
    );
  }
  return { protocol, markMask, balanceTable, adoptTables: s.adoptTables ?? [] };
}

function checkLan(check: SiteCheck): ValidSite['lan'] {
  const { site, err, field } = check;
  return site.lan.map((l) => {
    const subnets: string[] = [];
    (l.value.subnets ?? []).forEach((text, i) => {
      const c = checkNetworkAny(text);
      if (c.ok) subnets.push(c.value);
      else
        err(
          { parsed: field(l, 'subnets').parsed, path: [...field(l, 'subnets').path, i] },
          `lan ${l.value.interface}: subnet ${c.message}`,
        );
    });
    return { interface: l.value.interface, subnets };
  });
}

function checkDefaultTraffic(check: SiteCheck, providers: readonly ValidProvider[]): void {
  if (providers.length === 0) {
    check.err(
      siteOrigin(check),
      `${check.subject}: no providers; add at least one under providers: (or inherit them with extends:)`,
    );
  } else if (!providers.some((p) => p.balance !== null || p.fallback !== null)) {
    check.report(
      siteOrigin(check),
      'warning',
      `${check.subject}: no provider has balance or fallback, so no uplink carries default traffic and main's default route is used; set balance: 1 on the primary uplink`,
    );
  }
}

/** The agent adopts only tables it writes: a provider's, or the balanced route's. */
function checkAdoptedTables(
  check: SiteCheck,
  settings: CheckedSettings,
  providers: readonly ValidProvider[],
): void {
  const writable = new Set([...providers.map((p) => p.table), settings.balanceTable]);
  const origin = check.site.settings.fields.adoptTables;
  settings.adoptTables.forEach((table, i) => {
    if (!writable.has(table)) {
      check.err(
        origin && { ...origin, path: [...origin.path, i] },
        `settings.adoptTables: ${table} is not a provider's table or the balance table; adopt only tables Uplink writes (${[...writable].sort((a, b) => a - b).join(', ')})`,
      );
    }
  });
}

/** The compiled state must fit the agent's count limits: one rule per band entry and policy rule. */
function checkRuleCount(
  check: SiteCheck,
  providers: readonly ValidProvider[],
  policies: readonly ValidPolicy[],
): void {
  const rules =
    1 +
    providers.filter((p) => p.track).length +
    providers.length +
    policies.reduce((n, p) => n + p.ruleCount, 0) +
    (providers.some((p) => p.balance !== null) ? 1 : 0) +
    providers.filter((p) => p.fallback !== null).length;
  if (rules > LIMITS.rules.max) {
    check.err(
      siteOrigin(check),
      `${check.subject}: compiles to ${rules} ip rules; the agent takes at most ${LIMITS.rules.max} — split policies or use wider prefixes`,
    );
  }
}

function checkSysctls(check: SiteCheck): Record<string, string> {
  const { site, err } = check;
  const sysctls: Record<string, string> = {};
  const entries = Object.entries(site.sysctls.value);
  for (const [key, value] of entries) {
    const origin = site.sysctls.fields[key];
    if (!isSysctlKey(key)) {
      const suggestion = suggestSysctlKey(key);
      err(
        origin && { ...origin, key: true },
        suggestion !== undefined
          ? `sysctls: "${key}" spells the interface the way sysctl(8) does; write "${suggestion}" (the interface name as it is, dots included)`
          : `sysctls: "${key}" is not managed by Uplink; write one of ${SYSCTL_KEY_FORMS} (the agent owns routing sysctls only)`,
      );
      continue;
    }
    const text = String(value);
    if (!/^\d{1,10}$/.test(text)) {
      err(origin, `sysctls.${key}: "${text}" must be a non-negative integer`);
      continue;
    }
    sysctls[key] = text;
  }
  if (entries.length > LIMITS.sysctls.max) {
    err(siteOrigin(check), `sysctls: ${entries.length} keys; the agent takes at most ${LIMITS.sysctls.max}`);
  }
  return sysctls;
}

function checkManagement(check: SiteCheck): ValidSite['management'] {
  const { site, err } = check;
  const m = site.spec.management;
  const mgmt = checkAddress(m.address);
  if (!mgmt.ok)
    err({ parsed: site.parsed, path: ['management', 'address'] }, `management.address: ${mgmt.message}`);
  if (m.hostKey === undefined)
    check.report(
      { parsed: site.parsed, path: ['management'] },
      'warning',
      `management: no hostKey, so the controller trusts only a known_hosts entry for ${m.address} (ssh.knownHosts, --known-hosts) and refuses to connect without one; pin it with hostKey: "ssh-ed25519 AAAA…" (ssh-keyscan -t ed25519 ${m.address})`,
    );
  return {
    address: mgmt.ok ? mgmt.value : m.address,
    port: m.port ?? 22,
    user: m.user ?? 'uplink',
    ...(m.hostKey === undefined ? {} : { hostKey: m.hostKey }),
  };
}

function inTableRange(table: number): boolean {
  return Number.isInteger(table) && table >= LIMITS.table.min && table <= LIMITS.table.max;
}
