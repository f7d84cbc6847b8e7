/**
 * Fuzzing what a user (or a hostile file) can hand stigmer: tasks files, config files, agent
 * files, state files, paths and environment variables, mutated from real ones with a fixed seed.
 * Every case must end as exit 0, or a UserError with exit 2 (1 where documented) whose message is
 * positioned (`file:line:col:` for a file, the variable's name for the environment), with no
 * stack trace, no raw control character, and within a time bound. The readers run in-process (a
 * few hundred cases in seconds); a sample of cases runs through the real CLI.
 *
 * A failure prints the seed and the case number and input: rerun with FUZZ_SEED to reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTasks } from '../src/engine/load.js';
import { buildGraph } from '../src/engine/graph.js';
import { kinds } from '../src/commands/kinds.js';
import { checkConfigSource } from '../src/stack/config/file.js';
import { loadConfig } from '../src/stack/config/index.js';
import { CONFIG_KEYS } from '../src/stack/config/keys.js';
import { defaultConfigText } from '../src/stack/config/template.js';
import { checkAgentSource } from '../src/stack/client/agent-file.js';
import { makePrivateDir } from '../src/util/private-dir.js';
import { readStatus } from '../src/engine/inspect.js';
import { loggedTasks } from '../src/engine/logs.js';
import { UserError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { cleanupHome, mulberry32 as rng, runCli, tempHome } from './helpers.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261202);
/** FUZZ_SCALE=10 runs ten times the cases (to hunt, not in the suite). */
const SCALE = Number(process.env['FUZZ_SCALE'] ?? 1);
/** A bound against a hang, far above what a case takes (milliseconds). */
const CASE_MS = 5_000;


type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** What YAML (and stigmer's expressions) give meaning to, and what breaks naive readers. */
const TOKENS = [
  '&a ', '*a', '*nope', '&b [*a, *a, *a, *a, *a, *a, *a, *a]', '<<: *a', '!!set ', '!!binary ', '!custom ', '%YAML 1.1\n---\n', '\n---\n', '\n...\n',
  '? [a, b]\n: x\n', '[', ']', '{', '}', '[[[[[[[[[[', ': ', '- ', ', ', '#', '"', "'", '|\n  ', '>-\n  ', '\t', '\r', '\0', '\x1b[31m', '\u202e', '\ufeff',
  '1e309', '-.inf', '.nan', '0x1F', '0o17', '-0', '9'.repeat(40), 'null', '~', 'true', 'yes', '""', "''",
  '${{', '}}', '${{ tasks.a.outputs.x }}', '${{ config.nope }}', '${{ env.HOME }}', '${{ 1 + }}', '${{ tasks. }}',
  'needs: [a, a, zz]', 'uses: exce', 'uses: process', 'timeout: -1', 'timeout: 10y', 'optional: maybe', 'version: 2', 'tasks: ~',
  'x'.repeat(300), 'ü', '😀', '\\', '%', '@', '`', '|', '>', '&', '*', '!',
];

function mutate(r: Rand, text: string): string {
  let s = text;
  for (let n = 1 + int(r, 4); n > 0; n--) {
    const at = int(r, s.length + 1);
    switch (int(r, 7)) {
      case 0:
        s = s.slice(0, at) + pick(r, TOKENS) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + int(r, 40));
        break;
      case 2: {
        const lines = s.split('\n');
        const i = int(r, lines.length);
        lines.splice(i, 0, lines[i] ?? '');
        s = lines.join('\n');
        break;
      }
      case 3:
        s = s.slice(0, at) + String.fromCharCode(int(r, 0x110)) + s.slice(at + 1);
        break;
      case 4:
        s = s.slice(0, at);
        break;
      case 5: {
        const lines = s.split('\n');
        const [i, j] = [int(r, lines.length), int(r, lines.length)];
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        s = lines.join('\n');
        break;
      }
      default: {
        const lines = s.split('\n');
        const i = int(r, lines.length);
        lines[i] = (r() < 0.5 ? ' '.repeat(1 + int(r, 3)) : '') + (lines[i] ?? '').replace(/^ {1,2}/, '');
        s = lines.join('\n');
      }
    }
  }
  return s;
}

