import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, freePort, runCli, sleep, tempHome } from './helpers.js';
import { runOnce, spawnCli, startServer, type Server } from './server-rig.js';
import { ApiError, type StigmerClient } from '../src/stack/client/index.js';

let home: string;
let server: Server;
let client: StigmerClient;
let env: Record<string, string | undefined>;

before(async () => {
  home = tempHome('stigmer-agent-cli-');
  server = await startServer(home);
  client = server.client;
  env = { STIGMER_SERVER_ADDRESS: server.address };
});

after(async () => {
  client?.close();
  await server?.stop();
  await cleanupHome(home);
});

const cli = (args: string[], extra: Record<string, string | undefined> = {}, input?: string) =>
  runCli(args, { home, env: { ...env, ...extra }, ...(input !== undefined ? { input } : {}) });

function file(name: string, text: string): string {
  const p = join(home, name);
  writeFileSync(p, text);
  return name;
}

async function drainQueue(): Promise<void> {
  for (const e of await client.listExecutions({ status: 'queued', limit: 1000 })) await client.cancelExecution(e.id);
}

test('agent list on an empty server says how to create one', async () => {
  const r = await cli(['agent', 'list']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'no agents yet (create one with: stigmer agent apply -f agent.yaml)\n');
});

test('agent apply: schema errors with file:line:col, the line and a caret, all at once, exit 2', async () => {
  const bad = file('bad.yaml', 'name: My Agent\ninstructions: 42\nmodle: qwen\n');
  const r = await cli(['agent', 'apply', '-f', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    [
      'bad.yaml:1:7: Expected name to be a name of lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters, got "My Agent"',
      '    |',
      '  1 | name: My Agent',
      '    |       ^^^^^^^^',
      '',
      'bad.yaml:2:15: Expected instructions to be a non-empty string, got 42',
      '    |',
      '  2 | instructions: 42',
      '    |               ^^',
      '',
      'bad.yaml:3:1: unknown key "modle" (did you mean "model"?)',
      '    |',
      '  3 | modle: qwen',
      '    | ^^^^^',
      '',
      '3 errors in bad.yaml',
      '',
    ].join('\n'),
  );

  const missing = file('missing.yaml', '# an agent\nname: helper\n');
  const m = await cli(['agent', 'apply', '-f', missing]);
  assert.equal(m.code, 2);
  assert.equal(m.stderr, ['missing.yaml:2:1: missing required key "instructions"', '    |', '  2 | name: helper', '    | ^', '', '1 error in missing.yaml', ''].join('\n'));

  const empty = file('empty.yaml', 'name: helper\ninstructions: "  "\n');
  const e = await cli(['agent', 'apply', '-f', empty]);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /^empty\.yaml:2:15: Expected instructions to be a non-empty string, got an empty string\n/);

  const list = file('list.yaml', '- name: a\n');
  const l = await cli(['agent', 'apply', '-f', list]);
  assert.equal(l.code, 2);
  assert.match(l.stderr, /^list\.yaml:1:1: Expected the file to be a mapping with name, instructions and optionally model, got a list \[\{"name":"a"\}\]\n/);
});

test('agent apply: YAML syntax errors, duplicate keys and unreadable files, exit 2', async () => {
  const syntax = file('syntax.yaml', 'name: ok\ninstructions: "unterminated\n');
  const s = await cli(['agent', 'apply', '-f', syntax]);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /^syntax\.yaml:\d+:\d+: invalid YAML: /);
  assert.match(s.stderr, /\n1 error in syntax\.yaml\n$/);

  const dup = file('dup.yaml', 'name: ok\ninstructions: a\nname: again\n');
  const d = await cli(['agent', 'apply', '-f', dup]);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /^dup\.yaml:3:1: invalid YAML: Map keys must be unique\n {4}\|\n {2}3 \| name: again\n {4}\| \^/);

  const gone = await cli(['agent', 'apply', '-f', 'nope.yaml']);
  assert.equal(gone.code, 2);
  assert.equal(gone.stderr, 'nope.yaml: cannot read the agent file: no such file\n');

  const noFlag = await cli(['agent', 'apply']);
  assert.equal(noFlag.code, 2);
  assert.match(noFlag.stderr, /required option '-f, --file <path>' not specified/);
});

