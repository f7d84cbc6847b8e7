/**
 * End to end through `stigmer local start`, offline: the stand-in Temporal from a local release
 * mirror, the REAL reference stigmer-server and agent-runner (no STIGMER_SERVER_BIN /
 * STIGMER_AGENT_RUNNER_BIN), and the fake LLM providers. One Ollama stack is shared by the first
 * group of tests (a check-llm warning that suggests `stigmer llm pull`, apply, run, kill -9 of the
 * runner mid-execution, bad requests to every route, a server restart); Anthropic and OpenAI get a
 * stack each, with a key that must never appear in any output or any file under STIGMER_HOME.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanupHome, fixture, freePort, processesWithHome, repoRoot, runCli, sleep, tempHome, type CliResult, until as pollUntil } from './helpers.js';
import { raw, spawnCli } from './server-rig.js';
import { filesContaining, localStackEnv, startTemporalMirror, type TemporalMirror } from './temporal-mirror.js';
import { StigmerClient, type Execution } from '../src/stack/client/index.js';
import { readProcStat } from '../src/process/identity.js';
import type { FakeLlm, FakeLlmOptions } from './fixtures/fake-llm.mjs';
import { parseAddress } from '../src/util/address.js';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');

type Provider = 'ollama' | 'anthropic' | 'openai';

const STACK_FILE = join(repoRoot, 'stigmer.tasks.yaml');
const AGENT_YAML = 'name: my-agent\ninstructions: Answer in one short sentence.\n';

let mirror: TemporalMirror;

before(async () => {
  mirror = await startTemporalMirror();
});
after(async () => {
  await mirror?.close();
});

interface Stack {
  home: string;
  env: Record<string, string | undefined>;
  server: string;
  client: StigmerClient;
  /** run the CLI against this stack; every result is kept for the secret checks */
  cli(args: string[], extra?: Record<string, string | undefined>): Promise<CliResult>;
  outputs: string[];
  /** pid of a component, from `local status --json` */
  pid(component: 'temporal' | 'server' | 'agent-runner'): Promise<number>;
  /** local stop, then assert nothing started under the home is left, then remove it */
  cleanup(): Promise<void>;
}

/** Everything pointed at this test: mirror, random ports, the fake provider; nothing inherited. */
async function stackEnv(fake: FakeLlm, provider: Provider, extra: Record<string, string | undefined>): Promise<{ env: Record<string, string | undefined>; server: string }> {
  const [temporal, ui, server] = [await freePort(), await freePort(), await freePort()];
  return {
    server: `127.0.0.1:${server}`,
    env: {
      ...localStackEnv(mirror, { temporal, ui, server }),
      STIGMER_LLM_PROVIDER: provider === 'ollama' ? undefined : provider,
      STIGMER_LLM_BASE_URL: fake.baseUrl(provider),
      FAKE_TEMPORAL_SERVING_AFTER_MS: '0',
      // the real reference server and runner, whatever the caller's environment says
      STIGMER_SERVER_BIN: undefined,
      STIGMER_AGENT_RUNNER_BIN: undefined,
      STIGMER_LEASE_MS: undefined,
      STIGMER_RUNNER_SLOTS: undefined,
      ...extra,
    },
  };
}

