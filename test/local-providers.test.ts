/**
 * `stigmer local start` with hosted LLM providers and an external Temporal: the key from the
 * environment (no prompt), from a masked prompt on a pseudo-terminal, or a clear failure with
 * --no-input; the exact agent-runner environment for each; and a secret value (sk-test-...)
 * never appearing in any file under STIGMER_HOME nor in anything stigmer prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, cliEnv, cliPath, fixture, freePort, processesWithHome, runCli, sleep } from './helpers.js';
import { filesContaining, stackRig, type StackRig, type StackRecord } from './temporal-mirror.js';
import { startScreen } from './tmux.js';

async function rig(t: { after: (fn: () => Promise<void>) => void }): Promise<StackRig> {
  const r = await stackRig();
  t.after(() => r.cleanup());
  return r;
}

const CONTRACT = ['MODE', 'STIGMER_BACKEND_ENDPOINT', 'TEMPORAL_SERVICE_ADDRESS', 'TEMPORAL_NAMESPACE', 'STIGMER_LLM_PROVIDER', 'STIGMER_LLM_MODEL', 'STIGMER_LLM_BASE_URL', 'ANTHROPIC_API_KEY', 'OPENAI_API_KEY'];

function contractOf(rec: StackRecord | undefined): Record<string, string | undefined> {
  assert.ok(rec, 'the agent-runner recorded its environment');
  return Object.fromEntries(CONTRACT.map((k) => [k, rec.env[k]]));
}

/** Everything the CLI printed, plus every file under STIGMER_HOME, must be free of the secret. */
function assertNeverShown(r: StackRig, secret: string, outputs: string[]): void {
  for (const o of outputs) assert.ok(!o.includes(secret), `the secret was printed:\n${o}`);
  assert.deepEqual(filesContaining(r.home, secret), [], 'the secret was written under STIGMER_HOME');
}

