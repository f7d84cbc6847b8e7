/**
 * Input that cannot hurt: what YAML can say and plain data cannot hold (alias bombs, unknown and
 * recursive aliases, collection keys, non-finite numbers, repeated keys, a second document) is a
 * positioned diagnostic with exit 2 in every reader, never a stack trace or a process warning;
 * thousands of errors are reported in linear time and capped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTasks } from '../src/engine/load.js';
import { kinds } from '../src/commands/kinds.js';
import { checkConfigSource } from '../src/stack/config/file.js';
import { checkAgentSource } from '../src/stack/client/agent-file.js';
import { formatDiagnostics, MAX_SHOWN } from '../src/util/diagnostics.js';
import { UserError } from '../src/util/errors.js';
import { cleanupHome, runCli, tempHome } from './helpers.js';

/** The message a reader rejects `source` with (a UserError, exit 2, no stack). */
async function rejection(read: () => unknown): Promise<string> {
  try {
    await read();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${(err as Error)?.stack ?? String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace');
    return err.message;
  }
  assert.fail('expected the input to be rejected');
}

const tasks = (source: string): Promise<string> => rejection(() => parseTasks(source, '/x/t.yaml', 't.yaml', { kinds }));
const config = (source: string): Promise<string> => rejection(() => checkConfigSource('config.yaml', source));
const agent = (source: string): Promise<string> => rejection(() => checkAgentSource(source, 'agent.yaml'));
const heads = (msg: string): string[] => msg.split('\n').filter((l) => /^[\w.]+:\d+:\d+: /.test(l));

const LAUGHS = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)].join('\n');

test('alias bombs and unknown or recursive aliases: file:line:col in every reader', async () => {
  // a billion laughs: reported at the alias that passes the bound, before any expansion
  for (const read of [tasks, config, agent]) {
    const msg = await read(`${LAUGHS}\n`);
    assert.match(heads(msg)[0]!, /^[\w.]+:5:36: aliases expand this document to more than 100000 values \(each \*d copies 11111\)$/);
  }
  assert.deepEqual(heads(await tasks('version: 1\ntasks:\n  a:\n    uses: exec\n    with: *nope\n')), ['t.yaml:5:11: unknown alias *nope: no anchor &nope before it']);
  assert.deepEqual(heads(await config('llm: *nope\n')), ['config.yaml:1:6: unknown alias *nope: no anchor &nope before it']);
  assert.deepEqual(heads(await tasks('version: 1\ntasks:\n  a: &a\n    uses: exec\n    with: { command: x, args: [*a] }\n')), [
    't.yaml:5:32: alias *a is inside the node it stands for (a structure that contains itself)',
  ]);
  // an anchor used a reasonable number of times is fine (yaml's own guard refused 101 uses)
  const many = ['version: 1', 'x: &cmd { command: "true" }', 'tasks:', ...Array.from({ length: 150 }, (_, i) => `  t${i}: { uses: exec, with: *cmd }`), ''].join('\n');
  const err = await tasks(many);
  assert.deepEqual(heads(err), ['t.yaml:2:1: unknown key "x" (expected one of: version, tasks)'], 'only the schema complains');
});

test('repeated keys in a tasks file: each reported where it repeats, with the first line', async () => {
  const msg = await tasks(['version: 1', 'tasks:', '  a:', '    uses: exec', '    with: { command: echo, command: ls }', 'tasks:', '  b: { uses: exec, with: { command: x } }', ''].join('\n'));
  assert.deepEqual(heads(msg), ['t.yaml:5:28: tasks.a.with: duplicate key "command" (first defined on line 5)', 't.yaml:6:1: duplicate key "tasks" (first defined on line 2)']);
  assert.match(msg, /\n {2}6 \| tasks:\n {4}\| \^{5}/);
  // config.yaml and agent files keep yaml's wording, at the repeated key
  assert.deepEqual(heads(await config('llm:\n  provider: ollama\n  provider: openai\n')), ['config.yaml:3:3: invalid YAML: Map keys must be unique']);
});

test('non-finite numbers are refused at load, quoting the source text', async () => {
  assert.deepEqual(heads(await tasks('version: 1\ntasks:\n  a:\n    uses: exec\n    timeout: 1e309\n    with: { command: "true" }\n')), ['t.yaml:5:14: expected a finite number, got 1e309']);
  assert.deepEqual(heads(await config('backend:\n  local:\n    temporal:\n      port: -.inf\n')), ['config.yaml:4:13: expected a finite number, got -.inf']);
  assert.deepEqual(heads(await agent('name: a\ninstructions: x\ntemperature: .NaN\n')), ['agent.yaml:3:14: expected a finite number, got .NaN']);
});

