/**
 * The stack's own task kinds driven directly through run() (resolve-config, gather-secrets,
 * check-llm), and the stand-in Temporal CLI the end-to-end tests rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../src/stack/config/index.js';
import { TaskError } from '../src/model/kind.js';
import resolveConfig from '../tasks/resolve-config.js';
import gatherSecrets from '../tasks/gather-secrets.js';
import checkLlm from '../tasks/check-llm.js';
import { cleanupHome, fixture, freePort, sleep, tempHome, until as pollUntil } from './helpers.js';
import { makeContext } from './kind-context.js';
import { describeFailure } from '../src/model/failure.js';

function home(t: { after: (fn: () => Promise<void>) => void }): string {
  const h = tempHome('stigmer-kinds-');
  t.after(() => cleanupHome(h));
  return h;
}

async function failure(p: Promise<unknown>): Promise<TaskError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TaskError, String(e));
    return e;
  }
  throw new Error('expected the task to fail');
}

test('resolve-config: the managed stack values, and the data dir created', async (t) => {
  const h = home(t);
  const { config } = loadConfig({
    home: h,
    cwd: h,
    env: { STIGMER_TEMPORAL_PORT: '17233', STIGMER_TEMPORAL_UI_PORT: '18233', STIGMER_SERVER_ADDRESS: '127.0.0.1:15051', STIGMER_SERVER_BIN: '/opt/srv' },
  });
  const { ctx } = makeContext(h, { config });
  const r = await resolveConfig.run(ctx);
  const bin = join(h, 'bin', 'temporal-1.8.2', 'temporal');
  const os = process.platform === 'darwin' ? 'darwin' : 'linux';
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  assert.deepEqual(r.outputs['temporal'], {
    managed: true,
    label: 'the managed Temporal',
    address: '127.0.0.1:17233',
    host: '127.0.0.1',
    port: 17233,
    ui_port: 18233,
    ui_url: 'http://localhost:18233',
    version: '1.8.2',
    cli_source: 'download',
    download: true,
    namespace: 'default',
    auth: 'none',
    tls: { enabled: false, server_ca_cert: null, server_name: null, client_cert: null, client_key: null, disable_host_verification: false },
    profile: null,
    profile_file: null,
    api_key_from: null,
    address_source: 'managed by stigmer',
    start_args: ['server', 'start-dev', '--ip', '127.0.0.1', '--port', '17233', '--ui-port', '18233', '--db-filename', join(h, 'data', 'temporal.db'), '--namespace', 'default'],
    ports: [17233, 18233],
    archive_url: `https://github.com/temporalio/cli/releases/download/v1.8.2/temporal_cli_1.8.2_${os}_${arch}.tar.gz`,
    checksums_url: 'https://github.com/temporalio/cli/releases/download/v1.8.2/checksums.txt',
    install_dir: join(h, 'bin', 'temporal-1.8.2'),
    bin,
    db_file: join(h, 'data', 'temporal.db'),
    wait_timeout: '30s',
  });
  assert.deepEqual(r.outputs['llm'], { provider: 'ollama', model: 'qwen2.5-coder:7b', base_url: 'http://localhost:11434', key_env: null });
  assert.deepEqual(r.outputs['server'], {
    address: '127.0.0.1:15051',
    url: 'http://127.0.0.1:15051',
    health_url: 'http://127.0.0.1:15051/healthz',
    port: 15051,
    command: '/opt/srv',
    args: [],
    data_dir: join(h, 'data'),
  });
  assert.deepEqual((r.outputs['agent_runner'] as { env: unknown }).env, {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: '127.0.0.1:15051',
    TEMPORAL_SERVICE_ADDRESS: '127.0.0.1:17233',
    TEMPORAL_ADDRESS: '127.0.0.1:17233',
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TLS: null,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: null,
    TEMPORAL_TLS_SERVER_NAME: null,
    TEMPORAL_TLS_CLIENT_CERT_PATH: null,
    TEMPORAL_TLS_CLIENT_KEY_PATH: null,
    TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: null,
    STIGMER_LLM_PROVIDER: 'ollama',
    STIGMER_LLM_MODEL: 'qwen2.5-coder:7b',
    STIGMER_LLM_BASE_URL: 'http://localhost:11434',
  });
  assert.ok(existsSync(join(h, 'data')));
  assert.equal(resolveConfig.pure, true);
});

test('resolve-config: external Temporal and another provider', async (t) => {
  const h = home(t);
  const { config } = loadConfig({ home: h, cwd: h, env: { TEMPORAL_SERVICE_ADDRESS: 'temporal.internal:7233', STIGMER_LLM_PROVIDER: 'openai' } });
  const { ctx } = makeContext(h, { config });
  const r = await resolveConfig.run(ctx);
  const temporal = r.outputs['temporal'] as Record<string, unknown>;
  assert.equal(temporal['managed'], false);
  assert.equal(temporal['host'], 'temporal.internal');
  assert.equal(temporal['port'], 7233);
  assert.equal(temporal['ui_url'], null);
  assert.equal(temporal['bin'], null);
  const env = (r.outputs['agent_runner'] as { env: Record<string, string> }).env;
  assert.equal(env['TEMPORAL_SERVICE_ADDRESS'], 'temporal.internal:7233');
  assert.equal(env['STIGMER_LLM_PROVIDER'], 'openai');
  assert.equal(env['STIGMER_LLM_MODEL'], 'gpt-4.1-mini');
  assert.deepEqual(r.outputs['llm'], { provider: 'openai', model: 'gpt-4.1-mini', base_url: 'https://api.openai.com/v1', key_env: 'OPENAI_API_KEY' });
  assert.equal(r.summary, 'external Temporal at temporal.internal:7233; openai gpt-4.1-mini');

  const bad = await failure(resolveConfig.run(makeContext(h, { config: 'nope' as never }).ctx));
  assert.equal(bad.failure.reason, 'invalid-input');
  assert.equal(describeFailure(bad.failure).message, 'Expected with.config to be the whole stigmer config');
});

test('gather-secrets: ollama needs no key', async (t) => {
  const h = home(t);
  const { ctx, lines } = makeContext(h, { provider: 'ollama' });
  const r = await gatherSecrets.run(ctx);
  assert.deepEqual(lines, ['Using Ollama (no API key required)']);
  assert.deepEqual(r.outputs, { env: { ANTHROPIC_API_KEY: null, OPENAI_API_KEY: null, STIGMER_LLM_API_KEY: null, TEMPORAL_API_KEY: null }, key_env: null, key_set: false, source: 'none', temporal_api_key: null, temporal_api_key_from: null });
});

test('gather-secrets: anthropic from the environment, registered as a secret', async (t) => {
  const h = home(t);
  const key = 'sk-test-env-0123456789';
  const { ctx, lines } = makeContext(h, { provider: 'anthropic' }, { env: { ANTHROPIC_API_KEY: key } });
  const secrets: string[] = [];
  ctx.secret = (v) => secrets.push(v);
  const r = await gatherSecrets.run(ctx);
  assert.deepEqual(secrets, [key]);
  assert.deepEqual(r.outputs, { env: { ANTHROPIC_API_KEY: key, OPENAI_API_KEY: null, STIGMER_LLM_API_KEY: key, TEMPORAL_API_KEY: null }, key_env: 'ANTHROPIC_API_KEY', key_set: true, source: 'env', temporal_api_key: null, temporal_api_key_from: null });
  assert.deepEqual(lines, ['Using Anthropic (ANTHROPIC_API_KEY from the environment)']);
  assert.ok(!lines.join('\n').includes(key));
});

test('gather-secrets: from .env in the working directory', async (t) => {
  const h = home(t);
  const saved = { cwd: process.cwd(), key: process.env['OPENAI_API_KEY'] };
  delete process.env['OPENAI_API_KEY'];
  writeFileSync(join(h, '.env'), 'OPENAI_API_KEY=sk-test-dotenv-987654\n');
  process.chdir(h);
  t.after(() => {
    process.chdir(saved.cwd);
    if (saved.key !== undefined) process.env['OPENAI_API_KEY'] = saved.key;
  });
  const { ctx } = makeContext(h, { provider: 'openai' });
  const r = await gatherSecrets.run(ctx);
  assert.deepEqual(r.outputs, { env: { ANTHROPIC_API_KEY: null, OPENAI_API_KEY: 'sk-test-dotenv-987654', STIGMER_LLM_API_KEY: 'sk-test-dotenv-987654', TEMPORAL_API_KEY: null }, key_env: 'OPENAI_API_KEY', key_set: true, source: '.env', temporal_api_key: null, temporal_api_key_from: null });
});

test('gather-secrets: a masked prompt when it can ask; a clear failure when it cannot', async (t) => {
  const h = home(t);
  const saved = { key: process.env['ANTHROPIC_API_KEY'], ci: process.env['CI'] };
  delete process.env['ANTHROPIC_API_KEY'];
  t.after(() => {
    if (saved.key !== undefined) process.env['ANTHROPIC_API_KEY'] = saved.key;
    if (saved.ci !== undefined) process.env['CI'] = saved.ci;
    else delete process.env['CI'];
  });
  const asked: unknown[] = [];
  const prompted = makeContext(h, { provider: 'anthropic' });
  prompted.ctx.canPrompt = true;
  prompted.ctx.prompt = async (o) => {
    asked.push(o);
    return 'sk-test-typed-55555\n';
  };
  const r = await gatherSecrets.run(prompted.ctx);
  assert.deepEqual(asked, [{ message: 'Enter Anthropic API key', mask: true }]);
  assert.equal((r.outputs['env'] as Record<string, string>)['ANTHROPIC_API_KEY'], 'sk-test-typed-55555');
  assert.equal(r.outputs['source'], 'prompt');

  process.env['CI'] = 'true';
  const ci = await failure(gatherSecrets.run(makeContext(h, { provider: 'anthropic' }).ctx));
  assert.equal(ci.failure.reason, 'missing-secret');
  assert.equal(describeFailure(ci.failure).message, 'ANTHROPIC_API_KEY is not set (CI is set, so stigmer does not prompt)');
  assert.equal(describeFailure(ci.failure).hint, 'Set ANTHROPIC_API_KEY in the environment or in .env, or run interactively to be asked for it.');
  delete process.env['CI'];
  const noTty = await failure(gatherSecrets.run(makeContext(h, { provider: 'anthropic' }).ctx));
  assert.equal(describeFailure(noTty.failure).message, 'ANTHROPIC_API_KEY is not set (no terminal to ask on)');

  const empty = makeContext(h, { provider: 'anthropic' });
  empty.ctx.canPrompt = true;
  empty.ctx.prompt = async () => '  ';
  assert.equal(describeFailure((await failure(gatherSecrets.run(empty.ctx))).failure).message, 'ANTHROPIC_API_KEY is not set (an empty key was entered)');

  const bad = await failure(gatherSecrets.run(makeContext(h, { provider: 'mistral' }).ctx));
  assert.equal(describeFailure(bad.failure).message, 'Expected with.provider to be one of ollama, anthropic, openai, got "mistral"');
});

/** A fake Ollama answering /api/tags with the given models. */
async function fakeOllama(models: string[]): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/api/tags') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ models: models.map((name) => ({ name, model: name })) }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

