/**
 * Defaults for the `uplink` commands, so the common ones are short (D131) — the way
 * kubectl's kubeconfig names the cluster once. A flag always wins; then the environment;
 * then the file; then the built-in default:
 *
 *   key          flag               environment               meaning
 *   repo         --repo             UPLINK_REPO               the fleet repository (a clone)
 *   branch       (apply)            UPLINK_BRANCH             the branch git's truth lives on (main)
 *   identity     --identity         UPLINK_SSH_KEY            the controller's SSH key
 *   knownHosts   --known-hosts      UPLINK_KNOWN_HOSTS        for sites without a pinned hostKey
 *   controller   --config           UPLINK_CONTROLLER_CONFIG  the controller's config (status, suspend, …)
 *   stateDir     --state-dir        UPLINK_STATE_DIR          or its state dir directly
 *   output       -o / --format      UPLINK_OUTPUT             text, wide or json, where a command has it
 *
 * The file is `$UPLINK_CONFIG`, else `$XDG_CONFIG_HOME/uplink/config.yaml`, else
 * `~/.config/uplink/config.yaml`; a missing file is no defaults. Paths in it are relative
 * to it (and `~/` is the home directory).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { type Diagnostic, formatDiagnostic } from '../spec/diagnostic.js';
import { parseYamlFile } from '../spec/parse-yaml-file.js';
import { validateWithSchema } from '../spec/schema-diagnostics.js';

const path = z.string().min(1);
export const cliDefaultsSchema = z
  .object({
    repo: path.optional(),
    branch: z.string().min(1).optional(),
    identity: path.optional(),
    knownHosts: path.optional(),
    controller: path.optional(),
    stateDir: path.optional(),
    output: z.enum(['text', 'wide', 'json']).optional(),
  })
  .strict();

export type CliDefaultKey = keyof z.infer<typeof cliDefaultsSchema>;

export const CLI_DEFAULT_ENV: Readonly<Record<CliDefaultKey, string>> = {
  repo: 'UPLINK_REPO',
  branch: 'UPLINK_BRANCH',
  identity: 'UPLINK_SSH_KEY',
  knownHosts: 'UPLINK_KNOWN_HOSTS',
  controller: 'UPLINK_CONTROLLER_CONFIG',
  stateDir: 'UPLINK_STATE_DIR',
  output: 'UPLINK_OUTPUT',
};

const PATH_KEYS: ReadonlySet<CliDefaultKey> = new Set([
  'repo',
  'identity',
  'knownHosts',
  'controller',
  'stateDir',
]);

export interface CliDefaults {
  /** The defaults file read (null: none). */
  readonly file: string | null;
  readonly values: Partial<Record<CliDefaultKey, string>>;
  /** Where each value came from: `UPLINK_REPO`, or `FILE:LINE:COL`. */
  readonly sources: Partial<Record<CliDefaultKey, string>>;
}

/** The defaults file's path for an environment. */
export function cliDefaultsFile(env: Readonly<Record<string, string | undefined>>, home: string): string {
  if (env.UPLINK_CONFIG) return resolve(env.UPLINK_CONFIG);
  const base = env.XDG_CONFIG_HOME ? env.XDG_CONFIG_HOME : join(home, '.config');
  return join(base, 'uplink', 'config.yaml');
}

/** The file's text (undefined when there is none) and the environment → the defaults (no I/O). */
export function parseCliDefaults(
  file: string,
  text: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  home: string,
  cwd = '/',
): { defaults?: CliDefaults; diagnostics: readonly Diagnostic[] } {
  const values: Partial<Record<CliDefaultKey, string>> = {};
  const sources: Partial<Record<CliDefaultKey, string>> = {};
  const expand = (p: string, base: string) =>
    p.startsWith('~/') ? join(home, p.slice(2)) : isAbsolute(p) ? p : resolve(base, p);
  if (text !== undefined) {
    const { parsed, diagnostics } = parseYamlFile(file, text);
    if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
    const { value, diagnostics: schema } = validateWithSchema(parsed, cliDefaultsSchema);
    if (!value) return { diagnostics: schema };
    for (const [key, v] of Object.entries(value) as [CliDefaultKey, string][]) {
      values[key] = PATH_KEYS.has(key) ? expand(v, dirname(file)) : v;
      const pos = parsed.locate([key]);
      sources[key] = `${file}:${pos.line}:${pos.col}`;
    }
  }
  for (const [key, name] of Object.entries(CLI_DEFAULT_ENV) as [CliDefaultKey, string][]) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (key === 'output' && !['text', 'wide', 'json'].includes(v))
      return {
        diagnostics: [
          {
            severity: 'error',
            file: name,
            line: 1,
            col: 1,
            path: name,
            message: `${name}=${v}: write text, wide or json`,
          },
        ],
      };
    values[key] = PATH_KEYS.has(key) ? expand(v, cwd) : v;
    sources[key] = name;
  }
  return { defaults: { file: text === undefined ? null : file, values, sources }, diagnostics: [] };
}

let cached: Promise<CliDefaults> | undefined;

/** The defaults for this process (read once); an invalid file is a usage error naming FILE:LINE:COL. */
export function loadCliDefaults(
  env: Readonly<Record<string, string | undefined>> = process.env,
  home = env.HOME ?? '/root',
): Promise<CliDefaults> {
  cached ??= (async () => {
    const file = cliDefaultsFile(env, home);
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        if (env.UPLINK_CONFIG) throw new UsageError(`${file} (UPLINK_CONFIG): no such file`);
        return undefined;
      }
      throw new UsageError(`${file}: cannot read the uplink defaults (${e.code ?? String(e)})`);
    });
    const { defaults, diagnostics } = parseCliDefaults(file, text, env, home, process.cwd());
    if (!defaults)
      throw new UsageError(
        `${file}: invalid uplink defaults:\n${diagnostics
          .filter((d) => d.severity === 'error')
          .map(formatDiagnostic)
          .join('\n')}`,
      );
    return defaults;
  })();
  return cached;
}
