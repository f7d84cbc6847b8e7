// The agent-runner process (`stigmer internal agent-runner`) end to end: a small in-test server
// implementing the runner side of the stigmer-server API, the fake LLM providers, and a TCP
// listener standing in for Temporal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { cleanupHome, cliEnv, cliPath, freePort, runCli, tempHome } from './helpers.js';
import { runnerDeps } from './runner-deps.js';
import { readRunnerEnv } from '../src/stack/agent-runner/env.js';

// ---------------------------------------------------------------- the fake runner API

interface Exec {
  id: string;
  agent: string;
  message: string;
  model: string | null;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  output: string;
  error: string | null;
  attempts: number;
  holder: string | null;
  chunkPosts: number;
  released: number;
}

class FakeServer {
  agents = new Map<string, { name: string; instructions: string; model: string | null }>();
  execs = new Map<string, Exec>();
  private queue: string[] = [];
  private waiters: (() => void)[] = [];
  private seq = 0;
  running = 0;
  maxRunning = 0;
  server!: http.Server;
  address = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.address = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const w of this.waiters.splice(0)) w();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  agent(name: string, instructions: string, model: string | null = null): void {
    this.agents.set(name, { name, instructions, model });
  }

  submit(agent: string, message: string, model: string | null = null): string {
    const id = `exec-${++this.seq}`;
    this.execs.set(id, { id, agent, message, model, status: 'queued', output: '', error: null, attempts: 0, holder: null, chunkPosts: 0, released: 0 });
    this.queue.push(id);
    for (const w of this.waiters.splice(0)) w();
    return id;
  }

  cancel(id: string): void {
    const e = this.execs.get(id)!;
    if (e.status === 'running') this.running--;
    e.status = 'cancelled';
  }

  async waitFor(id: string, pred: (e: Exec) => boolean, ms = 20_000): Promise<Exec> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.execs.get(id)!;
      if (pred(e)) return e;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${id}: ${JSON.stringify(e)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private finish(e: Exec, status: 'succeeded' | 'failed', error: string | null): void {
    e.status = status;
    e.error = error;
    e.holder = null;
    this.running--;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw = '';
    for await (const c of req) raw += c;
    const body = raw ? (JSON.parse(raw) as Record<string, any>) : {};
    const send = (status: number, obj?: unknown): void => {
      res.writeHead(status, obj === undefined ? {} : { 'content-type': 'application/json' });
      res.end(obj === undefined ? undefined : JSON.stringify(obj));
    };
    const conflict = (code: string): void => send(409, { error: { code, message: code } });
    if (req.url === '/healthz') return send(200, { status: 'ok', version: '0.1.0', uptime_ms: 1 });
    if (req.url === '/v1/runner/claim') {
      const deadline = Date.now() + Math.min(body['wait_ms'] ?? 0, 30_000);
      let gone = false;
      res.on('close', () => (gone = true));
      for (;;) {
        const id = this.queue.shift();
        if (id) {
          if (gone) {
            this.queue.unshift(id);
            return;
          }
          const e = this.execs.get(id)!;
          e.status = 'running';
          e.attempts++;
          e.holder = body['runner_id'];
          this.running++;
          this.maxRunning = Math.max(this.maxRunning, this.running);
          return send(200, { execution: { ...e, holder: undefined }, agent: this.agents.get(e.agent), lease_ms: 3000 });
        }
        if (gone) return;
        const left = deadline - Date.now();
        if (left <= 0) return send(204);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          this.waiters.push(() => {
            clearTimeout(t);
            r();
          });
          res.on('close', () => {
            clearTimeout(t);
            r();
          });
        });
      }
    }
    const m = /^\/v1\/runner\/executions\/([^/]+)\/(chunks|heartbeat|complete|fail|release)$/.exec(req.url ?? '');
    const e = m ? this.execs.get(m[1]!) : undefined;
    if (!m || !e) return send(404, { error: { code: 'not-found', message: 'no such route or execution' } });
    if (e.status === 'cancelled') return conflict('cancelled');
    if (e.holder !== body['runner_id'] || e.status !== 'running') return conflict('lease-lost');
    switch (m[2]) {
      case 'chunks':
        e.output += body['text'];
        e.chunkPosts++;
        return send(204);
      case 'heartbeat':
        return send(204);
      case 'complete':
        this.finish(e, 'succeeded', null);
        return send(200, e);
      case 'fail':
        this.finish(e, 'failed', body['error']);
        return send(200, e);
      case 'release':
        e.status = 'queued';
        e.output = '';
        e.holder = null;
        e.released++;
        this.running--;
        return send(200, e);
    }
  }
}

