/**
 * The fast paths behind `stigmer local start|status` keep their answers honest:
 * - a recorded service with an exec probe is reused without running the probe only while its
 *   process group holds every declared port; otherwise the real probe decides;
 * - an installed download is trusted without hashing only while each file's stamp (size, inode,
 *   mtime, ctime) is unchanged; anything else is hashed as before;
 * - the Ollama check (check-llm, status) without undici: the model pulled or not, and why it is unreachable;
 * - `local start --foreground` prints the addresses once ready, then Ctrl-C stops everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TaskRecord, TaskResult, UndoDescriptor } from '../src/model/kind.js';
import { isAlive, type StopProcess } from '../src/process/proc.js';
import processKind, { type ProcessWith } from '../tasks/process.js';
import { checkOllama } from '../src/stack/llm/check.js';
import { checkInstalled, installDownload } from '../src/process/download/install.js';
import { makeContext, undoAll } from './kind-context.js';
import { assertNothingLeft, cleanupHome, cliEnv, cliPath, fixture, freePort, sleep, tempHome } from './helpers.js';
import { buildTarGz, sha256hex, startMirror } from './mirror.js';
import { stackRig } from './temporal-mirror.js';

const node = process.execPath;
const service = fixture('service.mjs');

/** An exec probe that appends a line to `counter` each time it runs and passes. */
function countingProbe(counter: string): NonNullable<ProcessWith['ready']> {
  return { exec: { command: node, args: ['-e', `require('fs').appendFileSync(${JSON.stringify(counter)}, 'x')`] }, interval: '50ms', timeout: '10s' };
}

const runs = (counter: string): number => (existsSync(counter) ? readFileSync(counter, 'utf8').length : 0);

function recordOf(result: TaskResult, undos: UndoDescriptor[]): TaskRecord {
  return { kind: 'process', status: 'ready', specHash: 'spec-1', outputs: result.outputs, undo: undos };
}

test('exec probe: a recorded instance holding its declared ports is reused without running the probe', async () => {
  const home = tempHome();
  const undos: UndoDescriptor[] = [];
  try {
    const port = await freePort();
    const counter = join(home, 'probe-runs');
    const w: ProcessWith = { command: node, args: [service, '--listen', port], ports: [port], ready: countingProbe(counter) };
    // The first start waits for the port itself, then the probe decides.
    const first = makeContext<ProcessWith>(home, { ...w, ready: { tcp: { host: '127.0.0.1', port } } });
    const r1 = await processKind.run(first.ctx);
    undos.push(...first.undos);

    const again = makeContext<ProcessWith>(home, w, { previous: recordOf(r1, first.undos) });
    const r2 = await processKind.run(again.ctx);
    assert.equal(r2.satisfied, true);
    assert.equal(r2.summary, `already running (pid ${(first.undos[0] as StopProcess).pid})`);
    assert.match(r2.lastProbe!, new RegExp(`^holds port ${port}; connected to (127\\.0\\.0\\.1|\\[::1\\]):${port}$`));
    assert.equal(runs(counter), 0, 'the exec probe did not run');
    assert.deepEqual(again.undos, []);
  } finally {
    await undoAll(undos);
    await cleanupHome(home);
  }
});

test('exec probe: when the recorded group does not hold every declared port, the real probe decides', async () => {
  const home = tempHome();
  const undos: UndoDescriptor[] = [];
  try {
    const [port, other] = [await freePort(), await freePort()];
    const counter = join(home, 'probe-runs');
    const first = makeContext<ProcessWith>(home, { command: node, args: [service, '--listen', port], ready: { tcp: { host: '127.0.0.1', port } } });
    const r1 = await processKind.run(first.ctx);
    undos.push(...first.undos);

    // `other` is declared but nobody listens on it: the probe runs (and passes: reused).
    const w: ProcessWith = { command: node, args: [service, '--listen', port], ports: [port, other], ready: countingProbe(counter) };
    const again = makeContext<ProcessWith>(home, w, { previous: recordOf(r1, first.undos) });
    const r2 = await processKind.run(again.ctx);
    assert.equal(r2.satisfied, true);
    assert.equal(r2.lastProbe, 'exit 0');
    assert.equal(runs(counter), 1);

    // A failing probe restarts it, as before.
    const failing: ProcessWith = { ...w, ports: [port, other], ready: { exec: { command: node, args: ['-e', 'process.exit(3)'] }, timeout: '300ms' } };
    const third = makeContext<ProcessWith>(home, failing, { previous: recordOf(r1, first.undos) });
    const err = await processKind.run(third.ctx).then(() => undefined, (e: Error) => e);
    undos.push(...third.undos);
    assert.equal(third.lines[0], `pid ${(first.undos[0] as StopProcess).pid} is running but not healthy (exit 3); restarting it`);
    assert.equal(isAlive(first.undos[0] as StopProcess), false);
    assert.match(String(err?.message), /^not ready after 300 ms: exec /);
  } finally {
    await undoAll(undos);
    await cleanupHome(home);
  }
});