test('library wording never reaches the user: a second document, collection keys, tags, deep nesting', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const multi = await tasks('version: 1\ntasks: {}\n---\nx: 1\n');
  assert.deepEqual(heads(multi), ['t.yaml:3:1: a second YAML document starts here; the file must hold one document (remove the "---" line and what follows, or merge them)']);
  assert.deepEqual(heads(await tasks('version: 1\ntasks:\n  ? [a, b]\n  : { uses: exec }\n')), ['t.yaml:3:5: a key must be text or a number, got a list']);
  assert.deepEqual(heads(await config('? { a: 1 }\n: x\n')), ['config.yaml:1:3: a key must be text or a number, got a map']);
  assert.match(heads(await tasks('%YAML 1.1\n---\nversion: 1\ntasks:\n  a: { uses: exec, with: !!set { command: x } }\n'))[0]!, /^t\.yaml:5:26: unsupported tag: tag:yaml\.org,2002:set /);
  const deep = await tasks(`version: 1\ntasks: ${'['.repeat(5000)}\n`);
  assert.deepEqual(heads(deep), ['t.yaml:2:72: nested more than 64 levels deep']);
  assert.ok(deep.split('\n').every((l) => l.length < 200), 'a long line is shown as a window');
  const block = await tasks(`version: 1\ntasks:\n${Array.from({ length: 80 }, (_, i) => `${' '.repeat(2 * i + 2)}k${i}:`).join('\n')} x\n`);
  assert.match(heads(block)[0]!, /^t\.yaml:\d+:\d+: nested more than 64 levels deep$/);
  for (const m of [multi, deep, block]) assert.doesNotMatch(m, /parseAllDocuments|call stack|mapAsMap/);
  assert.deepEqual(warnings, [], 'no process warning');
});

test('a NUL or terminal escape in the file is shown escaped, with the caret still under the text', async () => {
  const msg = await tasks('version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: "a\0b", x: "\x1b[31m" }\n');
  assert.ok(!/[\0\x1b]/.test(msg), 'no raw control character');
  const [, shown, caret] = /\n {2}5 \| (.*)\n {4}\| (.*)\n/.exec(msg)!;
  assert.equal(shown, 'with: { command: "a\\x00b", x: "\\x1b[31m" }'.padStart(46));
  assert.equal(caret, `${' '.repeat(shown!.indexOf(' x:') + 1)}^`, 'the caret under the key x');
});

test('thousands of errors: linear, and the output capped at the first 50 then "and N more"', async () => {
  const n = 12_000;
  const lines = ['version: 1', 'tasks:'];
  for (let i = 0; i < n; i++) lines.push(`  t${i}:`, '    uses: exec', `    needs: [t${i}x]`, '    with: { command: "true" }');
  const started = Date.now();
  const msg = await tasks(`${lines.join('\n')}\n`);
  // a bound against a hang, not a benchmark: the quadratic version took minutes for this
  assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
  assert.equal(heads(msg).length, MAX_SHOWN);
  assert.equal(heads(msg)[0], 't.yaml:5:13: tasks.t0.needs[0]: unknown task "t0x" (did you mean "t0"?)');
  assert.match(msg, new RegExp(`\\n\\n\\.\\.\\. and ${n - MAX_SHOWN} more\\n\\n${n} errors in t\\.yaml$`));
  // formatting alone, with a short file
  assert.doesNotMatch(formatDiagnostics([{ file: 'f', line: 1, col: 1, message: 'm' }], 'x'), /more/);
});

test('CLI: an alias error is exit 2 with its position in validate, up and config list; local status still works', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  writeFileSync(join(home, 't.yaml'), 'version: 1\ntasks:\n  a:\n    uses: exec\n    with: *nope\n');
  for (const cmd of ['validate', 'up']) {
    const r = await runCli([cmd, '-f', 't.yaml'], { home });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^t\.yaml:5:11: unknown alias \*nope: no anchor &nope before it\n/m);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  }
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'config.yaml'), `${LAUGHS}\n`);
  const list = await runCli(['config', 'list'], { home });
  assert.equal(list.code, 2, list.stderr);
  assert.match(list.stderr, /config\.yaml:5:36: aliases expand this document to more than 100000 values/);
  const status = await runCli(['local', 'status'], { home });
  assert.equal(status.code, 3, status.stderr); // stopped
  assert.match(status.stdout, /Config: +\S+config\.yaml is invalid: \S+config\.yaml:5:36: aliases expand/);
  assert.doesNotMatch(status.stdout + status.stderr, /internal error|ReferenceError/);
});
