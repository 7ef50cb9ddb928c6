// A stand-in for `uplink-agent rpc`, run by a test sshd as the forced command:
//   node fake-agent.mjs <state dir>
// It speaks the JSON-lines protocol with canned answers that match the protocol's result
// schemas (except `plan`, which stays a minimal stand-in). State lives in the
// state dir so an apply on one connection can be confirmed on another:
//   mode.json   — how to behave (written by the test; see FakeAgentMode in sshd.ts)
//   state.json  — { pending: PendingInfo | null, applied: string | null }
//   log.jsonl   — one line per session and per request, with the session's SSH source port
//   active/     — one file per live session, to measure concurrency
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: fake-agent.mjs <state dir>\n');
  process.exit(2);
}

function readJson(name, fallback) {
  try {
    return JSON.parse(readFileSync(join(dir, name), 'utf8'));
  } catch {
    return fallback;
  }
}

function writeJson(name, value) {
  const tmp = join(dir, `${name}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, join(dir, name));
}

// SSH_CONNECTION = "client-ip client-port server-ip server-port"
const sourcePort = Number((process.env.SSH_CONNECTION ?? '').split(' ')[1]);
const activeDir = join(dir, 'active');
mkdirSync(activeDir, { recursive: true });
const marker = join(activeDir, String(process.pid));
writeFileSync(marker, '');
process.on('exit', () => rmSync(marker, { force: true }));

function log(event) {
  appendFileSync(join(dir, 'log.jsonl'), `${JSON.stringify({ pid: process.pid, sourcePort, ...event })}\n`);
}

function active() {
  return readdirSync(activeDir).length;
}

const mode = readJson('mode.json', {});
// `revision`: which agent to stand in for (D91). 1: an agent from before negotiation (it refuses
// any hello revision but 1, and its results hold revision 1's fields only); 5: an agent one
// revision ahead (extra fields in every result, an error code this controller does not know);
// unset: this release's agent (revision 4).
const revision = mode.revision ?? 4;
const AHEAD = 5;
log({ event: 'session', active: active(), command: process.env.SSH_ORIGINAL_COMMAND ?? null });

if (mode.mode === 'close-immediately') process.exit(0);

function send(message) {
  process.stdout.write(`${JSON.stringify({ v: 1, ...message })}\n`);
}
/** What a newer agent adds: fields at every level of a result. */
function future(value) {
  if (Array.isArray(value)) return value.map(future);
  if (value === null || typeof value !== 'object') return value;
  const out = { addedInRevision5: { nested: true } };
  for (const [k, v] of Object.entries(value)) out[k] = future(v);
  return out;
}
const ok = (id, result) =>
  send({
    id,
    ok: true,
    result: revision >= AHEAD ? future(result) : result,
    ...(revision >= AHEAD ? { trace: 'r5' } : {}),
  });
const fail = (id, code, message, retryable = false) =>
  send({ id, ok: false, error: { code, message, retryable, ...(revision >= AHEAD ? { hint: 'r5' } : {}) } });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Results follow the protocol's result schemas (agent/src/model/protocol.ts resultSchemas).
const HASH = 'f'.repeat(64);
const CHANGES = [
  { action: 'create', kind: 'rule', key: '1000' },
  { action: 'update', kind: 'route', key: '101 default' },
];
const info = (generation) => ({ generation, hash: HASH, site: 'fake', at: Date.now() });
const applyResult = (generation, changes, pending, applied) => ({
  generation,
  changes,
  steps: changes.length,
  unavailable: [],
  pending,
  applied,
  managementPath: null,
});

async function handle(req) {
  const { id, method, params } = req;
  log({ event: 'request', method, id, generation: params?.generation, active: active() });
  if (mode.holdMs !== undefined) await sleep(mode.holdMs);
  if (mode.mode === 'oversized') {
    // One line over 8 MiB (MAX_LINE_BYTES).
    return ok(id, { padding: 'x'.repeat(8 * 1024 * 1024 + 16) });
  }
  if (mode.mode === 'malformed-json') return process.stdout.write('this is not json\n');
  if (mode.mode === 'malformed-schema')
    return process.stdout.write(`${JSON.stringify({ v: 1, id, ok: 'yes' })}\n`);
  if (mode.mode === 'wrong-id') return ok(id + 1000, {});
  if (mode.mode === 'busy') return fail(id, 'busy', 'another apply is running', true);
  if (mode.mode === 'close-on-apply' && method === 'apply') process.exit(0);
  const state = readJson('state.json', { pending: null, applied: null });
  switch (method) {
    case 'hello': {
      if (revision === 1) {
        // Recorded from uplink-agent 0.1.0 (protocol revision 1, before negotiation).
        if (params.protocol !== 1) {
          return fail(
            id,
            'unsupported-version',
            `protocol ${params.protocol} is not supported; this agent speaks 1`,
          );
        }
        return ok(id, { protocol: 1, supported: [1], agent: 'uplink-agent/0.1.0', site: 'fake' });
      }
      const supported = Array.from({ length: revision }, (_, i) => i + 1);
      return ok(id, {
        protocol: Math.min(params.protocol, revision),
        supported,
        agent: 'fake-agent',
        site: 'fake',
      });
    }
    case 'plan':
      return ok(id, { changes: [{ action: 'create' }] });
    case 'apply': {
      if (mode.mode === 'refuse-apply') {
        return revision >= AHEAD
          ? fail(id, 'quota-exceeded', 'a revision-5 refusal this controller has no name for')
          : fail(id, 'conflict', 'table 101 holds routes Uplink does not own');
      }
      if (mode.mode === 'no-changes') {
        writeJson('state.json', { ...state, applied: params.generation });
        return ok(id, applyResult(params.generation, [], null, info(params.generation)));
      }
      const pending = {
        ...info(params.generation),
        deadline: Date.now() + params.confirmWithinMs,
      };
      writeJson('state.json', { ...state, pending });
      return ok(id, applyResult(params.generation, CHANGES, pending, null));
    }
    case 'confirm':
      if (state.pending?.generation !== params.generation) {
        return fail(id, 'not-pending', `generation ${params.generation} is not pending`);
      }
      writeJson('state.json', { pending: null, applied: params.generation });
      return ok(id, {
        generation: params.generation,
        applied: info(params.generation),
        alreadyConfirmed: false,
      });
    case 'revert': {
      writeJson('state.json', { pending: null, applied: null });
      const generation = state.pending?.generation ?? state.applied ?? 'none';
      return ok(id, {
        reverted: { generation, hash: HASH, reason: 'requested', at: Date.now(), result: 'ok' },
        changes: CHANGES,
        applied: null,
      });
    }
    case 'status':
      return ok(id, {
        agent: 'fake-agent',
        protocol: 1,
        site: 'fake',
        applied: state.applied === null ? null : info(state.applied),
        pending: state.pending === null ? null : { ...info(state.pending.generation), ...state.pending },
        lastRevert: null,
        owned: { rules: 0, routes: 0, nftRules: null, sysctls: 0 },
        facts: { interfaces: 1, providers: [] },
        health: [],
        drift: null,
        now: Date.now(),
      });
    default:
      return fail(id, 'unknown-method', `unknown method ${String(method)}`);
  }
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return fail(null, 'bad-request', 'not JSON');
  }
  if (req?.v !== 1) return fail(req?.id ?? null, 'unsupported-version', 'protocol version 1 only');
  queue = queue.then(() => handle(req));
});
lines.on('close', () => {
  queue.then(() => process.exit(0));
});