/** Why `err` is not an acceptable ending for `input`; undefined when it is. */
function badEnding(err: unknown, positioned: RegExp): string | undefined {
  if (!(err instanceof UserError)) return `not a UserError: ${(err as Error)?.stack ?? String(err)}`;
  if (err.exitCode !== 2 && err.exitCode !== 1) return `exit ${err.exitCode}`;
  if (/\n\s+at \S/.test(err.message)) return 'a stack trace in the message';
  if (/[\x00-\x08\x0b-\x1f\x7f\u202e]/.test(err.message)) return 'a raw control character in the message';
  if (!positioned.test(err.message)) return `not positioned: ${err.message.split('\n')[0]}`;
  return undefined;
}

/** Run `cases` in-process: each must finish in time and end well. */
async function fuzz(name: string, n: number, make: (r: Rand) => string, run: (input: string) => Promise<unknown> | unknown, positioned: RegExp): Promise<void> {
  const r = rng(SEED ^ [...name].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 7));
  for (let i = 0; i < n * SCALE; i++) {
    const input = make(r);
    const started = performance.now();
    let problem: string | undefined;
    try {
      await run(input);
    } catch (err) {
      problem = badEnding(err, positioned);
    }
    const ms = performance.now() - started;
    if (ms > CASE_MS) problem = `took ${Math.round(ms)} ms`;
    if (problem) assert.fail(`${name} case ${i} (FUZZ_SEED=${SEED}): ${problem}\ninput: ${JSON.stringify(input).slice(0, 2000)}`);
  }
}

const STACK = readFileSync(join(packageRoot, 'stigmer.tasks.yaml'), 'utf8');
const SMALL = [
  'version: 1',
  'tasks:',
  '  a:',
  '    uses: exec',
  '    with: { command: echo, args: [hi] }',
  '  b:',
  '    uses: exec',
  '    needs: [a]',
  '    timeout: 30s',
  '    env: { X: "${{ tasks.a.outputs.stdout }}" }',
  '    with: { command: "true" }',
  '',
].join('\n');
const AGENT = 'name: helper\ninstructions: |\n  Be brief.\nmodel: qwen2.5-coder:7b\n';

test('fuzz: tasks files (the stack file and a small one, mutated)', async () => {
  await fuzz(
    'tasks',
    260,
    (r) => mutate(r, r() < 0.5 ? STACK : SMALL),
    async (source) => {
      const file = await parseTasks(source, '/x/f.yaml', 'f.yaml', { kinds });
      buildGraph(file);
    },
    /^f\.yaml:\d+:\d+: /,
  );
});

test('fuzz: config files and agent files', async () => {
  const template = defaultConfigText('/home/u/.stigmer');
  await fuzz('config', 150, (r) => mutate(r, template), (s) => checkConfigSource('config.yaml', s), /^config\.yaml:\d+:\d+: /);
  await fuzz('agent', 60, (r) => mutate(r, AGENT), (s) => checkAgentSource(s, 'agent.yaml'), /^agent\.yaml:\d+:\d+: /);
});

test('fuzz: environment variables of the config cascade', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const vars = CONFIG_KEYS.flatMap((k) => (k.env ? [k.env] : []));
  const values = ['', ' ', 'x', '-1', '0', '65536', '1e309', 'NaN', 'true', 'ollama', 'anthropic', 'http://', 'https://h:1', 'h:99999', ':', '\0', '\x1b[2J', 'a'.repeat(5000), '~/x', '../../etc', '😀'];
  const r = rng(SEED);
  for (let i = 0; i < 150; i++) {
    const env: Record<string, string> = { STIGMER_HOME: home };
    for (let n = 1 + int(r, 3); n > 0; n--) env[pick(r, vars)] = r() < 0.7 ? pick(r, values) : mutate(r, pick(r, values));
    const started = performance.now();
    let problem: string | undefined;
    try {
      loadConfig({ home, cwd: home, env });
    } catch (err) {
      problem = badEnding(err, /(STIGMER_|TEMPORAL_)[A-Z_]+/);
    }
    if (performance.now() - started > CASE_MS) problem = 'too slow';
    if (problem) assert.fail(`env case ${i} (FUZZ_SEED=${SEED}): ${problem}\nenv: ${JSON.stringify(env).slice(0, 2000)}`);
  }
});