// ---------------------------------------------------------------- the runner process

interface RunnerProc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  waitForLine(re: RegExp, ms?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnRunner(home: string, env: Record<string, string | undefined>): RunnerProc {
  const child = spawn(process.execPath, [cliPath, 'internal', 'agent-runner'], { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d) => {
    out += d;
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(killer));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine: (re, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (out.split('\n').some((l) => re.test(l))) {
            listeners.delete(check);
            clearTimeout(t);
            resolve();
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no line matching ${re} in stdout:\n${out}\nstderr:\n${err}`));
        }, ms);
        listeners.add(check);
        void exited.then(() => setTimeout(check, 0));
        check();
      }),
  };
}

const deps = runnerDeps();

const KEY = 'sk-test-runner-secret-42';

function runnerEnv(server: FakeServer, provider: 'ollama' | 'anthropic' | 'openai', extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: server.address,
    TEMPORAL_SERVICE_ADDRESS: deps.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    STIGMER_LLM_PROVIDER: provider,
    STIGMER_LLM_MODEL: undefined,
    STIGMER_LLM_BASE_URL: deps.fakeLlm.baseUrl(provider),
    ANTHROPIC_API_KEY: provider === 'anthropic' ? KEY : undefined,
    OPENAI_API_KEY: provider === 'openai' ? KEY : undefined,
    STIGMER_RUNNER_SLOTS: undefined,
    STIGMER_LLM_TIMEOUT: undefined,
    STIGMER_RUNNER_GRACE: undefined,
    ...extra,
  };
}

async function withRunner(
  provider: 'ollama' | 'anthropic' | 'openai',
  extra: Record<string, string | undefined>,
  body: (server: FakeServer, runner: RunnerProc) => Promise<void>,
): Promise<RunnerProc> {
  const home = tempHome();
  const server = new FakeServer();
  await server.start();
  const runner = spawnRunner(home, runnerEnv(server, provider, extra));
  try {
    await runner.waitForLine(/^agent-runner ready$/);
    await body(server, runner);
    if (runner.child.exitCode === null) runner.child.kill('SIGTERM');
    const { code } = await runner.exited;
    assert.equal(code, 0, `runner exit code; stderr:\n${runner.stderr()}`);
    return runner;
  } finally {
    if (runner.child.exitCode === null) runner.child.kill('SIGKILL');
    await runner.exited;
    await server.close();
    await cleanupHome(home);
  }
}

// ---------------------------------------------------------------- tests

for (const provider of ['ollama', 'anthropic', 'openai'] as const) {
  test(`claims, streams from ${provider} and completes`, async () => {
    deps.fakeLlm.reset({ chunks: ['Hi', ' there', '!'], requireKey: KEY });
    const runner = await withRunner(provider, {}, async (server) => {
      server.agent('helper', 'You are a helpful agent.', provider === 'ollama' ? 'llama3.2' : null);
      const id = server.submit('helper', 'Say hi');
      const e = await server.waitFor(id, (x) => x.status !== 'running' && x.status !== 'queued');
      assert.equal(e.status, 'succeeded', e.error ?? '');
      assert.equal(e.output, 'Hi there!');
      const [req] = deps.fakeLlm.chatRequests();
      assert.equal(req!.auth, provider === 'ollama' ? undefined : 'ok');
      if (provider === 'ollama') {
        assert.equal(req!.body.model, 'llama3.2', "the agent's model overrides the configured one");
        assert.deepEqual(req!.body.messages, [
          { role: 'system', content: 'You are a helpful agent.' },
          { role: 'user', content: 'Say hi' },
        ]);
      } else if (provider === 'anthropic') {
        assert.equal(req!.body.model, 'claude-sonnet-4-5');
        assert.equal(req!.body.system, 'You are a helpful agent.');
        assert.deepEqual(req!.body.messages, [{ role: 'user', content: 'Say hi' }]);
      } else {
        assert.equal(req!.body.model, 'gpt-4.1-mini');
      }
    });
    const out = runner.stdout();
    assert.match(out, new RegExp(`^temporal serving at ${deps.temporalAddress.replace(/\./g, '\\.')} \\(SERVING; namespace default REGISTERED\\)$`, 'm'));
    assert.match(out, /^execution exec-1: succeeded \(3 chunks in .+\)$/m);
    assert.match(out, /^SIGTERM received: claiming no more; 0 executions in flight get up to 5\.0 s to finish$/m);
    assert.ok(!out.includes(KEY) && !runner.stderr().includes(KEY), 'the key is never printed');
  });
}

test('a failing provider fails the execution with its message, never the key', async () => {
  deps.fakeLlm.reset({ requireKey: 'sk-test-the-right-key', echoKey: true, models: ['qwen2.5-coder:7b'] });
  const runner = await withRunner('openai', {}, async (server) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'hello');
    const e = await server.waitFor(id, (x) => x.status === 'failed');
    assert.equal(
      e.error,
      'openai returned 401 (invalid_request_error): Incorrect API key provided: ********. You can find your API key at https://platform.openai.com/account/api-keys. (request id req_fake) — Check OPENAI_API_KEY: the provider refused the key.',
    );
    assert.equal(deps.fakeLlm.chatRequests().length, 1, '401 is not retried');
  });
  assert.ok(!runner.stdout().includes(KEY));
  assert.match(runner.stdout(), /^execution exec-1: failed after .+: openai returned 401/m);
});

test('an unknown Ollama model fails with the pull hint; a mid-stream error keeps the partial output', async () => {
  deps.fakeLlm.reset({ models: ['qwen2.5-coder:7b'] });
  await withRunner('ollama', { STIGMER_LLM_MODEL: 'nope:1b' }, async (server) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'hello');
    const e = await server.waitFor(id, (x) => x.status === 'failed');
    assert.equal(e.error, "ollama returned 404: model 'nope:1b' not found — Pull the model first: stigmer llm pull nope:1b");

    deps.fakeLlm.reset({ chunks: ['partial', ' answer', 'never'], errorAt: 2, errorMessage: 'llama runner process has terminated' });
    const id2 = server.submit('a', 'hello', 'qwen2.5-coder:7b');
    const e2 = await server.waitFor(id2, (x) => x.status === 'failed');
    assert.equal(e2.error, 'ollama stream error: llama runner process has terminated');
    assert.equal(e2.output, 'partial answer');
  });
});

test('429 with retry-after is retried before the first chunk', async () => {
  deps.fakeLlm.reset({ status429Times: 1, retryAfterMs: 100, requireKey: KEY });
  const runner = await withRunner('anthropic', {}, async (server) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'hello');
    const e = await server.waitFor(id, (x) => x.status === 'succeeded');
    assert.equal(e.output, 'Hello, world!');
  });
  assert.match(
    runner.stdout(),
    /^execution exec-1: anthropic returned 429 \(rate_limit_error\): Number of request tokens has exceeded your per-minute rate limit \(request id req_fake\); retrying in 100 ms \(attempt 2 of 3\)$/m,
  );
});

test('many fast chunks arrive whole and in order, batched', async () => {
  const chunks = Array.from({ length: 300 }, (_, i) => `${i},`);
  deps.fakeLlm.reset({ chunks });
  await withRunner('ollama', {}, async (server) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'count');
    const e = await server.waitFor(id, (x) => x.status === 'succeeded');
    assert.equal(e.output, chunks.join(''));
    assert.ok(e.chunkPosts >= 1 && e.chunkPosts <= chunks.length);
  });
});

test('at most STIGMER_RUNNER_SLOTS executions run at once', async () => {
  deps.fakeLlm.reset({ chunks: ['a', 'b', 'c'], delayMs: 100 });
  await withRunner('ollama', { STIGMER_RUNNER_SLOTS: '2' }, async (server) => {
    server.agent('a', 'instructions');
    const ids = [1, 2, 3, 4, 5].map((i) => server.submit('a', `m${i}`));
    for (const id of ids) assert.equal((await server.waitFor(id, (x) => x.status === 'succeeded')).output, 'abc');
    assert.equal(server.maxRunning, 2);
  });
});

test('a cancelled execution stops the LLM call', async () => {
  deps.fakeLlm.reset({ chunks: Array.from({ length: 50 }, () => 'x'), delayMs: 100 });
  await withRunner('ollama', {}, async (server, runner) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'long');
    await server.waitFor(id, (x) => x.output.length > 0);
    server.cancel(id);
    await runner.waitForLine(/^execution exec-1: cancelled on the server; stopped the LLM call$/);
    assert.equal(server.execs.get(id)!.status, 'cancelled');
    assert.ok(server.execs.get(id)!.output.length < 50, 'the answer was not streamed to its end');
  });
});

test('SIGTERM: an execution that finishes within the grace completes', async () => {
  deps.fakeLlm.reset({ chunks: ['a', 'b', 'c', 'd'], delayMs: 150 });
  await withRunner('ollama', {}, async (server, runner) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'go');
    await server.waitFor(id, (x) => x.output.length > 0);
    runner.child.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0);
    const e = server.execs.get(id)!;
    assert.equal(e.status, 'succeeded');
    assert.equal(e.output, 'abcd');
    assert.match(runner.stdout(), /^SIGTERM received: claiming no more; 1 execution in flight get up to 5\.0 s to finish$/m);
  });
});

test('SIGTERM: past the grace, in-flight executions are released', async () => {
  deps.fakeLlm.reset({ chunks: Array.from({ length: 100 }, () => 'y'), delayMs: 100 });
  await withRunner('ollama', { STIGMER_RUNNER_GRACE: '300ms' }, async (server, runner) => {
    server.agent('a', 'instructions');
    const id = server.submit('a', 'go');
    await server.waitFor(id, (x) => x.output.length > 0);
    runner.child.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0);
    const e = server.execs.get(id)!;
    assert.equal(e.status, 'queued', 'back in the queue for another runner');
    assert.equal(e.released, 1);
    assert.match(runner.stdout(), /^execution exec-1: released \(the runner is stopping\)$/m);
    assert.match(runner.stdout(), /^agent-runner stopped \(0 succeeded, 0 failed, 0 cancelled, 1 released\)$/m);
  });
});

test('Temporal unreachable: a clear failure after the bounded retry', async () => {
  const home = tempHome();
  const server = new FakeServer();
  await server.start();
  try {
    const port = await freePort();
    const r = await runCli(['internal', 'agent-runner'], {
      home,
      env: runnerEnv(server, 'ollama', { TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${port}`, STIGMER_TEMPORAL_CONNECT_TIMEOUT: '3s' }),
      timeout: 20_000,
    });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `agent-runner: Temporal is not serving at 127.0.0.1:${port} (connection refused (127.0.0.1:${port})) after 3.0 s; ` +
        'check TEMPORAL_SERVICE_ADDRESS (or TEMPORAL_ADDRESS), TEMPORAL_NAMESPACE, TEMPORAL_TLS* and TEMPORAL_API_KEY, or raise STIGMER_TEMPORAL_CONNECT_TIMEOUT\n',
    );
    assert.ok(!r.stdout.includes('agent-runner ready'));
  } finally {
    await server.close();
    await cleanupHome(home);
  }
});