test('check-llm: ollama reachable with the model, without it, and not reachable', async (t) => {
  const h = home(t);
  const ollama = await fakeOllama(['qwen2.5-coder:7b', 'llama3.2:latest']);
  t.after(() => ollama.close());
  const ok = await checkLlm.run(makeContext(h, { provider: 'ollama', model: 'qwen2.5-coder:7b', base_url: ollama.url }).ctx);
  assert.equal(ok.summary, `ollama at ${ollama.url} has qwen2.5-coder:7b`);
  const tagless = await checkLlm.run(makeContext(h, { provider: 'ollama', model: 'llama3.2', base_url: ollama.url }).ctx);
  assert.equal(tagless.outputs['model_present'], true);

  const missing = await failure(checkLlm.run(makeContext(h, { provider: 'ollama', model: 'mistral:7b', base_url: ollama.url }).ctx));
  assert.equal(describeFailure(missing.failure).message, `Ollama at ${ollama.url} does not have the model mistral:7b`);
  assert.equal(describeFailure(missing.failure).hint, 'Pull it: ollama pull mistral:7b (or stigmer llm pull mistral:7b)');

  const port = await freePort();
  const down = await failure(checkLlm.run(makeContext(h, { provider: 'ollama', model: 'qwen2.5-coder:7b', base_url: `http://127.0.0.1:${port}` }).ctx));
  assert.equal(describeFailure(down.failure).message, `Ollama is not reachable at http://127.0.0.1:${port} (connection refused)`);
  assert.match(describeFailure(down.failure).hint!, /ollama serve/);
});

