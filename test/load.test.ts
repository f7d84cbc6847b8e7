import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTasks } from '../src/engine/load.js';
import { kinds } from '../src/commands/kinds.js';
import { UserError } from '../src/util/errors.js';
import { evaluate, parseRef, truthy } from '../src/engine/expressions.js';

async function errorsOf(source: string, config?: unknown): Promise<string> {
  try {
    await parseTasks(source, '/x/stigmer.tasks.yaml', 'stigmer.tasks.yaml', config === undefined ? { kinds } : { config: async () => config, kinds });
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.ok(!/\n\s+at /.test(err.message), 'no stack trace in the message');
    return err.message;
  }
  assert.fail('expected the file to be rejected');
}

const firstLines = (msg: string): string[] => msg.split('\n').filter((l) => l.startsWith('stigmer.tasks.yaml:'));

test('a valid file loads with its tasks in order', async () => {
  const f = await parseTasks(
    'version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: "true" }\n  b:\n    uses: exec\n    needs: [a]\n    with: { command: echo, args: ["${{ tasks.a.outputs.stdout }}"] }\n',
    '/x/f.yaml',
    'f.yaml',
    { kinds },
  );
  assert.deepEqual([...f.tasks.keys()], ['a', 'b']);
  assert.deepEqual(f.tasks.get('b')!.needs, ['a']);
});

test('YAML syntax error: position, the line and a caret', async () => {
  const msg = await errorsOf('version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: "x" \n');
  assert.match(msg, /^stigmer\.tasks\.yaml:\d+:\d+: /);
  assert.match(msg, /\n\s+\d+ \| /);
  assert.match(msg, /\^/);
});

test('unknown need, with did-you-mean, at the need itself', async () => {
  const msg = await errorsOf(
    [
      'version: 1',
      'tasks:',
      '  resolve-config:',
      '    uses: exec',
      '    with: { command: "true" }',
      '  start-server:',
      '    uses: exec',
      '    needs: [resolve-config, resolv-config]',
      '    with: { command: "true" }',
      '',
    ].join('\n'),
  );
  assert.deepEqual(firstLines(msg), ['stigmer.tasks.yaml:8:29: tasks.start-server.needs[1]: unknown task "resolv-config" (did you mean "resolve-config"?)']);
  assert.ok(msg.includes('  8 |     needs: [resolve-config, resolv-config]\n    |                             ^^^^^^^^^^^^^'), msg);
});

test('every error of the file is reported, in file order', async () => {
  const msg = await errorsOf(
    [
      'version: 1',
      'tasks:',
      '  a:',
      '    uses: exce',
      '    with: { command: "true" }',
      '  b:',
      '    uses: exec',
      '    colour: red',
      '    with: { command: "true" }',
      '  c:',
      '    uses: exec',
      '    needs: [nope]',
      '    with: { command: "${{ tasks.a.outputs.stdout }}" }',
      '',
    ].join('\n'),
  );
  assert.deepEqual(firstLines(msg), [
    'stigmer.tasks.yaml:4:11: tasks.a.uses: unknown task kind "exce" (did you mean "exec"?) (known: exec, process, wait, wait-port, download' + firstLines(msg)[0]!.split('wait-port, download')[1],
    'stigmer.tasks.yaml:8:5: unknown key "tasks.b.colour" (expected one of: uses, description, needs, if, optional, timeout, env, with, hints)',
    'stigmer.tasks.yaml:12:13: tasks.c.needs[0]: unknown task "nope"',
    'stigmer.tasks.yaml:13:23: tasks.c.with.command: ${{ tasks.a.outputs.stdout }} refers to task "a", which is not among the needs of "c" (add it to needs)',
  ]);
  assert.match(msg, /4 errors in stigmer\.tasks\.yaml$/);
});

test('a cycle prints its path', async () => {
  const msg = await errorsOf(
    ['version: 1', 'tasks:', '  a:', '    uses: exec', '    needs: [c]', '    with: { command: "true" }', '  b:', '    uses: exec', '    needs: [a]', '    with: { command: "true" }', '  c:', '    uses: exec', '    needs: [b]', '    with: { command: "true" }', ''].join('\n'),
  );
  assert.deepEqual(firstLines(msg), ['stigmer.tasks.yaml:9:13: dependency cycle: a -> c -> b -> a']);
});

test('duplicate task names are an error (YAML would keep the last silently)', async () => {
  const msg = await errorsOf('version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: "true" }\n  a:\n    uses: exec\n    with: { command: "false" }\n');
  assert.deepEqual(firstLines(msg), ['stigmer.tasks.yaml:6:3: duplicate task "a" (first defined on line 3)']);
});