test('server unreachable: a clear failure after the bounded retry', async () => {
  const home = tempHome();
  try {
    const port = await freePort();
    const r = await runCli(['internal', 'agent-runner'], {
      home,
      env: { ...runnerEnv({ address: `localhost:${port}` } as FakeServer, 'ollama'), STIGMER_SERVER_CONNECT_TIMEOUT: '300ms' },
      timeout: 20_000,
    });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `agent-runner: stigmer-server did not answer at http://127.0.0.1:${port}/healthz (connection refused) within 300 ms; check STIGMER_BACKEND_ENDPOINT, or raise STIGMER_SERVER_CONNECT_TIMEOUT\n`,
    );
  } finally {
    await cleanupHome(home);
  }
});

test('environment contract violations exit 2 with one line naming the variable', async () => {
  const home = tempHome();
  try {
    const base = { MODE: 'local', STIGMER_BACKEND_ENDPOINT: 'localhost:50051', TEMPORAL_SERVICE_ADDRESS: 'localhost:7233', STIGMER_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: undefined, OPENAI_API_KEY: KEY };
    const r = await runCli(['internal', 'agent-runner'], { home, env: base });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'agent-runner: ANTHROPIC_API_KEY is not set; it is required when STIGMER_LLM_PROVIDER is anthropic\n');
    assert.equal(r.stdout, '');
    const r2 = await runCli(['internal', 'agent-runner'], { home, env: { ...base, STIGMER_BACKEND_ENDPOINT: 'http://localhost:50051' } });
    assert.equal(r2.code, 2);
    assert.equal(r2.stderr, 'agent-runner: Expected STIGMER_BACKEND_ENDPOINT to be host:port (e.g. localhost:50051), got "http://localhost:50051"\n');
  } finally {
    await cleanupHome(home);
  }
});