test('fuzz: paths given as a data dir or home', async (t) => {
  const base = tempHome();
  t.after(() => cleanupHome(base));
  writeFileSync(join(base, 'file'), 'x');
  mkdirSync(join(base, 'dir'));
  const parts = ['file', 'dir', '..', '.', '', 'new', 'a b', '\u202e', 'x'.repeat(300), '/proc', '/proc/self', '/sys', '/dev/null', '/etc/passwd', '/'];
  const r = rng(SEED + 1);
  for (let i = 0; i < 120; i++) {
    const segs = Array.from({ length: 1 + int(r, 4) }, () => pick(r, parts));
    const path = segs[0]!.startsWith('/') ? segs.join('/') : join(base, ...segs);
    const started = performance.now();
    try {
      makePrivateDir(path);
    } catch (err) {
      const problem = badEnding(err, /^stigmer: cannot use .* as the data dir: /);
      if (problem) assert.fail(`path case ${i}: ${problem}\npath: ${JSON.stringify(path)}`);
    }
    assert.ok(performance.now() - started < CASE_MS, `path case ${i} took too long: ${JSON.stringify(path)}`);
  }
});

/** A state file as a stack leaves it: a service, a download, an exec, with needs and outputs. */
function richState(home: string): Record<string, unknown> {
  return {
    version: 1,
    file: join(home, 'stigmer.tasks.yaml'),
    seq: 3,
    tasks: {
      dl: { kind: 'download', status: 'done', seq: 1, needs: [], outputs: { dest: join(home, 'bin') }, undo: [{ type: 'remove-path', path: join(home, 'bin', 'x') }] },
      svc: {
        kind: 'process',
        status: 'ready',
        seq: 2,
        needs: ['dl'],
        outputs: { address: 'localhost:1', pid: 4194000 },
        lastProbe: 'HTTP 200',
        // a pid no process has (pid_max is 4194304 at most), with a start time no process matches
        undo: [{ type: 'stop-process', pid: 4194000, pgid: 4194000, startTime: 1, command: 'node svc.js', signal: 'SIGTERM', graceMs: 10, startedAt: '2026-01-01T00:00:00.000Z' }],
      },
      once: { kind: 'exec', status: 'failed', seq: 3, needs: ['svc'], error: 'exited with code 1', undo: [] },
    },
  };
}

/** Replace the value at a random path of `data` with a hostile one. */
function mutateValue(r: Rand, data: unknown): unknown {
  // as JSON text, parsed afresh each time: no value is shared (or made circular) between two places
  const hostile = ['null', '"x"', '""', '0', '-1', '1', '1.5', String(2 ** 53), '[]', '{}', '[null]', 'true', '{"type":"stop-process"}', `"${'a'.repeat(10_000)}"`, '[[[[[[]]]]]]', '{"__proto__":{"x":1}}', '{"constructor":1}'];
  const copy = JSON.parse(JSON.stringify(data)) as unknown;
  for (let n = 1 + int(r, 3); n > 0; n--) {
    let cur = copy as Record<string, unknown>;
    for (;;) {
      const keys = cur && typeof cur === 'object' ? Object.keys(cur) : [];
      if (!keys.length) break;
      const k = pick(r, keys);
      const next = cur[k];
      if (r() < 0.35 || !next || typeof next !== 'object') {
        cur[k] = JSON.parse(pick(r, hostile)) as unknown;
        break;
      }
      cur = next as Record<string, unknown>;
    }
  }
  return copy;
}