test('check-llm: anthropic and openai need their key set', async (t) => {
  const h = home(t);
  const ok = await checkLlm.run(makeContext(h, { provider: 'anthropic', model: 'claude-sonnet-4-5', base_url: 'https://api.anthropic.com', api_key_set: true }).ctx);
  assert.equal(ok.summary, 'anthropic claude-sonnet-4-5 (ANTHROPIC_API_KEY is set)');
  const no = await failure(checkLlm.run(makeContext(h, { provider: 'openai', model: 'gpt-4.1-mini', base_url: 'https://api.openai.com/v1', api_key_set: 'false' }).ctx));
  assert.equal(describeFailure(no.failure).message, 'OPENAI_API_KEY is not set (openai needs it)');
});

// ---------------------------------------------------------------------------------------------
// The stand-in Temporal CLI

const temporal = fixture('temporal.mjs');

function temporalSync(h: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [temporal, ...args], { encoding: 'utf8', env: { ...process.env, STIGMER_HOME: h } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function startDev(h: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [temporal, 'server', 'start-dev', ...args], {
    env: { ...process.env, STIGMER_HOME: h, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

const until = (fn: () => boolean, ms = 10_000): Promise<true> => pollUntil('the condition', fn, ms);

test('stand-in temporal: --version, start-dev banner, NOT_SERVING then SERVING, UI, exit 0 on SIGTERM', async (t) => {
  const h = home(t);
  assert.equal(temporalSync(h, ['--version']).stdout, 'temporal version 1.8.2 (Server 1.31.2, UI 2.50.1)\n');
  const [port, ui] = [await freePort(), await freePort()];
  mkdirSync(join(h, 'data'));
  const db = join(h, 'data', 'temporal.db');
  const dev = startDev(h, ['--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(ui), '--db-filename', db, '--namespace', 'default', '--log-level', 'warn'], {
    FAKE_TEMPORAL_SERVING_AFTER_MS: '2000', // long enough for the first health call to see NOT_SERVING on a loaded machine
  });
  t.after(() => dev.child.kill('SIGKILL'));
  await until(() => dev.out().includes('Temporal Metrics:'));
  const lines = dev.out().split('\n');
  assert.equal(lines[0], 'Temporal CLI 1.8.2 (Server 1.31.2, UI 2.50.1)');
  assert.equal(lines[2], `Temporal Server:      localhost:${port}`);
  assert.equal(lines[3], `Temporal Persistence: ${db}`);
  assert.equal(lines[4], `Temporal UI:          http://localhost:${ui}`);
  assert.match(lines[5]!, /^Temporal Metrics:     http:\/\/localhost:\d+\/metrics$/);
  assert.ok(existsSync(db));

  const health = ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`, '--color', 'never', '--client-connect-timeout', '2s'];
  const early = temporalSync(h, health);
  assert.equal(early.code, 1);
  assert.equal(early.stderr, 'Error: failed checking cluster health: health check returned unhealthy status: NOT_SERVING\n');
  await until(() => temporalSync(h, health).code === 0);
  assert.equal(temporalSync(h, health).stdout, 'SERVING\n');
  const uiStatus = await new Promise<number>((r) => http.get(`http://127.0.0.1:${ui}/`, (res) => (res.resume(), r(res.statusCode ?? 0))));
  assert.equal(uiStatus, 200);

  // a second server on the same ports fails the way the real one does
  const busy = temporalSync(h, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(ui)]);
  assert.equal(busy.code, 1);
  assert.equal(busy.stderr, `Error: can't set frontend port ${port}: listen tcp 127.0.0.1:${port}: bind: address already in use\n`);

  dev.child.kill('SIGTERM');
  assert.equal(await dev.exited, 0);
  const gone = temporalSync(h, health);
  assert.equal(gone.code, 1);
  assert.equal(
    gone.stderr,
    `Error: failed reaching server: last connection error: connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:${port}: connect: connection refused"\n`,
  );
  assert.match(readFileSync(db, 'utf8'), /namespaces: default\n/);
});

test('stand-in temporal: busy default UI port, exit during startup, unknown flag', async (t) => {
  const h = home(t);
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => holder.close(() => r())));
  const held = (holder.address() as AddressInfo).port;
  if (held > 1000) {
    const r = temporalSync(h, ['server', 'start-dev', '--port', String(held - 1000)]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Error: can't use default UI port ${held} (${held - 1000} + 1000): listen tcp 127.0.0.1:${held}: bind: address already in use\n`);
  }
  const port = await freePort();
  const dev = startDev(h, ['--port', String(port), '--headless'], { FAKE_TEMPORAL_EXIT_DURING_STARTUP: '3' });
  assert.equal(await dev.exited, 3);
  assert.match(dev.err(), /Error: unable to start server: membership failed to initialise/);
  const bad = temporalSync(h, ['server', 'start-dev', '--bogus']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'Error: unknown flag: --bogus\n');
});