test('agent apply creates then updates; list shows name, model, updated; delete removes', async () => {
  const f = file('greeter.yaml', '# yaml-language-server: $schema=../schemas/agent.schema.json\nname: greeter\ninstructions: |\n  Greet people warmly.\n');
  const created = await cli(['agent', 'apply', '-f', f]);
  assert.equal(created.stderr, '');
  assert.equal(created.code, 0);
  assert.equal(created.stdout, 'agent "greeter" created\n');
  assert.equal((await client.getAgent('greeter')).instructions, 'Greet people warmly.\n');

  const f2 = file('greeter2.yaml', 'name: greeter\ninstructions: Greet people briefly.\nmodel: qwen2.5-coder:7b\n');
  const updated = await cli(['agent', 'apply', '-f', f2]);
  assert.equal(updated.stdout, 'agent "greeter" updated\n');
  await cli(['agent', 'apply', '-f', file('a.yaml', 'name: a-second\ninstructions: x\n')]);

  const list = await cli(['agent', 'list']);
  assert.equal(list.code, 0);
  const lines = list.stdout.split('\n');
  assert.equal(lines[0], 'NAME      MODEL             UPDATED');
  assert.match(lines[1]!, /^a-second  \(runner default\)  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.match(lines[2]!, /^greeter   qwen2\.5-coder:7b  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(lines.length, 4);
  const json = await cli(['agent', 'list', '--json']);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { name: string }[]).map((a) => a.name),
    ['a-second', 'greeter'],
  );

  const del = await cli(['agent', 'delete', 'a-second']);
  assert.equal(del.code, 0);
  assert.equal(del.stdout, 'agent "a-second" deleted\n');
  const again = await cli(['agent', 'delete', 'a-second']);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'stigmer: agent "a-second" not found\n');
});

test('agent run streams chunks to stdout as they arrive and exits 0', async () => {
  await drainQueue();
  await client.putAgent('streamer', { instructions: 'Stream.' });
  const proc = spawnCli(['agent', 'run', 'streamer', '--message', 'say hello'], home, env);
  const claim = await client.claim('cli-test-runner', 10_000);
  assert.ok(claim);
  assert.equal(claim.execution.message, 'say hello');
  assert.equal(claim.agent.name, 'streamer');
  const id = claim.execution.id;
  await client.appendChunk(id, 'cli-test-runner', 'Hello');
  await proc.waitFor(/^Hello$/); // printed before the next chunk exists
  await client.appendChunk(id, 'cli-test-runner', ', world');
  await proc.waitFor(/^Hello, world$/);
  await client.complete(id, 'cli-test-runner');
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  assert.equal(proc.stdout(), 'Hello, world\n');
  assert.equal(proc.stderr(), '');
});

test('agent run: a succeeded execution with a warning (answer cut at the length limit) says so on stderr, exit 0', async () => {
  await drainQueue();
  await client.putAgent('cut', { instructions: 'Be long.' });
  const run = cli(['agent', 'run', 'cut', '-m', 'tell me everything']);
  const claim = await client.claim('cut-runner', 10_000);
  assert.ok(claim);
  await client.appendChunk(claim.execution.id, 'cut-runner', 'the first half');
  const done = await client.complete(claim.execution.id, 'cut-runner', { warning: 'the answer was cut at the length limit' });
  assert.equal(done.warning, 'the answer was cut at the length limit');
  const r = await run;
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'the first half\n');
  assert.equal(r.stderr, `stigmer: warning: execution ${claim.execution.id}: the answer was cut at the length limit\n`);
});

test('agent run reads the message from stdin when it is not a terminal', async () => {
  await drainQueue();
  await client.putAgent('reader', { instructions: 'Read.' });
  const run = cli(['agent', 'run', 'reader'], {}, 'from stdin\n');
  const claim = await client.claim('stdin-runner', 10_000);
  assert.equal(claim?.execution.message, 'from stdin');
  await client.appendChunk(claim!.execution.id, 'stdin-runner', 'got it\n');
  await client.complete(claim!.execution.id, 'stdin-runner');
  const r = await run;
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'got it\n');
});

test('agent run: a failed execution exits 1 with its reason', async () => {
  await drainQueue();
  await client.putAgent('failing', { instructions: 'Fail.' });
  const run = cli(['agent', 'run', 'failing', '-m', 'try']);
  const { id } = await runOnce(client, { runnerId: 'fail-runner', chunks: ['partial answer'], failWith: 'ollama: model "qwen2.5-coder:7b" not found, try pulling it first' });
  const r = await run;
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'partial answer\n');
  assert.equal(r.stderr, `stigmer: execution ${id} failed: ollama: model "qwen2.5-coder:7b" not found, try pulling it first\n`);
});

test('agent run: a re-queued execution says so and prints the new attempt', async () => {
  await drainQueue();
  await client.putAgent('retried', { instructions: 'Retry.' });
  const proc = spawnCli(['agent', 'run', 'retried', '-m', 'go'], home, env);
  const claim = await client.claim('dying-runner', 10_000);
  const id = claim!.execution.id;
  await client.appendChunk(id, 'dying-runner', 'first try');
  await proc.waitFor('first try');
  await client.release(id, 'dying-runner');
  await runOnce(client, { runnerId: 'next-runner', chunks: ['second try'], waitMs: 5000 });
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  assert.equal(proc.stdout(), 'first try\nsecond try\n');
  assert.equal(proc.stderr(), `stigmer: execution ${id} was handed back to the queue; its output starts again\n`);
});