test('fuzz: state files, read by status and logs (structure and bytes)', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const r = rng(SEED + 3);
  const base = richState(home);
  for (let i = 0; i < 150 * SCALE; i++) {
    const text = r() < 0.7 ? JSON.stringify(mutateValue(r, base)) : mutate(r, JSON.stringify(base, null, 2));
    writeFileSync(join(home, 'state.json'), text);
    const started = performance.now();
    try {
      readStatus(home);
      loggedTasks(home);
    } catch (err) {
      const problem = badEnding(err, /state\.json/);
      if (problem) assert.fail(`state case ${i} (FUZZ_SEED=${SEED}): ${problem}\nstate: ${text.slice(0, 2000)}`);
    }
    assert.ok(performance.now() - started < CASE_MS, `state case ${i} took too long`);
  }
});

test('fuzz through the CLI: a sample of files, state files, paths and variables; exit 0, 1 or 2, no trace, no hang', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const r = rng(SEED + 2);
  type Case = { args: string[]; env?: Record<string, string>; setup?: () => void };
  const cases: Case[] = [];
  for (let i = 0; i < 6; i++) {
    const text = mutate(r, SMALL);
    cases.push({ args: ['validate', '-f', 'f.yaml'], setup: () => writeFileSync(join(home, 'f.yaml'), text) });
  }
  for (let i = 0; i < 4; i++) {
    const text = mutate(r, defaultConfigText(home));
    cases.push({ args: pick(r, [['config', 'list'], ['local', 'status']]), setup: () => writeFileSync(join(home, 'config.yaml'), text) });
  }
  for (let i = 0; i < 4; i++) {
    const text = JSON.stringify(mutateValue(r, richState(home)));
    cases.push({ args: [...pick(r, [['status'], ['status', '--json'], ['logs']]), '--data-dir', home], setup: () => writeFileSync(join(home, 'state.json'), text) });
  }
  const state = JSON.stringify({ version: 1, seq: 1, tasks: { a: { kind: 'exec', status: 'done', undo: [], seq: 1 } } });
  for (let i = 0; i < 4; i++) {
    const text = r() < 0.5 ? mutate(r, state) : state.slice(0, int(r, state.length));
    cases.push({ args: [...pick(r, [['status'], ['status', '--json'], ['logs'], ['down']]), '--data-dir', home], setup: () => writeFileSync(join(home, 'state.json'), text) });
  }
  for (const p of ['/proc/stigmer-fuzz', join(home, 'config.yaml'), '/dev/null', `${home}/${'d'.repeat(300)}/x`]) {
    cases.push({ args: ['validate', '-f', join(home, 'f.yaml'), '--data-dir', p], env: { STIGMER_HOME: p }, setup: () => writeFileSync(join(home, 'f.yaml'), SMALL) });
  }
  for (const [k, v] of [['STIGMER_TEMPORAL_PORT', '1e309'], ['STIGMER_LLM_PROVIDER', 'nope\x1b[2J'], ['STIGMER_SERVER_ADDRESS', ':::'], ['STIGMER_HOME', '']] as const) {
    cases.push({ args: ['local', 'status'], env: { [k]: v } });
  }
  const run = async (c: Case): Promise<void> => {
    const out = await runCli(c.args, { home, cwd: home, timeout: 30_000, ...(c.env ? { env: c.env } : {}) });
    const what = `${c.args.join(' ')} ${JSON.stringify(c.env ?? {})}`;
    assert.equal(out.signal, null, `hung: ${what}`);
    // 3: `status` of a stopped stack (LSB)
    assert.ok(out.code === 0 || out.code === 1 || out.code === 2 || (out.code === 3 && c.args.includes('status')), `${what}: exit ${out.code}\n${out.stderr}`);
    assert.doesNotMatch(out.stderr + out.stdout, /internal error|\n\s+at \S/, what);
    if (out.code === 2 && c.args[0] === 'validate' && !c.env) assert.match(out.stderr, /^(f\.yaml:\d+:\d+: |\S*config\.yaml:\d+:\d+: )/m, what);
  };
  // sequentially: the cases share the home, and two at a time is all the machine has
  for (const c of cases) {
    c.setup?.();
    await run(c);
  }
});