async function newStack(fake: FakeLlm, provider: Provider, extra: Record<string, string | undefined> = {}): Promise<Stack> {
  const home = tempHome('stigmer-e2e-agent-');
  const { env, server } = await stackEnv(fake, provider, extra);
  writeFileSync(join(home, 'agent.yaml'), AGENT_YAML);
  const client = new StigmerClient(server);
  const outputs: string[] = [];
  const cli = async (args: string[], more: Record<string, string | undefined> = {}): Promise<CliResult> => {
    const r = await runCli(args, { home, env: { ...env, ...more } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  return {
    home,
    env,
    server,
    client,
    cli,
    outputs,
    async pid(component) {
      const s = await cli(['local', 'status', '--json']);
      assert.equal(s.code, 0, s.stderr);
      const found = (JSON.parse(s.stdout) as { components: { name: string; pid: number | null }[] }).components.find((c) => c.name === component);
      assert.ok(found?.pid, `${component} has a pid: ${s.stdout}`);
      return found.pid;
    },
    async cleanup() {
      client.close();
      try {
        const stop = await runCli(['local', 'stop'], { home, env, timeout: 30_000 });
        assert.equal(stop.code, 0, stop.stderr);
        assert.deepEqual(processesWithHome(home), [], 'local stop left nothing running');
      } finally {
        await cleanupHome(home);
      }
    },
  };
}

function isAlive(pid: number): boolean {
  const state = readProcStat(pid)?.state;
  return state !== undefined && state !== 'Z';
}

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> =>
  pollUntil(what, async () => {
    const v = await probe();
    return v === undefined ? undefined : { v };
  }, timeoutMs).then((r) => r.v);

const newest = async (client: StigmerClient): Promise<Execution> => (await client.listExecutions({ limit: 1 }))[0]!;

describe('ollama: one stack through local start, the real server and agent-runner', () => {
  let fake: FakeLlm;
  let stack: Stack;
  /** executions that finished, as the server reported them before the restart */
  const finished: Execution[] = [];

  before(async () => {
    // the default model is not pulled yet: check-llm warns and says how to pull it
    fake = await startFakeLlm({ models: ['llama3.2:latest'] });
    // a short lease, so a runner killed mid-execution loses it quickly; the stack passes
    // stigmer's own environment on to the server
    stack = await newStack(fake, 'ollama', { STIGMER_LEASE_MS: '1500' });
  });
  after(async () => {
    try {
      await stack?.cleanup();
    } finally {
      await fake?.close();
    }
  });

  test('local start warns that the model is missing and suggests stigmer llm pull; then apply and run stream the answer', async () => {
    const start = await stack.cli(['local', 'start']);
    assert.equal(start.code, 0, start.stderr);
    assert.ok(start.stdout.includes('\n✓ Stigmer is running\n'), start.stdout);
    assert.ok(start.stdout.includes(`  Server:         ${stack.server}\n`), start.stdout);
    assert.ok(start.stdout.includes(`  LLM:            ollama qwen2.5-coder:7b at ${fake.url}\n`), start.stdout);
    assert.equal(
      start.stderr,
      `stigmer: warning: check-llm: Ollama at ${fake.url} does not have the model qwen2.5-coder:7b\n` +
        '  hint: Pull it: ollama pull qwen2.5-coder:7b (or stigmer llm pull qwen2.5-coder:7b)\n',
    );
    // the reference processes, not fixtures
    const logs = await stack.cli(['local', 'logs', '-n', '200']);
    assert.match(logs.stdout, /start-server +\| --- starting \S+ \S+stigmer\.js internal server\n/);
    assert.match(logs.stdout, /start-agent-runner +\| --- starting \S+ \S+stigmer\.js internal agent-runner\n/);
    assert.match(logs.stdout, new RegExp(`start-server +\\| stigmer-server listening on ${stack.server.replace(/\./g, '\\.')}\n`));

    const apply = await stack.cli(['agent', 'apply', '-f', 'agent.yaml']);
    assert.deepEqual([apply.code, apply.stdout, apply.stderr], [0, 'agent "my-agent" created\n', '']);

    // before the pull, the run fails with the provider's reason and the same suggestion
    const missing = await stack.cli(['agent', 'run', 'my-agent', '--message', 'hi']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /^stigmer: execution \S+ failed: ollama returned 404: model 'qwen2\.5-coder:7b' not found — Pull the model first: stigmer llm pull qwen2\.5-coder:7b\n$/);

    const pull = await stack.cli(['llm', 'pull', 'qwen2.5-coder:7b']);
    assert.equal(pull.code, 0, pull.stderr);
    assert.ok(pull.stdout.endsWith('pulled qwen2.5-coder:7b\n'), pull.stdout);

    fake.options.chunks = ['Hello', ', ', 'world', '!'];
    const run = await stack.cli(['agent', 'run', 'my-agent', '--message', 'hi']);
    assert.deepEqual([run.code, run.stdout, run.stderr], [0, 'Hello, world!\n', '']);
    const chat = fake.chatRequests().at(-1)!;
    assert.equal(chat.path, '/api/chat');
    assert.equal(chat.body.model, 'qwen2.5-coder:7b');
    assert.equal(chat.body.stream, true);
    assert.deepEqual(chat.body.messages, [
      { role: 'system', content: 'Answer in one short sentence.' },
      { role: 'user', content: 'hi' },
    ]);
    const done = await newest(stack.client);
    assert.deepEqual([done.status, done.output, done.attempts], ['succeeded', 'Hello, world!', 1]);
    finished.push(done);
  });

  test('kill -9 of the agent-runner mid-execution: the supervisor starts a new one; re-queued after the lease, finished by it', async () => {
    fake.options.chunks = Array.from({ length: 50 }, (_, i) => `${i} `);
    fake.options.delayMs = 100;
    const runner = await stack.pid('agent-runner');
    const run = spawnCli(['agent', 'run', 'my-agent', '--message', 'count to 50'], stack.home, stack.env);
    try {
      await until('the first chunks on stdout', () => (run.stdout().startsWith('0 1 2 ') ? true : undefined));
      // what the next attempt answers (the new runner may claim it as soon as it is re-queued)
      fake.options.chunks = ['all', ' done'];
      fake.options.delayMs = 0;
      process.kill(runner, 'SIGKILL');
      await until('the runner to die', () => (isAlive(runner) ? undefined : true));
      const exec = await newest(stack.client);
      assert.equal(exec.status, 'running');

      // The stack's supervisor restarts the agent-runner (on-failure); nobody holds the execution:
      // once the lease runs out the server puts it back in the queue, and the new runner takes it.
      await until('a new agent-runner', async () => {
        const pid = await stack.pid('agent-runner').catch(() => undefined);
        return pid !== undefined && pid !== runner && isAlive(pid) ? true : undefined;
      });
      await until('the execution re-queued', async () => {
        const serverLog = await stack.cli(['local', 'logs', 'server', '-n', '50']);
        return new RegExp(`stigmer-server: execution ${exec.id}: lease of runner "[^"]+-${runner}" expired; re-queued\n`).test(serverLog.stdout) ? true : undefined;
      });

      const end = await run.exited;
      assert.equal(end.code, 0, run.stderr());
      assert.match(run.stdout(), /^0 1 2 (\d+ )*\nall done\n$/);
      assert.equal(run.stderr(), `stigmer: execution ${exec.id} was handed back to the queue; its output starts again\n`);
      const done = await stack.client.getExecution(exec.id);
      assert.deepEqual([done.status, done.output, done.attempts, done.error], ['succeeded', 'all done', 2, null]);
      finished.push(done);
      const log = await stack.cli(['local', 'logs', 'agent-runner', '-n', '5']);
      assert.match(log.stdout, new RegExp(`execution ${exec.id}: claimed \\(agent my-agent, ollama qwen2\\.5-coder:7b, attempt 2\\)\n`));
    } finally {
      await run.stop('SIGKILL');
    }
  });

  test('bad requests to every route of the running server: the error names the cause; nothing is stored', async () => {
    const before = { agents: await stack.client.listAgents(), executions: await stack.client.listExecutions({ limit: 100 }) };
    const id = finished[0]!.id;
    const cases: [string, string, string | undefined, number, string, string | undefined][] = [
      // method, path, body -> status, code, field
      ['POST', '/v1/agents', '{"name":"x","instructions":"y"}', 405, 'method-not-allowed', undefined],
      ['POST', '/v1/agents/my-agent', '{"instructions":"y"}', 405, 'method-not-allowed', undefined],
      ['PUT', '/v1/agents/my-agent', '{"instructions":"y","model":7}', 400, 'invalid-field', 'model'],
      ['PUT', '/v1/agents/my-agent', `{"instructions":"y","model":"${'m'.repeat(201)}"}`, 400, 'invalid-field', 'model'],
      ['PUT', '/v1/agents/my-agent', 'null', 400, 'invalid-body', undefined],
      ['PUT', `/v1/agents/${'a'.repeat(64)}`, '{"instructions":"y"}', 400, 'invalid-field', 'name'],
      ['PUT', '/v1/executions', '{}', 405, 'method-not-allowed', undefined],
      ['POST', '/v1/executions', '{"agent":"my-agent","message":"hi","model":"x"}', 400, 'unknown-field', 'model'],
      ['POST', '/v1/executions', '{"agent":"my-agent","message":["hi"]}', 400, 'invalid-field', 'message'],
      ['GET', '/v1/executions?limit=100000', undefined, 400, 'invalid-field', 'limit'],
      ['DELETE', `/v1/executions/${id}`, undefined, 405, 'method-not-allowed', undefined],
      ['GET', `/v1/executions/${id}/cancel`, undefined, 405, 'method-not-allowed', undefined],
      ['POST', `/v1/executions/${id}/cancel`, '[]', 400, 'invalid-body', undefined],
      ['POST', `/v1/executions/${id}/events`, undefined, 405, 'method-not-allowed', undefined],
      ['POST', '/v1/runner/claim', '{"runner_id":"r","wait_ms":-1}', 400, 'invalid-field', 'wait_ms'],
      ['POST', '/v1/runner/claim', `{"runner_id":"${'r'.repeat(201)}"}`, 400, 'invalid-field', 'runner_id'],
      ['GET', `/v1/runner/executions/${id}/chunks`, undefined, 405, 'method-not-allowed', undefined],
      ['GET', `/v1/runner/executions/${id}/heartbeat`, undefined, 405, 'method-not-allowed', undefined],
      ['GET', `/v1/runner/executions/${id}/complete`, undefined, 405, 'method-not-allowed', undefined],
      ['GET', `/v1/runner/executions/${id}/fail`, undefined, 405, 'method-not-allowed', undefined],
      ['GET', `/v1/runner/executions/${id}/release`, undefined, 405, 'method-not-allowed', undefined],
      ['POST', '/v1/runner/executions/no-such-id/heartbeat', '{"runner_id":"r"}', 404, 'not-found', undefined],
      ['POST', '/v1/runner/executions/no-such-id/complete', '{"runner_id":"r"}', 404, 'not-found', undefined],
      ['POST', '/v1/runner/executions/no-such-id/fail', '{"runner_id":"r","error":"x"}', 404, 'not-found', undefined],
      ['POST', '/v1/runner/executions/no-such-id/release', '{"runner_id":"r"}', 404, 'not-found', undefined],
      ['POST', `/v1/runner/executions/${id}/fail`, '{"runner_id":"r","error":42}', 400, 'invalid-field', 'error'],
      ['POST', `/v1/runner/executions/${id}/chunks`, '{"runner_id":"r","text":"late"}', 409, 'lease-lost', undefined],
      ['POST', `/v1/runner/executions/${id}/heartbeat`, '{"runner_id":"r"}', 409, 'lease-lost', undefined],
      ['POST', `/v1/runner/executions/${id}/fail`, '{"runner_id":"r","error":"too late"}', 409, 'lease-lost', undefined],
      ['POST', `/v1/runner/executions/${id}/release`, '{"runner_id":"r"}', 409, 'lease-lost', undefined],
      ['POST', '/v1/runner/executions', '{}', 404, 'not-found', undefined],
      ['GET', '/v1', undefined, 404, 'not-found', undefined],
      ['GET', '/healthz/', undefined, 404, 'not-found', undefined],
    ];
    for (const [method, path, body, status, code, field] of cases) {
      const r = await raw(stack.server, method, path, body);
      const what = `${method} ${path} ${body ?? ''}`;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body?.error?.code, code, what);
      assert.equal(typeof r.body?.error?.message, 'string', what);
      assert.equal(r.body?.error?.field, field, what);
    }
    const late = await raw(stack.server, 'POST', `/v1/runner/executions/${id}/chunks`, '{"runner_id":"r","text":"late"}');
    assert.equal(late.body.error.message, `runner "r" does not hold execution "${id}" (its status is succeeded)`);

    // a request whose body is cut off mid-way (the client hangs up) is dropped whole
    const { host, port } = parseAddress(stack.server)!;
    await new Promise<void>((resolve) => {
      const req = http.request({ host, port, method: 'PUT', path: '/v1/agents/half-sent', headers: { 'content-type': 'application/json', 'content-length': '100' } });
      req.on('error', () => resolve());
      req.write('{"instructions":"only half of th', () => setTimeout(() => (req.destroy(), resolve()), 50));
    });
    // ... and a flood of malformed requests at once changes nothing either
    const flood = await Promise.all(Array.from({ length: 50 }, (_, i) => raw(stack.server, 'PUT', `/v1/agents/flood-${i}`, `{"instructions": ${i}`)));
    assert.deepEqual([...new Set(flood.map((r) => r.status))], [400]);

    assert.equal((await stack.client.health()).status, 'ok');
    assert.deepEqual(await stack.client.listAgents(), before.agents);
    assert.deepEqual(await stack.client.listExecutions({ limit: 100 }), before.executions);
  });

  test('restarting only the server (stigmer run start-server) keeps agents and finished executions', async () => {
    const agents = await stack.client.listAgents();
    const executions = await stack.client.listExecutions({ limit: 100 });
    const [serverPid, runnerPid, temporalPid] = [await stack.pid('server'), await stack.pid('agent-runner'), await stack.pid('temporal')];
    const rerun = await stack.cli(['run', 'start-server', '-f', STACK_FILE]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.notEqual(await stack.pid('server'), serverPid);
    assert.equal(await stack.pid('agent-runner'), runnerPid);
    assert.equal(await stack.pid('temporal'), temporalPid);

    const list = await stack.cli(['agent', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME +MODEL +UPDATED\nmy-agent +\(runner default\) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n$/);
    assert.deepEqual(await stack.client.listAgents(), agents);
    assert.deepEqual(await stack.client.listExecutions({ limit: 100 }), executions);
    for (const e of finished) {
      const r = await raw(stack.server, 'GET', `/v1/executions/${e.id}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, e);
    }
    const logs = await stack.cli(['local', 'logs', 'server', '-n', '200']);
    assert.match(logs.stdout, /stigmer-server: store \S+: 1 agents, 3 executions/);

    // the runner that outlived the restart reconnects and keeps working
    fake.options.chunks = ['back', ' again'];
    const run = await stack.cli(['agent', 'run', 'my-agent', '--message', 'still there?']);
    assert.deepEqual([run.code, run.stdout, run.stderr], [0, 'back again\n', '']);
  });
});

// The hosted providers: the key comes from the environment, reaches the runner through its
// environment, and never shows: not in output, not in logs, not in the server's store, not even
// when the provider echoes it back in an error.
for (const provider of ['anthropic', 'openai'] as const) {
  const keyVar = provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
  const model = provider === 'anthropic' ? 'claude-sonnet-4-5' : 'gpt-4.1-mini';

  test(`${provider}: local start, apply, run streams the answer; the key is never shown or written`, async (t) => {
    const key = `sk-test-${provider}-e2e-7f3a91c2d4`;
    const options: FakeLlmOptions = { requireKey: key, knownModels: [model], chunks: ['Hi', ' from ', provider, '.'] };
    const fake = await startFakeLlm(options);
    const stack = await newStack(fake, provider, { [keyVar]: key });
    t.after(async () => {
      try {
        await stack.cleanup();
      } finally {
        await fake.close();
      }
    });

    const start = await stack.cli(['local', 'start', '--no-input']);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stderr, '');
    assert.ok(start.stdout.includes(`  LLM:            ${provider} ${model} at ${fake.baseUrl(provider)}\n`), start.stdout);
    assert.equal((await stack.cli(['agent', 'apply', '-f', 'agent.yaml'])).code, 0);

    const run = await stack.cli(['agent', 'run', 'my-agent', '--message', 'hi']);
    assert.deepEqual([run.code, run.stdout, run.stderr], [0, `Hi from ${provider}.\n`, '']);
    const chat = fake.chatRequests().at(-1)!;
    assert.equal(chat.path, provider === 'anthropic' ? '/v1/messages' : '/v1/chat/completions');
    assert.equal(chat.auth, 'ok');
    assert.equal(chat.body.model, model);
    assert.equal(chat.body.stream, true);

    // the provider refuses the key and (as OpenAI partly does) quotes it back: the execution fails
    // with the provider's message, the key masked
    fake.options.requireKey = 'sk-test-some-other-key-000';
    fake.options.echoKey = true;
    const refused = await stack.cli(['agent', 'run', 'my-agent', '--message', 'hi again']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /^stigmer: execution \S+ failed: .*401.*\n$/);
    if (provider === 'openai') assert.match(refused.stderr, /Incorrect API key provided: \*{8}\./);
    else assert.match(refused.stderr, /invalid x-api-key/);

    const status = await stack.cli(['local', 'status']);
    assert.match(status.stdout, new RegExp(`\nSecrets: .*\\b${keyVar} set \\(agent-runner, environment\\) \\[needed\\]`));
    await stack.cli(['local', 'status', '--json']);
    await stack.cli(['local', 'logs', '-n', '500']);
    await stack.cli(['agent', 'list', '--json']);
    const stop = await stack.cli(['local', 'stop']);
    assert.equal(stop.code, 0, stop.stderr);

    for (const o of stack.outputs) assert.ok(!o.includes(key), `the key was printed:\n${o}`);
    assert.deepEqual(filesContaining(stack.home, key), [], 'the key was written under STIGMER_HOME');
    // the store does hold the failure, masked
    const wal = filesContaining(stack.home, provider === 'openai' ? 'Incorrect API key provided: ********' : 'invalid x-api-key');
    assert.equal(wal.length > 0, true, 'the failed execution and its reason are in the store');
  });
}