test('agent run: Ctrl-C cancels the execution on the server and exits 130', async () => {
  await drainQueue();
  await client.putAgent('slow', { instructions: 'Slow.' });
  const proc = spawnCli(['agent', 'run', 'slow', '-m', 'take your time'], home, env);
  const claim = await client.claim('slow-runner', 10_000);
  const id = claim!.execution.id;
  await client.appendChunk(id, 'slow-runner', 'thinking');
  await proc.waitFor('thinking');
  process.kill(proc.pid, 'SIGINT');
  assert.deepEqual(await proc.exited, { code: 130, signal: null });
  assert.equal(proc.stdout(), 'thinking\n');
  assert.match(proc.stderr(), new RegExp(`stigmer: execution ${id} cancelled\\n$`));
  assert.equal((await client.getExecution(id)).status, 'cancelled');
  await assert.rejects(client.appendChunk(id, 'slow-runner', 'more'), (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === 'cancelled');
});

test('agent run: unknown agent exits 1; no message exits 2', async () => {
  const ghost = await cli(['agent', 'run', 'ghost', '-m', 'hi']);
  assert.equal(ghost.code, 1);
  assert.equal(ghost.stderr, 'stigmer: agent "ghost" not found (create it with: stigmer agent apply -f agent.yaml)\n');
  const empty = await cli(['agent', 'run', 'ghost']);
  assert.equal(empty.code, 2);
  assert.equal(empty.stderr, 'stigmer: the message is empty: pass --message TEXT (or pipe the message on stdin)\n');
});

test('server unreachable: exit 1 with a hint, no stack trace', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  for (const args of [['agent', 'list'], ['agent', 'run', 'x', '-m', 'hi'], ['agent', 'delete', 'x'], ['agent', 'apply', '-f', file('ok.yaml', 'name: ok\ninstructions: x\n')]]) {
    const r = await cli(args, { STIGMER_SERVER_ADDRESS: dead });
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, `stigmer: cannot reach stigmer-server at ${dead} (is it running? try: stigmer local start)\n`);
  }
});

test('the server address: --endpoint beats STIGMER_SERVER_ADDRESS, which beats backend.local.endpoint', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const flag = await cli(['agent', 'list', '--json', '--endpoint', server.address], { STIGMER_SERVER_ADDRESS: dead });
  assert.equal(flag.code, 0, flag.stderr);

  const configHome = tempHome('stigmer-agent-config-');
  try {
    writeFileSync(join(configHome, 'config.yaml'), `backend:\n  local:\n    endpoint: ${server.address}\n`);
    const fromConfig = await runCli(['agent', 'list', '--json'], { home: configHome, env: { STIGMER_SERVER_ADDRESS: undefined } });
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    assert.ok(Array.isArray(JSON.parse(fromConfig.stdout)));
    const envWins = await runCli(['agent', 'list'], { home: configHome, env: { STIGMER_SERVER_ADDRESS: dead } });
    assert.equal(envWins.code, 1);
    assert.equal(envWins.stderr, `stigmer: cannot reach stigmer-server at ${dead} (is it running? try: stigmer local start)\n`);
  } finally {
    await cleanupHome(configHome);
  }

  const bad = await cli(['agent', 'list', '--endpoint', 'nope']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'stigmer: Expected --endpoint to be host:port (e.g. localhost:50051), got "nope"\n');
  await sleep(0);
});

test('agent apply and agent run warn when the agent\'s model belongs to another provider', async () => {
  await drainQueue();
  const spec = file('mismatch.yaml', 'name: mismatch\ninstructions: Be brief.\nmodel: llama3.2\n');
  const applied = await cli(['agent', 'apply', '-f', spec], { STIGMER_LLM_PROVIDER: 'anthropic' });
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal(applied.stdout, 'agent "mismatch" created\n');
  const warning =
    'stigmer: warning: agent "mismatch": model "llama3.2" looks like an Ollama model, but the stack uses anthropic: the provider will likely refuse it. Use a model of anthropic (default claude-sonnet-4-5), or leave model out to use the runner\'s default.\n';
  assert.equal(applied.stderr, warning);
  // the same model under ollama (the default provider) is fine
  const fine = await cli(['agent', 'apply', '-f', spec]);
  assert.equal(fine.stderr, '');

  const run = cli(['agent', 'run', 'mismatch', '-m', 'hi'], { STIGMER_LLM_PROVIDER: 'anthropic' });
  const claim = await client.claim('mismatch-runner', 10_000);
  assert.ok(claim);
  await client.complete(claim.execution.id, 'mismatch-runner');
  const r = await run;
  assert.equal(r.code, 0);
  assert.equal(r.stderr, warning);
});
