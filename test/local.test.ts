/**
 * `stigmer local ...` end to end, offline: the packaged stigmer.tasks.yaml on the stand-in
 * Temporal (downloaded from a local release mirror), the fixture server and agent-runner, random
 * ports, a temp STIGMER_HOME. Zero-config start, status, logs, `stigmer run start-agent-runner`,
 * `local restart <component>` from any directory, a second start as a no-op, stop; port conflicts; Temporal dying during startup; a broken config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, cliPath, processesWithHome, runCli, sleep } from './helpers.js';
import { stackRig, type StackRig } from './temporal-mirror.js';
import { readProcStat } from '../src/process/proc.js';

async function rig(t: { after: (fn: () => Promise<void>) => void }, opts?: Parameters<typeof stackRig>[0]): Promise<StackRig> {
  const r = await stackRig(opts);
  t.after(() => r.cleanup());
  return r;
}

async function componentPids(r: StackRig): Promise<Record<string, number | null>> {
  const s = await runCli(['local', 'status', '--json'], { home: r.home, env: r.env });
  assert.equal(s.code, 0, s.stderr);
  const status = JSON.parse(s.stdout) as { components: { name: string; pid: number | null }[] };
  return Object.fromEntries(status.components.map((c) => [c.name, c.pid]));
}

test('zero-config: local start, status, logs, run start-agent-runner, a second start, stop', async (t) => {
  const r = await rig(t);
  const start = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const { temporal, ui, server } = r.ports;
  assert.ok(
    start.stdout.endsWith(
      [
        '',
        '✓ Stigmer is running',
        `  Temporal gRPC:  127.0.0.1:${temporal} (managed, Temporal CLI 1.8.2)`,
        `  Temporal UI:    http://localhost:${ui}`,
        `  Server:         127.0.0.1:${server}`,
        `  LLM:            ollama qwen2.5-coder:7b at ${r.ollamaUrl}`,
        'Stop it with: stigmer local stop',
        '',
      ].join('\n'),
    ),
    start.stdout,
  );
  assert.match(start.stdout, /gather-secrets: \| Using Ollama \(no API key required\)/);
  // a fresh home gets the commented default config, as `init` writes it
  assert.ok(start.stdout.startsWith(`Created the default config: ${join(r.home, 'config.yaml')} (edit it, or: stigmer config set KEY VALUE)\n`), start.stdout);
  assert.match(readFileSync(join(r.home, 'config.yaml'), 'utf8'), /^# yaml-language-server: \$schema=.*config\.schema\.json\n[\s\S]*# model: qwen2\.5-coder:7b/);
  assert.equal(start.stderr, '', 'no warnings: the fake Ollama has the model');

  // Temporal: the real start-dev flags, bound to 127.0.0.1, SQLite in the data dir
  const db = join(r.home, 'data', 'temporal.db');
  assert.deepEqual(r.temporalStarts().map((s) => s.argv), [
    ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(temporal), '--ui-port', String(ui), '--db-filename', db, '--namespace', 'default'],
  ]);
  assert.ok(existsSync(db));

  // the exact environment contract of the agent-runner
  const [runner] = r.records('agent-runner');
  assert.ok(runner);
  const contract = Object.fromEntries(
    ['MODE', 'STIGMER_BACKEND_ENDPOINT', 'TEMPORAL_SERVICE_ADDRESS', 'TEMPORAL_NAMESPACE', 'STIGMER_LLM_PROVIDER', 'STIGMER_LLM_MODEL', 'STIGMER_LLM_BASE_URL', 'ANTHROPIC_API_KEY', 'OPENAI_API_KEY'].map((k) => [k, runner.env[k]]),
  );
  assert.deepEqual(contract, {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: `127.0.0.1:${server}`,
    TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    STIGMER_LLM_PROVIDER: 'ollama',
    STIGMER_LLM_MODEL: 'qwen2.5-coder:7b',
    STIGMER_LLM_BASE_URL: r.ollamaUrl,
    ANTHROPIC_API_KEY: undefined,
    OPENAI_API_KEY: undefined,
  });
  assert.equal(runner.env['STIGMER_HOME'], r.home, 'children inherit stigmer\'s own environment');
  const [srv] = r.records('server');
  assert.equal(srv!.env['STIGMER_SERVER_ADDRESS'], `127.0.0.1:${server}`);
  assert.equal(srv!.env['STIGMER_DATA_DIR'], join(r.home, 'data'));

  // status: every component ready, Temporal healthy, the LLM reachable with its model
  const status = await runCli(['local', 'status'], { home: r.home, env: r.env });
  assert.equal(status.code, 0, status.stderr);
  const lines = status.stdout.split('\n');
  assert.equal(lines[0], `Stigmer local stack: running (${r.home})`);
  // supervised: RESTARTS 0, no LAST EXIT, HEALTH none yet or passing (its checks run every 5 s),
  // and the supervisor's line
  const health = '(-|ok \\S+ (ms|s) ago)';
  assert.match(lines[3]!, new RegExp(`^temporal +ready +\\d+ +\\S+ (ms|s) +0 +- +${health} +127\\.0\\.0\\.1:${temporal}$`));
  assert.match(lines[4]!, new RegExp(`^server +ready +\\d+ +\\S+ (ms|s) +0 +- +${health} +127\\.0\\.0\\.1:${server}$`));
  assert.match(lines[5]!, new RegExp(`^agent-runner +ready +\\d+ +\\S+ (ms|s) +0 +- +${health} +-$`));
  const supervisorPid = (JSON.parse(readFileSync(join(r.home, 'state.json'), 'utf8')) as { supervisor: { pid: number } }).supervisor.pid;
  assert.ok(lines.some((l) => new RegExp(`^Supervisor: +pid ${supervisorPid}, up `).test(l)), status.stdout);
  assert.ok(lines.includes(`Temporal:  127.0.0.1:${temporal} (managed, Temporal CLI 1.8.2), UI http://localhost:${ui}; health: SERVING`), status.stdout);
  assert.ok(lines.includes(`LLM:       ollama qwen2.5-coder:7b at ${r.ollamaUrl}; reachable, model pulled`), status.stdout);
  assert.ok(lines.includes('Secrets:   none needed (ollama); ANTHROPIC_API_KEY not set, OPENAI_API_KEY not set'), status.stdout);
  const before = await componentPids(r);
  assert.ok(before['temporal'] && before['server'] && before['agent-runner']);

  const logs = await runCli(['local', 'logs', 'agent-runner', '-n', '1'], { home: r.home, env: r.env });
  assert.equal(logs.stdout, 'agent-runner ready\n');

  // a second start restarts nothing
  const again = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await componentPids(r), before);
  assert.equal(r.temporalStarts().length, 1);
  assert.equal(r.records('agent-runner').length, 1);

  // rerun one step: only the agent-runner restarts
  const rerun = await runCli(['run', 'start-agent-runner', '-f', join(process.cwd(), 'stigmer.tasks.yaml')], { home: r.home, env: r.env });
  assert.equal(rerun.code, 0, rerun.stderr);
  const after = await componentPids(r);
  assert.equal(after['temporal'], before['temporal']);
  assert.equal(after['server'], before['server']);
  assert.notEqual(after['agent-runner'], before['agent-runner']);
  assert.equal(r.records('agent-runner').length, 2);
  assert.deepEqual(r.records('agent-runner')[1]!.env['TEMPORAL_SERVICE_ADDRESS'], `127.0.0.1:${temporal}`);

  // ... and from any directory (runCli's cwd is the home, no tasks file there): local restart <component>
  const away = await runCli(['run', 'start-agent-runner'], { home: r.home, env: r.env });
  assert.equal(away.code, 2);
  assert.equal(away.stderr, "stigmer run start-agent-runner: there is no ./stigmer.tasks.yaml here. start-agent-runner is the local Stigmer stack's task; from any directory:\n  stigmer local restart agent-runner\n");
  const restartRunner = await runCli(['local', 'restart', 'agent-runner'], { home: r.home, env: r.env });
  assert.equal(restartRunner.code, 0, restartRunner.stderr);
  assert.match(restartRunner.stdout, /start-agent-runner: \| stopped pid \d+[\s\S]*start-agent-runner: ready \(/);
  assert.match(restartRunner.stdout, /start-server: ready \(already running, reused\)/);
  assert.match(restartRunner.stdout, /start-temporal: ready \(already running, reused\)/);
  const restarted = await componentPids(r);
  assert.deepEqual([restarted['temporal'], restarted['server']], [before['temporal'], before['server']]);
  assert.ok(restarted['agent-runner'] && restarted['agent-runner'] !== after['agent-runner']);
  assert.equal(r.records('agent-runner').length, 3);
  const restartServer = await runCli(['local', 'restart', 'server'], { home: r.home, env: r.env });
  assert.equal(restartServer.code, 0, restartServer.stderr);
  const serverRestarted = await componentPids(r);
  assert.notEqual(serverRestarted['server'], before['server']);
  assert.deepEqual([serverRestarted['temporal'], serverRestarted['agent-runner']], [before['temporal'], restarted['agent-runner']], 'what needs the server keeps running');
  const unknown = await runCli(['local', 'restart', 'agnt-runner'], { home: r.home, env: r.env });
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, 'stigmer local restart: no component "agnt-runner" (did you mean "agent-runner"?). Components: temporal, server, agent-runner, ollama\n');
  const fg = await runCli(['local', 'restart', 'server', '--foreground'], { home: r.home, env: r.env });
  assert.equal(fg.code, 2);
  assert.match(fg.stderr, /--foreground restarts the whole stack/);
  assert.deepEqual(await componentPids(r), serverRestarted, 'refused restarts change nothing');

  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home), []);
  const stopAgain = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stopAgain.code, 0, stopAgain.stderr);
  const stopped = await runCli(['local', 'status'], { home: r.home, env: r.env });
  assert.equal(stopped.code, 3, 'stopped (LSB)');
  assert.equal(stopped.stdout.split('\n')[0], `Stigmer local stack: stopped (${r.home})`);
  assert.ok(stopped.stdout.includes('health: not running'), stopped.stdout);
});

test('port 7233 held by another process: fails naming it, with the external-Temporal hint', async (t) => {
  const r = await rig(t);
  const holder = net.createServer();
  await new Promise<void>((res) => holder.listen(r.ports.temporal, '127.0.0.1', res));
  t.after(() => new Promise<void>((res) => holder.close(() => res())));
  const start = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(start.code, 1);
  const p = r.ports.temporal;
  assert.match(start.stderr, new RegExp(`^stigmer: start-temporal failed: port ${p} is held by pid ${process.pid} \\(.*node.*\\)\n`, 'm'));
  assert.match(start.stderr, /^start-server: undone/m, 'what had started meanwhile was undone');
  assert.ok(
    start.stderr.includes(
      `  hint: Stop it, or use it as an external Temporal: stigmer config set backend.local.temporal.managed false; stigmer config set backend.local.temporal.address 127.0.0.1:${p} (or set TEMPORAL_SERVICE_ADDRESS=127.0.0.1:${p}). If it is the UI port (${r.ports.ui}), give the UI another one: stigmer config set backend.local.temporal.ui_port <port>.\n`,
    ),
    start.stderr,
  );
  assert.deepEqual(processesWithHome(r.home), []);
});

test('Temporal exiting during startup: the start fails and undoes everything', async (t) => {
  const r = await rig(t);
  const start = await runCli(['local', 'start'], { home: r.home, env: { ...r.env, FAKE_TEMPORAL_EXIT_DURING_STARTUP: '3' } });
  assert.equal(start.code, 1);
  assert.match(start.stderr, /stigmer: start-temporal failed: exited with code 3 before it was ready\n/);
  assert.match(start.stderr, /membership failed to initialise/);
  assert.deepEqual(processesWithHome(r.home), []);
  const status = await runCli(['local', 'status', '--json'], { home: r.home, env: r.env });
  const s = JSON.parse(status.stdout) as { stack: string; components: { state: string }[] };
  assert.equal(s.stack, 'stopped');
});

test('stop, status and logs work with a broken config.yaml', async (t) => {
  const r = await rig(t);
  const start = await runCli(['local', 'start', '--output', 'json'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const events = start.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(events.at(-1), {
    event: 'summary',
    temporal: { address: `127.0.0.1:${r.ports.temporal}`, managed: true, version: '1.8.2', ui_url: `http://localhost:${r.ports.ui}` },
    server: { endpoint: `127.0.0.1:${r.ports.server}` },
    llm: { provider: 'ollama', model: 'qwen2.5-coder:7b', base_url: r.ollamaUrl },
  });
  const file = join(r.home, 'config.yaml');
  writeFileSync(file, 'backend:\n  local: [oops\n');
  const status = await runCli(['local', 'status'], { home: r.home, env: r.env });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(status.stdout.split('\n')[0], `Stigmer local stack: running (${r.home})`);
  assert.match(status.stdout, new RegExp(`Config:    ${file.replace(/[.]/g, '\\.')} is invalid: ${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: invalid YAML: `));
  const logs = await runCli(['local', 'logs', 'server'], { home: r.home, env: r.env });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /fixture server listening on 127\.0\.0\.1:\d+/);
  const bad = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: invalid YAML: `));
  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home), []);
});

test('config set on a running stack, local restart applies it; check-llm only warns; run works on every task', async (t) => {
  const r = await rig(t);
  const start = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const set = await runCli(['config', 'set', 'backend.local.llm.model', 'llama3.2'], { home: r.home, env: r.env });
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /restart the stack for this to apply: stigmer local restart\n$/);

  // a broken config is reported before anything is stopped: the running stack stays as it is
  const configFile = join(r.home, 'config.yaml');
  const good = existsSync(configFile) ? readFileSync(configFile, 'utf8') : undefined;
  writeFileSync(configFile, 'backend:\n  local:\n    temporal:\n      port: high\n');
  const refused = await runCli(['local', 'restart'], { home: r.home, env: r.env });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /config\.yaml:4:13: Expected backend\.local\.temporal\.port to be an integer/);
  assert.equal(r.temporalStarts().length, 1, 'nothing was stopped or started');
  assert.ok(processesWithHome(r.home).length >= 3, 'the stack is still running');
  if (good === undefined) rmSync(configFile);
  else writeFileSync(configFile, good);

  const restart = await runCli(['local', 'restart'], { home: r.home, env: r.env });
  assert.equal(restart.code, 0, restart.stderr);
  // the fake Ollama has only qwen2.5-coder:7b: a warning, and the stack is up anyway
  assert.equal(
    restart.stderr,
    `stigmer: warning: check-llm: Ollama at ${r.ollamaUrl} does not have the model llama3.2\n  hint: Pull it: ollama pull llama3.2 (or stigmer llm pull llama3.2)\n`,
  );
  const runners = r.records('agent-runner');
  assert.equal(runners.length, 2);
  assert.equal(runners[1]!.env['STIGMER_LLM_MODEL'], 'llama3.2');
  assert.equal(r.temporalStarts().length, 2, 'restart stops and starts Temporal too');

  const file = join(process.cwd(), 'stigmer.tasks.yaml');
  const graph = await runCli(['graph', '-f', file], { home: r.home, env: r.env });
  assert.match(graph.stdout, /critical path \(\*\): resolve-config -> find-ollama -> download-ollama -> use-ollama -> start-ollama -> pull-model -> check-llm/);
  for (const task of ['resolve-config', 'download-temporal', 'gather-secrets', 'start-server', 'check-llm', 'start-temporal', 'wait-temporal', 'start-agent-runner']) {
    const run = await runCli(['run', task, '-f', file], { home: r.home, env: r.env });
    if (task === 'check-llm') assert.equal(run.code, 0, `optional: ${run.stderr}`);
    else assert.equal(run.code, 0, `${task}: ${run.stderr}`);
  }
  const status = await runCli(['local', 'status', '--json'], { home: r.home, env: r.env });
  const s = JSON.parse(status.stdout) as { stack: string; temporal: { health: string } };
  assert.equal(s.stack, 'running');
  assert.equal(s.temporal.health, 'SERVING');
  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home), []);
});

test('kill -9 of a start in progress: local stop finds and stops what it left', async (t) => {
  const r = await rig(t);
  const child = spawn(process.execPath, [cliPath, 'local', 'start'], {
    cwd: r.home,
    env: cliEnv(r.home, { ...r.env, FIXTURE_SERVER_DELAY_MS: '20000' }),
    stdio: 'ignore',
  });
  const exited = new Promise((res) => child.on('exit', res));
  const state = join(r.home, 'state.json');
  const recorded = (): string[] => {
    try {
      const tasks = (JSON.parse(readFileSync(state, 'utf8')) as { tasks: Record<string, { undo: unknown[] }> }).tasks;
      return Object.entries(tasks).filter(([, v]) => v.undo.length > 0).map(([k]) => k).sort();
    } catch {
      return [];
    }
  };
  const deadline = Date.now() + 30_000;
  while (recorded().join() !== 'start-server,start-temporal' && Date.now() < deadline) await sleep(50);
  assert.deepEqual(recorded(), ['start-server', 'start-temporal']);
  child.kill('SIGKILL');
  await exited;
  // The run goes on in the stack's supervisor, the parent of Temporal and the server: nothing is
  // orphaned. What runs is the supervisor, the holders of its two locks (its own and the run's:
  // `cat` on a pipe from it) and the two services. Temporal's readiness is probed in process
  // (gRPC): no probe program runs.
  const supervisor = (JSON.parse(readFileSync(state, 'utf8')) as { supervisor?: { pid: number } }).supervisor;
  assert.ok(supervisor, 'the state records the supervisor');
  const running = processesWithHome(r.home);
  const others = running.filter((p) => p.pid !== supervisor.pid && p.cmd !== 'cat');
  assert.ok(running.some((p) => p.pid === supervisor.pid && /internal supervise/.test(p.cmd)), JSON.stringify(running));
  assert.equal(others.length, 2, `Temporal and the server, nothing else: ${JSON.stringify(running)}`);
  for (const p of others) assert.equal(readProcStat(p.pid)?.ppid, supervisor.pid, `${p.cmd} is the supervisor's child, not an orphan`);
  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home), []);
});

test('local restart temporal with an external Temporal: refused, nothing started', async (t) => {
  const r = await rig(t);
  const res = await runCli(['local', 'restart', 'temporal'], { home: r.home, env: { ...r.env, TEMPORAL_SERVICE_ADDRESS: '127.0.0.1:7233' } });
  assert.equal(res.code, 2);
  assert.equal(res.stderr, 'stigmer local restart temporal: the Temporal in use is external (127.0.0.1:7233); stigmer does not run it, so it does not restart it\n');
  assert.deepEqual(r.temporalStarts(), []);
  assert.deepEqual(processesWithHome(r.home), []);
});

test('local restart agent-runner from any directory: only the runner is restarted, by the supervisor; the others keep running', async (t) => {
  const r = await rig(t);
  const start = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const before = await componentPids(r);
  const elsewhere = mkdtempSync(join(tmpdir(), 'stigmer-cwd-'));
  t.after(() => rmSync(elsewhere, { recursive: true, force: true }));
  const restart = await runCli(['local', 'restart', 'agent-runner', '--output', 'plain'], { home: r.home, env: r.env, cwd: elsewhere });
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stdout, /start-agent-runner: ready/);
  assert.match(restart.stdout, /start-server: ready \(already running, reused\)/);
  assert.doesNotMatch(restart.stdout, /start-(temporal|server): \| (stopped|started) pid/, 'Temporal and the server are not touched');
  const after = await componentPids(r);
  assert.notEqual(after['agent-runner'], before['agent-runner']);
  assert.equal(after['temporal'], before['temporal']);
  assert.equal(after['server'], before['server']);
  const supervisor = (JSON.parse(readFileSync(join(r.home, 'state.json'), 'utf8')) as { supervisor: { pid: number } }).supervisor.pid;
  assert.equal(readProcStat(after['agent-runner']!)?.ppid, supervisor, "the new runner is the supervisor's child");
  assert.equal(r.records('agent-runner').length, 2, 'a second runner started');
  const unknown = await runCli(['local', 'restart', 'agent-runer'], { home: r.home, env: r.env });
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /no component "agent-runer" \(did you mean "agent-runner"\?\)/);
  const stop = await runCli(['local', 'stop'], { home: r.home, env: r.env });
  assert.equal(stop.code, 0, stop.stderr);
  assert.deepEqual(processesWithHome(r.home), []);
});