test('schema: missing uses, wrong types, bad duration, wrong version', async () => {
  const msg = await errorsOf(
    ['version: 2', 'tasks:', '  a:', '    with: { command: "true" }', '  b:', '    uses: exec', '    timeout: soon', '    needs: b-and-c', '    with: { command: "true" }', ''].join('\n'),
  );
  assert.deepEqual(firstLines(msg), [
    'stigmer.tasks.yaml:1:10: Expected version to be 1, got 2',
    'stigmer.tasks.yaml:3:3: missing required key "tasks.a.uses"',
    'stigmer.tasks.yaml:7:14: Expected tasks.b.timeout to be a duration like "250ms", "30s", "2m", "1h", or a number of milliseconds, got "soon"',
    'stigmer.tasks.yaml:8:12: Expected tasks.b.needs to be a list, got "b-and-c"',
  ]);
});

test('kind parameters are checked: unknown key in with', async () => {
  const msg = await errorsOf('version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: "true", arg: [x] }\n');
  assert.deepEqual(firstLines(msg), ['stigmer.tasks.yaml:5:30: unknown key "tasks.a.with.arg" (did you mean "args"?)']);
});

test('references: unknown root, code instead of a path, unknown task, unknown config key', async () => {
  const msg = await errorsOf(
    [
      'version: 1',
      'tasks:',
      '  a:',
      '    uses: exec',
      '    with:',
      '      command: "${{ secrets.X }}"',
      '      args: ["${{ env.A || env.B }}", "${{ tasks.zz.outputs.x }}", "${{ config.backend.locl }}"]',
      '',
    ].join('\n'),
    { backend: { local: {} } },
  );
  const lines = firstLines(msg);
  assert.equal(lines.length, 4, msg);
  assert.equal(lines[0], 'stigmer.tasks.yaml:6:17: tasks.a.with.command: unknown name "secrets" in "secrets.X" (expected config, env or tasks)');
  assert.match(lines[1]!, /^stigmer\.tasks\.yaml:7:15: tasks\.a\.with\.args\[0\]: "env\.A \|\| env\.B" is not a reference: only dotted paths/);
  assert.equal(lines[2], 'stigmer.tasks.yaml:7:40: tasks.a.with.args[1]: unknown task "zz" in ${{ tasks.zz.outputs.x }}');
  assert.equal(lines[3], 'stigmer.tasks.yaml:7:69: tasks.a.with.args[2]: unknown config key "config.backend.locl" (did you mean "local"?)');
});

test('expressions: whole values keep their type, embedded ones interpolate', () => {
  const scope = { config: { a: { on: true, port: 7233 } }, env: { HOME: '/h' }, tasks: { t: { outputs: { addr: { host: 'x' } } } } };
  assert.equal(evaluate('${{ config.a.on }}', scope), true);
  assert.equal(evaluate('${{config.a.port}}', scope), 7233);
  assert.equal(evaluate('port ${{ config.a.port }} at ${{ env.HOME }}', scope), 'port 7233 at /h');
  assert.equal(evaluate('${{ env.MISSING }}', scope), '');
  assert.equal(evaluate('${{ tasks.t.outputs.addr.host }}', scope), 'x');
  assert.throws(() => evaluate('${{ tasks.t.outputs.nope }}', scope), /tasks\.t\.outputs\.nope is not set \(t outputs: addr\)/);
  assert.equal(typeof parseRef('a + b'), 'string');
  assert.equal(truthy('false'), false);
  assert.equal(truthy(''), false);
  assert.equal(truthy('yes'), true);
});

test('the managed-Ollama kinds are checked against the schema: unknown and missing keys, wrong values, at file:line:col', async () => {
  const msg = await errorsOf(
    [
      'version: 1',
      'tasks:',
      '  find:',
      '    uses: find-ollama',
      '    with: { ollama: {}, hom: /x }',
      '  use:',
      '    uses: use-ollama',
      '    with: { found: {}, managed: sometimes }',
      '  pull:',
      '    uses: pull-model',
      '    with: { base_url: "http://127.0.0.1:11434", modle: qwen2.5-coder:7b }',
      '',
    ].join('\n'),
  );
  assert.deepEqual(firstLines(msg), [
    'stigmer.tasks.yaml:5:5: missing required key "tasks.find.with.home"',
    'stigmer.tasks.yaml:5:25: unknown key "tasks.find.with.hom" (did you mean "home"?)',
    'stigmer.tasks.yaml:8:33: Expected tasks.use.with.managed to be auto, true or false (backend.local.llm.ollama.managed), got "sometimes"',
    'stigmer.tasks.yaml:11:5: missing required key "tasks.pull.with.model"',
    'stigmer.tasks.yaml:11:49: unknown key "tasks.pull.with.modle" (did you mean "model"?)',
  ]);
});