test('a verified install is trusted by its stamps; a same-size rewrite with the old mtime is still caught', async () => {
  const home = tempHome();
  const tool = '#!/bin/sh\necho tool 1.0\n';
  const archive = await buildTarGz([
    { path: 'LICENSE', content: 'MIT\n' },
    { path: 'tool', content: tool, mode: 0o755 },
  ]);
  const mirror = await startMirror({ '/tool.tar.gz': archive });
  try {
    const params = { url: `${mirror.url}/tool.tar.gz`, sha256: sha256hex(archive), dest: join(home, 'bin', 'tool-1.0'), extract: true };
    assert.equal((await installDownload(params)).satisfied, false);
    const marker = JSON.parse(readFileSync(join(params.dest, '.stigmer-install.json'), 'utf8')) as { files: Record<string, string>; stamps: Record<string, string> };
    assert.deepEqual(Object.keys(marker.stamps), Object.keys(marker.files));
    assert.match(marker.stamps['tool']!, /^\d+:\d+:\d+:\d+$/);
    assert.equal((await installDownload(params)).satisfied, true);

    // chmod changes the ctime: the file is hashed again, and still matches.
    chmodSync(join(params.dest, 'tool'), 0o755);
    assert.ok(await checkInstalled(params));

    // The same size, the old mtime, other bytes: the ctime gives it away, the hash refuses it.
    const file = join(params.dest, 'tool');
    const before = statSync(file);
    writeFileSync(file, tool.replace('1.0', '6.6'));
    utimesSync(file, before.atime, before.mtime);
    assert.equal(statSync(file).size, before.size);
    assert.equal(await checkInstalled(params), undefined);
    const again = await installDownload(params);
    assert.equal(again.satisfied, false);
    assert.equal(readFileSync(file, 'utf8'), tool);
    assert.equal(mirror.requests.length, 2);
  } finally {
    await mirror.close();
    await cleanupHome(home);
  }
});

test('checkOllama: the model pulled or not, an error status, not JSON, no answer in time, nothing listening', async (t) => {
  let mode: 'ok' | 'error' | 'garbage' | 'hang' = 'ok';
  const server = http.createServer((req, res) => {
    if (req.url !== '/api/tags') return void res.writeHead(404).end();
    if (mode === 'ok') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ models: [{ name: 'llama3.2:latest' }, { name: 'qwen2.5-coder:7b' }, { nope: 1 }] }));
    else if (mode === 'error') res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'out of memory' }));
    else if (mode === 'garbage') res.writeHead(200).end('<html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const o = { timeoutMs: 300 };

  assert.deepEqual(await checkOllama(url, 'qwen2.5-coder:7b', o), { reachable: true, modelPresent: true, message: `ollama at ${url} has qwen2.5-coder:7b` });
  assert.equal((await checkOllama(`${url}/`, 'llama3.2', o)).modelPresent, true, 'a trailing slash, and a name without :latest');
  assert.deepEqual(await checkOllama(url, 'mistral:7b', o), {
    reachable: true,
    modelPresent: false,
    message: `ollama at ${url} does not have mistral:7b pulled`,
    hint: 'stigmer llm pull mistral:7b',
  });
  const hint = 'Start Ollama (ollama serve), or point backend.local.llm.base_url / STIGMER_LLM_BASE_URL at it; then stigmer llm pull m';
  mode = 'error';
  assert.deepEqual(await checkOllama(url, 'm', o), { reachable: false, message: 'ollama /api/tags returned 500: out of memory', hint });
  mode = 'garbage';
  assert.equal((await checkOllama(url, 'm', o)).message, `ollama /api/tags at ${url} did not answer JSON`);
  mode = 'hang';
  assert.equal((await checkOllama(url, 'm', o)).message, `ollama /api/tags at ${url} did not finish within 300 ms`);
  const abort = new AbortController();
  abort.abort();
  assert.equal((await checkOllama(url, 'm', { ...o, signal: abort.signal })).message, `ollama /api/tags at ${url} was cancelled`);
  const port = await freePort();
  assert.deepEqual(await checkOllama(`http://127.0.0.1:${port}`, 'm', o), { reachable: false, message: `could not reach ollama at http://127.0.0.1:${port}: connection refused`, hint });
});

test('local start --foreground prints the addresses once ready; Ctrl-C stops everything', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const child = spawn(node, [cliPath, 'local', 'start', '--foreground'], { cwd: r.home, env: cliEnv(r.home, r.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const deadline = Date.now() + 60_000;
  while (!stderr.includes('running in the foreground') && Date.now() < deadline && child.exitCode === null) await sleep(20);
  try {
    assert.ok(
      stdout.includes(
        ['✓ Stigmer is running', `  Temporal gRPC:  127.0.0.1:${r.ports.temporal} (managed, Temporal CLI 1.8.2)`, `  Temporal UI:    http://localhost:${r.ports.ui}`, `  Server:         127.0.0.1:${r.ports.server}`].join('\n'),
      ),
      stdout + stderr,
    );
    assert.match(stderr, /3 service\(s\) running in the foreground; press Ctrl-C to stop them all/);
    assert.ok(!stdout.includes('stigmer local stop'), 'one way to stop it is named, not two');
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 130, stderr);
  assert.equal(r.temporalStarts().length, 1);
  // Ctrl-C undid everything by itself, before the rig's own `local stop` and checks.
  await assertNothingLeft(r.home, 5000);
});
