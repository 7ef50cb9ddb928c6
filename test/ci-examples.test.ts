/**
 * The CI examples in deploy/ci call the real CLI with real flags: every `uplink …` command
 * line in them is extracted, each flag (and each --format value) is checked against the
 * built CLI's own `--help`, and the `validate` and `plan` lines are run as written (by sh,
 * with the CI variables they use) against a temporary git repository of fleet-repo-example.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildDist, ROOT } from './build-dist.js';

const CI_DIR = join(ROOT, 'deploy/ci');

interface CommandLine {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly argv: readonly string[];
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

/** Shell words of a command up to a redirection, pipe or list operator; quotes removed. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"'<>|;&]+)|([<>|;&]+)/g;
  for (const m of text.matchAll(re)) {
    if (m[4] !== undefined) break;
    words.push(m[1] ?? m[2] ?? m[3]!);
  }
  return words;
}

function extractCommands(): CommandLine[] {
  const out: CommandLine[] = [];
  for (const file of files(CI_DIR)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((raw, i) => {
        const text = raw.replace(/^\s*(?:-\s+)?(?:run:\s+)?/, '');
        if (/^uplink\s/.test(text)) {
          out.push({ file: relative(ROOT, file), line: i + 1, text, argv: shellWords(text) });
        }
      });
  }
  return out;
}

interface Help {
  readonly options: Map<string, { readonly choices: readonly string[] | null; readonly takesValue: boolean }>;
}

function readHelp(subcommand: string): Help {
  const run = spawnSync(process.execPath, [join(ROOT, 'dist/uplink.mjs'), subcommand, '--help'], {
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  const section = run.stdout.split(/^Options:$/m)[1] ?? '';
  // An option entry starts on a line indented by two spaces with a dash; wrapped text continues it.
  const entries: string[] = [];
  for (const line of section.split('\n')) {
    if (/^ {2}-/.test(line)) entries.push(line.trim());
    else if (entries.length > 0 && line.trim() !== '') entries[entries.length - 1] += ` ${line.trim()}`;
  }
  const options = new Map<string, { choices: string[] | null; takesValue: boolean }>();
  for (const entry of entries) {
    const flag = /(--[a-z][a-z-]*)( <[^>]+>)?/.exec(entry);
    if (flag === null) continue;
    const choices = /\(choices: ((?:"[^"]*"(?:, )?)+)/.exec(entry);
    options.set(flag[1]!, {
      takesValue: flag[2] !== undefined,
      choices: choices === null ? null : [...choices[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!),
    });
  }
  return { options };
}

const commands = extractCommands();

describe('deploy/ci examples', () => {
  let repo: string;
  let bin: string;
  const env: Record<string, string> = {};

  beforeAll(() => {
    buildDist();
    repo = mkdtempSync(join(tmpdir(), 'uplink-ci-examples-'));
    bin = join(repo, '.bin');
    mkdirSync(bin);
    symlinkSync(join(ROOT, 'dist/uplink.mjs'), join(bin, 'uplink'));
    const git = (...args: string[]) => {
      const run = spawnSync(
        'git',
        ['-c', 'user.name=CI', '-c', 'user.email=ci@example.net', '-c', 'commit.gpgsign=false', ...args],
        { cwd: repo, encoding: 'utf8' },
      );
      if (run.status !== 0) throw new Error(run.stderr);
      return run.stdout.trim();
    };
    git('init', '-q');
    cpSync(join(ROOT, 'fleet-repo-example'), repo, { recursive: true });
    writeFileSync(join(repo, '.gitignore'), '.bin\n*.md\n*.xml\n');
    git('add', '-A');
    git('commit', '-qm', 'base');
    const base = git('rev-parse', 'HEAD');
    const site = join(repo, 'sites/lartc-split.yaml');
    writeFileSync(site, `${readFileSync(site, 'utf8')}\nsysctls:\n  net.ipv4.conf.all.rp_filter: "1"\n`);
    git('commit', '-qam', 'head');
    const head = git('rev-parse', 'HEAD');
    // The variables the examples read, as GitHub and GitLab set them.
    Object.assign(env, {
      BASE_SHA: base,
      HEAD_SHA: head,
      base,
      CI_MERGE_REQUEST_DIFF_BASE_SHA: base,
      CI_COMMIT_SHA: head,
    });
  }, 120_000);

  afterAll(() => {
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  it.each(files(CI_DIR).map((f) => relative(ROOT, f)))('%s is valid YAML', (file) => {
    expect(() =>
      parse(readFileSync(join(ROOT, file), 'utf8'), { strict: true, uniqueKeys: true }),
    ).not.toThrow();
  });

  it('call validate, plan (markdown) and drift (junit to a file)', () => {
    const seen = new Set(commands.map((c) => `${c.file} ${c.argv[1]}`));
    for (const file of ['deploy/ci/github/uplink.yml', 'deploy/ci/gitlab/uplink.gitlab-ci.yml']) {
      for (const sub of ['validate', 'plan', 'drift'])
        expect(seen, `${file} runs uplink ${sub}`).toContain(`${file} ${sub}`);
    }
    const plan = commands.filter((c) => c.argv[1] === 'plan');
    expect(plan.every((c) => c.text.includes('--format markdown'))).toBe(true);
    const drift = commands.filter((c) => c.argv[1] === 'drift');
    expect(drift.every((c) => /--format junit --output drift\.xml/.test(c.text))).toBe(true);
  });

  it.each(commands.map((c) => [`${c.file}:${c.line} ${c.argv.slice(0, 2).join(' ')}`, c] as const))(
    '%s: every flag and value is one the CLI accepts',
    (_name, command) => {
      const help = readHelp(command.argv[1]!);
      const args = command.argv.slice(2);
      for (let i = 0; i < args.length; i++) {
        const arg = args[i]!;
        if (!arg.startsWith('--')) continue;
        const option = help.options.get(arg);
        expect(
          option,
          `${command.file}:${command.line}: uplink ${command.argv[1]} has no ${arg}`,
        ).toBeDefined();
        if (!option!.takesValue) continue;
        const value = args[++i];
        expect(value, `${command.file}:${command.line}: ${arg} needs a value`).toBeDefined();
        if (option!.choices !== null)
          expect(option!.choices, `${command.file}:${command.line}: ${arg}`).toContain(value);
      }
    },
  );

  it.each(
    commands
      .filter((c) => c.argv[1] === 'validate' || c.argv[1] === 'plan')
      .map((c) => [`${c.file}:${c.line} ${c.argv.slice(0, 2).join(' ')}`, c] as const),
  )('%s runs as written against a real fleet repository', (_name, command) => {
    const run = spawnSync('sh', ['-c', command.text], {
      cwd: repo,
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: repo, ...env },
    });
    expect(run.stderr).toBe('');
    if (command.argv[1] === 'validate') {
      expect(run.status).toBe(0);
    } else {
      // The head commit changes one site: the plan says so, and it is Markdown for a comment.
      expect(run.status).toBe(1);
      const md = readFileSync(join(repo, 'plan.md'), 'utf8');
      expect(md).toMatch(/^### Uplink plan/);
      expect(md).toMatch(/\| lartc-split \| ✏️ changed \|/);
    }
  });
});