test('readRunnerEnv: defaults and every violation', () => {
  const ok = { MODE: 'local', STIGMER_BACKEND_ENDPOINT: 'localhost:50051', TEMPORAL_SERVICE_ADDRESS: 'localhost:7233' };
  const c = readRunnerEnv(ok);
  assert.deepEqual(c.llm, { provider: 'ollama', model: 'qwen2.5-coder:7b', baseUrl: 'http://localhost:11434' });
  assert.equal(c.slots, 4);
  assert.equal(c.temporalNamespace, 'default');
  assert.equal(c.temporalConnectTimeoutMs, 30_000);
  assert.deepEqual(readRunnerEnv({ ...ok, MODE: 'cloud', ANTHROPIC_API_KEY: KEY }).llm, {
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    baseUrl: 'https://api.anthropic.com',
    apiKey: KEY,
  });
  assert.deepEqual(readRunnerEnv({ ...ok, STIGMER_LLM_PROVIDER: 'openai', OPENAI_API_KEY: KEY, STIGMER_LLM_BASE_URL: '' }).llm, {
    provider: 'openai',
    model: 'gpt-4.1-mini',
    baseUrl: 'https://api.openai.com/v1',
    apiKey: KEY,
  });
  const bad: [Record<string, string | undefined>, string][] = [
    [{ MODE: undefined }, 'MODE is not set; expected local or cloud'],
    [{ MODE: 'dev' }, 'Expected MODE to be local or cloud, got "dev"'],
    [{ STIGMER_BACKEND_ENDPOINT: undefined }, 'STIGMER_BACKEND_ENDPOINT is not set; expected the stigmer-server address as host:port, e.g. localhost:50051'],
    [{ STIGMER_BACKEND_ENDPOINT: 'localhost:99999' }, 'Expected STIGMER_BACKEND_ENDPOINT to be host:port (e.g. localhost:50051), got "localhost:99999"'],
    [{ TEMPORAL_SERVICE_ADDRESS: undefined }, 'TEMPORAL_SERVICE_ADDRESS is not set; expected the Temporal frontend address as host:port, e.g. localhost:7233'],
    [{ TEMPORAL_SERVICE_ADDRESS: 'localhost' }, 'Expected TEMPORAL_SERVICE_ADDRESS to be host:port (e.g. localhost:7233), got "localhost"'],
    [{ STIGMER_LLM_PROVIDER: 'gemini' }, 'Expected STIGMER_LLM_PROVIDER to be one of ollama, anthropic, openai, got "gemini"'],
    [{ STIGMER_LLM_PROVIDER: 'openai' }, 'OPENAI_API_KEY is not set; it is required when STIGMER_LLM_PROVIDER is openai'],
    [{ MODE: 'cloud' }, 'ANTHROPIC_API_KEY is not set; it is required for anthropic, the provider MODE=cloud uses when STIGMER_LLM_PROVIDER is not set'],
    [{ STIGMER_LLM_BASE_URL: 'localhost:11434' }, 'Expected STIGMER_LLM_BASE_URL to be an http:// or https:// URL, got "localhost:11434"'],
    [{ STIGMER_RUNNER_SLOTS: '0' }, 'Expected STIGMER_RUNNER_SLOTS to be a whole number from 1 to 256, got "0"'],
    [{ STIGMER_LLM_TIMEOUT: 'soon' }, 'Expected STIGMER_LLM_TIMEOUT to be a duration like "250ms", "30s" or "2m", got "soon"'],
    [{ STIGMER_TEMPORAL_CONNECT_TIMEOUT: '0' }, 'Expected STIGMER_TEMPORAL_CONNECT_TIMEOUT to be a duration above zero, got "0"'],
  ];
  for (const [patch, message] of bad) {
    const env: Record<string, string | undefined> = { ...ok, ...patch };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    assert.throws(() => readRunnerEnv(env), { name: 'RunnerEnvError', message }, JSON.stringify(patch));
  }
});