test('anthropic with the key in the environment: no prompt, the exact runner environment, never shown', async (t) => {
  const r = await rig(t);
  const key = 'sk-test-ant-env-4f9c2a7b1d';
  const env = { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic', STIGMER_LLM_BASE_URL: undefined, ANTHROPIC_API_KEY: key };
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /gather-secrets: \| Using Anthropic \(ANTHROPIC_API_KEY from the environment\)/);
  assert.match(start.stdout, /  LLM:            anthropic claude-sonnet-4-5 at https:\/\/api\.anthropic\.com\n/);
  assert.deepEqual(contractOf(r.records('agent-runner')[0]), {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: `127.0.0.1:${r.ports.server}`,
    TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${r.ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    STIGMER_LLM_PROVIDER: 'anthropic',
    STIGMER_LLM_MODEL: 'claude-sonnet-4-5',
    STIGMER_LLM_BASE_URL: 'https://api.anthropic.com',
    ANTHROPIC_API_KEY: key,
    OPENAI_API_KEY: undefined,
  });
  // the key reaches the runner through its environment only, never its command line
  assert.ok(!r.records('agent-runner')[0]!.argv.join(' ').includes(key));

  const status = await runCli(['local', 'status'], { home: r.home, env });
  assert.match(status.stdout, /\nSecrets:   ANTHROPIC_API_KEY set \(agent-runner, environment\) \[needed\], OPENAI_API_KEY not set\n/);
  assert.match(status.stdout, /\nLLM:       anthropic claude-sonnet-4-5 at https:\/\/api\.anthropic\.com; not checked/);
  const json = await runCli(['local', 'status', '--json'], { home: r.home, env });
  assert.deepEqual(JSON.parse(json.stdout).secrets['ANTHROPIC_API_KEY'], { needed: true, agent_runner: true, environment: true, source: 'environment' });
  // a key in .env is said to come from .env, not from the environment
  writeFileSync(join(r.home, '.env'), 'OPENAI_API_KEY=sk-openai-from-dotenv-0123456789\n');
  const dotenvStatus = await runCli(['local', 'status'], { home: r.home, env });
  assert.match(dotenvStatus.stdout, /, OPENAI_API_KEY set \(\.env\)\n/);
  assert.ok(!dotenvStatus.stdout.includes('sk-openai-from-dotenv'));
  rmSync(join(r.home, '.env'));
  const again = await runCli(['local', 'start', '--output', 'json'], { home: r.home, env });
  assert.equal(again.code, 0, again.stderr);
  const logs = await runCli(['local', 'logs'], { home: r.home, env });
  const plainStatus = await runCli(['status'], { home: r.home, env });
  const stop = await runCli(['local', 'stop'], { home: r.home, env });
  assert.equal(stop.code, 0, stop.stderr);
  assertNeverShown(r, key, [start.stdout, start.stderr, status.stdout, json.stdout, again.stdout, again.stderr, logs.stdout, plainStatus.stdout, stop.stdout, stop.stderr]);
});

test('anthropic without a key and --no-input: fails at once naming the variable, leaves nothing running', async (t) => {
  const r = await rig(t);
  const env = { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic', CI: undefined };
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 1);
  assert.match(start.stderr, /stigmer: gather-secrets failed: ANTHROPIC_API_KEY is not set \(--no-input was given\)\n/);
  assert.match(start.stderr, /  hint: Set ANTHROPIC_API_KEY in the environment or in \.env, or run interactively to be asked for it\.\n/);
  assert.deepEqual(processesWithHome(r.home), []);
  assert.deepEqual(r.records('agent-runner'), []);
  // in CI (no terminal either), the same, with that reason
  const ci = await runCli(['local', 'start'], { home: r.home, env: { ...env, CI: 'true' } });
  assert.equal(ci.code, 1);
  assert.match(ci.stderr, /ANTHROPIC_API_KEY is not set \(CI is set, so stigmer does not prompt\)/);
});

/** Run the CLI on a pseudo-terminal (util-linux `script`), answering `prompt` with `answer`. */
function runOnPty(args: string[], home: string, env: Record<string, string | undefined>, prompt: string, answer: string): Promise<{ code: number | null; output: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, cliPath, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: home, env: cliEnv(home, env), stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let answered = false;
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (!answered && output.includes(prompt)) {
        answered = true;
        // type it like a person would, then Enter
        setTimeout(() => child.stdin.write(`${answer}\r`), 50);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('anthropic with a masked prompt on a pseudo-terminal', async (t) => {
  const r = await rig(t);
  const key = 'sk-test-ant-typed-8e1d5c3a90';
  const env = { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic', CI: undefined };
  const run = await runOnPty(['local', 'start'], r.home, env, 'Enter Anthropic API key', key);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /Enter Anthropic API key/);
  assert.equal(contractOf(r.records('agent-runner')[0])['ANTHROPIC_API_KEY'], key);
  const status = await runCli(['local', 'status'], { home: r.home, env });
  assert.match(status.stdout, /\nSecrets:   ANTHROPIC_API_KEY set \(agent-runner\) \[needed\], OPENAI_API_KEY not set\n/);
  const stop = await runCli(['local', 'stop'], { home: r.home, env });
  assert.equal(stop.code, 0, stop.stderr);
  assertNeverShown(r, key, [run.output, status.stdout, stop.stdout]);
});

test('openai chosen by flags, with the key from .env: the runner environment', async (t) => {
  const r = await rig(t);
  const key = 'sk-test-oai-dotenv-33aa77';
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${r.home}/.env`, `OPENAI_API_KEY=${key}\n`);
  const start = await runCli(['local', 'start', '--llm-provider', 'openai', '--llm-model', 'gpt-4.1', '--llm-base-url', 'http://127.0.0.1:9/v1'], { home: r.home, cwd: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  assert.deepEqual(contractOf(r.records('agent-runner')[0]), {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: `127.0.0.1:${r.ports.server}`,
    TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${r.ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    STIGMER_LLM_PROVIDER: 'openai',
    STIGMER_LLM_MODEL: 'gpt-4.1',
    STIGMER_LLM_BASE_URL: 'http://127.0.0.1:9/v1',
    ANTHROPIC_API_KEY: undefined,
    OPENAI_API_KEY: key,
  });
  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  // .env itself holds it (the user wrote it there); nothing stigmer wrote does
  assert.deepEqual(filesContaining(r.home, key), [`${r.home}/.env`]);
  assert.ok(!start.stdout.includes(key) && !start.stderr.includes(key));
});

test('external Temporal: no download, no start, the runner pointed at it, and stop leaves it alone', async (t) => {
  const r = await rig(t);
  // "someone else's" Temporal: the stand-in, started by the test
  const port = await freePort();
  const external = spawn(process.execPath, [fixture('temporal.mjs'), 'server', 'start-dev', '--port', String(port), '--headless'], {
    env: { ...process.env, STIGMER_HOME: r.home, FAKE_TEMPORAL_SERVING_AFTER_MS: '0' },
    stdio: 'ignore',
  });
  const exited = new Promise((res) => external.on('exit', res));
  try {
    await externalTemporal(r, port, external.pid!);
  } finally {
    external.kill('SIGTERM');
    await exited;
  }
});

async function externalTemporal(r: StackRig, port: number, externalPid: number): Promise<void> {
  const env = { ...r.env, TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${port}` };
  const start = await runCli(['local', 'start'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /download-temporal: skipped/);
  assert.match(start.stdout, /start-temporal: skipped/);
  assert.match(start.stdout, new RegExp(`  Temporal gRPC:  127\\.0\\.0\\.1:${port} \\(external\\)\n  Server:`));
  assert.deepEqual(r.mirror.requests, [], 'nothing downloaded');
  assert.equal(contractOf(r.records('agent-runner')[0])['TEMPORAL_SERVICE_ADDRESS'], `127.0.0.1:${port}`);
  const status = await runCli(['local', 'status', '--json'], { home: r.home, env });
  const s = JSON.parse(status.stdout) as { stack: string; components: { name: string; state: string }[]; temporal: { managed: boolean; health: string } };
  assert.equal(s.stack, 'running');
  assert.equal(s.components[0]!.state, 'external');
  assert.equal(s.temporal.managed, false);
  assert.equal(s.temporal.health, 'SERVING');
  const stop = await runCli(['local', 'stop'], { home: r.home, env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home).map((p) => p.pid), [externalPid], 'the external Temporal is still running');
  const still = await new Promise<boolean>((res) => {
    const c = net.connect(port, '127.0.0.1', () => (c.destroy(), res(true)));
    c.on('error', () => res(false));
  });
  assert.ok(still);
}

test('external Temporal not reachable, on a terminal: the time waited and the last error while waiting, then the whole reason and a hint naming the variable', async (t) => {
  const r = await rig(t);
  const closed = net.createServer();
  await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((res) => closed.close(() => res()));
  const at = `127\\.0\\.0\\.1:${port}`;
  const env = { ...r.env, TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${port}`, STIGMER_TEMPORAL_WAIT_TIMEOUT: '8s', NO_COLOR: '1' };
  const screen = await startScreen(['local', 'start'], { home: r.home, env, cols: 100, rows: 50 });
  t.after(() => screen.close());
  // While waiting: the title counts up, the line under it has the last error and the time waited.
  await screen.waitFor(new RegExp(`wait-temporal \\([\\d.]+ m?s\\)\n\\s+› connection refused \\(${at}\\); waited [\\d.]+ m?s of 8\\.0 s`));
  // Once the server is ready (later than the first wait line on a loaded machine), only Temporal is awaited.
  await screen.waitFor(/start-agent-runner \(waiting for wait-temporal\)/, 8_000);
  assert.equal(await screen.exitCode(), 1, await screen.text());
  const text = await screen.text();
  const view = text.slice(0, text.indexOf('stigmer: wait-temporal failed'));
  assert.match(view, /^✖ wait-temporal \([\d.]+ m?s\)$/m);
  assert.ok(view.replace(/\s+/g, ' ').includes(`› 127.0.0.1:${port} did not answer SERVING within 8.0 s (last probe: connection refused (127.0.0.1:${port}))`), view);
  assert.doesNotMatch(view, /…/);
  assert.match(
    text.replace(/\n/g, ''),
    new RegExp(`hint: Is the external Temporal at ${at} \\(from TEMPORAL_SERVICE_ADDRESS\\) up and reachable from here\\? To wait longer, set STIGMER_TEMPORAL_WAIT_TIMEOUT \\(now 8s\\)`),
  );
  await screen.close();
  await assertNothingLeft(r.home); // the screen's shell goes with tmux's server, a moment later
});

test('external Temporal not reachable: wait-temporal says so at once, then fails naming the address and the timeout variable', async (t) => {
  const r = await rig(t);
  const closed = net.createServer();
  await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((res) => closed.close(() => res()));
  const env = { ...r.env, STIGMER_TEMPORAL_WAIT_TIMEOUT: '3s' };
  const start = await runCli(['local', 'start', '--temporal-address', `127.0.0.1:${port}`], { home: r.home, env });
  assert.equal(start.code, 1);
  const at = `127\\.0\\.0\\.1:${port}`;
  assert.match(start.stdout, new RegExp(`wait-temporal: \\| connection refused \\(${at}\\); waiting up to 3\\.0 s`));
  assert.match(start.stderr, new RegExp(`stigmer: wait-temporal failed: ${at} did not answer SERVING within 3.0 s \\(last probe: connection refused \\(${at}\\)\\)\n`));
  assert.match(start.stderr, new RegExp(`hint: Is the external Temporal at ${at} \\(from --temporal-address\\) up and reachable from here\\? To wait longer, set STIGMER_TEMPORAL_WAIT_TIMEOUT \\(now 3s\\)`));
  await sleep(0);
  assert.deepEqual(processesWithHome(r.home), []);
});
