import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TaskRecord, TaskResult, UndoDescriptor } from '../src/model/kind.js';
import { inspectPort, isAlive, spawnService, stopGroup, type StartedService, type StopProcess } from '../src/process/proc.js';
import { tailLines } from '../src/process/log-file.js';
import processKind, { type ProcessWith } from '../tasks/process.js';
import { failureOf, inHome, makeContext, undoAll } from './kind-context.js';
import { cleanupHome, fixture, freePort, sleep, tempHome } from './helpers.js';
import { describeFailure } from '../src/model/failure.js';

const node = process.execPath;
const service = fixture('service.mjs');

function stopOf(undos: UndoDescriptor[]): StopProcess {
  assert.equal(undos.length, 1);
  const u = undos[0]!;
  assert.equal(u.type, 'stop-process');
  return u as StopProcess;
}

/** A process started by the test itself (not by the kind), carrying the test's STIGMER_HOME. */
function startOwn(home: string, args: string[]): Promise<StartedService> {
  return spawnService({ command: node, args: [service, ...args], cwd: home, env: { ...process.env, STIGMER_HOME: home }, logFile: join(home, 'own.log') });
}

const ownDesc = (svc: StartedService): StopProcess => ({
  type: 'stop-process', pid: svc.pid, pgid: svc.pgid, startTime: svc.startTime, command: svc.commandLine, signal: 'SIGTERM', graceMs: 5000, startedAt: '',
});

function recordOf(result: TaskResult, undos: UndoDescriptor[], specHash = 'spec-1'): TaskRecord {
  return { kind: 'process', status: 'ready', specHash, outputs: result.outputs, undo: undos };
}

test('a service with a tcp probe: undo recorded before it is ready, outputs, progress', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const w: ProcessWith = {
      command: node,
      args: [service, '--lines', '2', '--listen', port, '--after', 300],
      ports: [String(port)],
      ready: { tcp: { host: 'localhost', port: String(port) }, timeout: '20s' },
    };
    const t = makeContext<ProcessWith>(home, w);
    let listeningWhenRecorded: boolean | undefined;
    t.ctx.recordUndo = (u) => {
      listeningWhenRecorded = inspectPort(port).listening;
      undos.push(u);
    };
    const result = await processKind.run(t.ctx);
    assert.equal(listeningWhenRecorded, false, 'the undo step is recorded right after the spawn');
    const u = stopOf(undos);
    assert.equal(u.pgid, u.pid);
    assert.equal(u.command, `${node} ${service} --lines 2 --listen ${port} --after 300`);
    assert.equal(u.signal, 'SIGTERM');
    assert.equal(u.graceMs, 10_000);
    assert.ok(isAlive(u));
    assert.deepEqual(result.outputs, { pid: u.pid, pgid: u.pid, log: t.ctx.logFile, address: `localhost:${port}` });
    assert.match(result.summary!, new RegExp(`^ready after .+, pid ${u.pid} \\(connected to (127\\.0\\.0\\.1|\\[::1\\]):${port}\\)$`));
    assert.equal(t.lines[0], `started pid ${u.pid}; waiting for tcp localhost:${port}`);
    assert.ok(t.lines.includes('line 2'), t.lines.join('\n'));
  });
});

test('http probe: ready on the expected status; a wrong status is reported at the deadline', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const args = [service, '--http', '--listen', port, '--after', 100];
    const ok = makeContext<ProcessWith>(home, { command: node, args, ready: { http: { url: `http://localhost:${port}/healthz`, status: '200' } } });
    const result = await processKind.run(ok.ctx);
    undos.push(...ok.undos);
    assert.match(result.summary!, /\(HTTP 200\)$/);
    assert.equal(result.outputs['address'], `localhost:${port}`);
    await undoAll(undos.splice(0));

    // Probed: a server of the test's own that already answers, so only the status is wrong.
    const server = http.createServer((_req, res) => res.writeHead(503).end()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
    const bad = makeContext<ProcessWith>(home, { command: node, args: [service], ready: { http: { url }, timeout: '1s' } });
    const err = await failureOf(processKind.run(bad.ctx)).finally(() => server.close());
    undos.push(...bad.undos);
    assert.equal(err.failure.reason, 'ready-timeout');
    assert.equal(err.message, `not ready after 1.0 s: GET ${url} answering 200 (last probe: HTTP 503)`);
  });
});

test('log probe: matches what the process printed, not the command line in the header', async () => {
  await inHome(async (home, undos) => {
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--after', 300, '--ready-line', 'ready now'], ready: { log: '^ready now$' } });
    const result = await processKind.run(t.ctx);
    undos.push(...t.undos);
    const u = stopOf(undos);
    assert.ok(readFileSync(t.ctx.logFile, 'utf8').includes(`starting ${node} ${service} --after 300 --ready-line 'ready now'`));
    assert.deepEqual(tailLines(t.ctx.logFile, 2), [`service pid=${u.pid} starting`, 'ready now']);
    assert.match(result.summary!, /\(log matched \/\^ready now\$\/\)$/);
    assert.equal(result.outputs['address'], undefined);
  });
});

const healthScript = (port: number): string =>
  `const s = require('net').connect(${port}, '127.0.0.1');` +
  `s.on('connect', () => { console.log('SERVING'); process.exit(0); });` +
  `s.on('error', () => { console.error('Error: health check returned unhealthy status: NOT_SERVING'); process.exit(1); });`;

test('exec probe: ready when the command exits 0 printing the expected text', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const t = makeContext<ProcessWith>(home, {
      command: node,
      args: [service, '--listen', port, '--after', 300],
      ready: { exec: { command: node, args: ['-e', healthScript(port)], contains: 'SERVING' }, interval: '50ms' },
    });
    const result = await processKind.run(t.ctx);
    undos.push(...t.undos);
    assert.match(result.summary!, /\(exit 0: SERVING\)$/);
    await undoAll(undos.splice(0));

    const other = await freePort();
    const slow = makeContext<ProcessWith>(home, {
      command: node,
      args: [service],
      ready: { exec: { command: node, args: ['-e', healthScript(other)], contains: 'SERVING' }, interval: '400ms', timeout: '3s' },
    });
    const err = await failureOf(processKind.run(slow.ctx));
    undos.push(...slow.undos);
    assert.match(err.message, /^not ready after 3\.0 s: exec \S+ -e '.+' printing "SERVING" \(last probe: exit 1: Error: health check returned unhealthy status: NOT_SERVING\)$/);
  });
});

test('a process that exits before it is ready fails at once with its code and log tail', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const t = makeContext<ProcessWith>(home, {
      command: node,
      args: [service, '--lines', '3', '--exit-after', 100, '--code', 3],
      ready: { tcp: { port }, timeout: '20s' },
    });
    const began = Date.now();
    const err = await failureOf(processKind.run(t.ctx));
    undos.push(...t.undos);
    assert.ok(Date.now() - began < 5000, 'not at the 20 s deadline');
    const u = stopOf(undos);
    assert.equal(err.failure.reason, 'exited-before-ready');
    assert.equal(err.message, 'exited with code 3 before it was ready');
    assert.equal(err.failure.exitCode, 3);
    assert.equal(err.failure.logFile, t.ctx.logFile);
    assert.deepEqual(err.failure.logTail, [`service pid=${u.pid} starting`, 'line 1', 'line 2', 'line 3', 'exiting with code 3']);
  });
});

test('without a ready block: ready once running; dying at once still fails', async () => {
  await inHome(async (home, undos) => {
    const ok = makeContext<ProcessWith>(home, { command: node, args: [service], stop: { signal: 'SIGINT', grace: '2s' } });
    const result = await processKind.run(ok.ctx);
    undos.push(...ok.undos);
    const u = stopOf(undos);
    assert.equal(u.signal, 'SIGINT');
    assert.equal(u.graceMs, 2000);
    assert.deepEqual(result.outputs, { pid: u.pid, pgid: u.pid, log: ok.ctx.logFile });

    const dies = makeContext<ProcessWith>(home, { command: '/bin/sh', args: ['-c', 'echo "unknown flag --x"; exit 2'] });
    const err = await failureOf(processKind.run(dies.ctx));
    undos.push(...dies.undos);
    assert.equal(err.message, 'exited with code 2 before it was ready');
    assert.ok(err.failure.reason === 'exited-before-ready');
    assert.deepEqual(err.failure.logTail, ['unknown flag --x']);
  });
});

test('a readiness deadline names the probe and its last result; the process is left to the undo', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const t = makeContext<ProcessWith>(home, { command: node, args: [service], ready: { tcp: { host: 'localhost', port }, timeout: 300 } });
    const err = await failureOf(processKind.run(t.ctx));
    undos.push(...t.undos);
    assert.equal(err.failure.reason, 'ready-timeout');
    assert.equal(
      err.message,
      `not ready after 300 ms: tcp localhost:${port} (last probe: connect ECONNREFUSED 127.0.0.1:${port}; connect ECONNREFUSED ::1:${port})`,
    );
    assert.equal(describeFailure(err.failure).hint, 'The process is still running but its readiness probe never passed; check its log, or raise ready.timeout.');
    assert.ok(isAlive(stopOf(undos)));
  });
});

test('a declared port held by another process fails naming its pid and command', async () => {
  const home = tempHome();
  let holder: StartedService | undefined;
  try {
    const port = await freePort();
    holder = await startOwn(home, ['--listen', String(port)]);
    const deadline = Date.now() + 10_000;
    while (!inspectPort(port).listening && Date.now() < deadline) await sleep(20);
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--listen', port], ports: [port] });
    const err = await failureOf(processKind.run(t.ctx));
    assert.equal(err.failure.reason, 'port-in-use');
    assert.equal(err.message, `port ${port} is held by pid ${holder.pid} (${node} ${service} --listen ${port})`);
    assert.equal(describeFailure(err.failure).hint, 'Stop that process, or change the port.');
    assert.deepEqual(t.undos, [], 'nothing was started');
  } finally {
    if (holder) await stopGroup(ownDesc(holder));
    await cleanupHome(home);
  }
});

test('a recorded, healthy instance is reused; forced or changed, it is restarted', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const w: ProcessWith = { command: node, args: [service, '--listen', port], ports: [port], ready: { tcp: { port } } };
    const first = makeContext<ProcessWith>(home, w);
    const r1 = await processKind.run(first.ctx);
    undos.push(...first.undos);
    const u1 = stopOf(first.undos);
    const previous = recordOf(r1, first.undos);

    const again = makeContext<ProcessWith>(home, w, { previous });
    const r2 = await processKind.run(again.ctx);
    assert.deepEqual(r2, { satisfied: true, outputs: r1.outputs, summary: `already running (pid ${u1.pid})`, lastProbe: `connected to 127.0.0.1:${port}` });
    assert.deepEqual(again.undos, []);

    const forced = makeContext<ProcessWith>(home, w, { previous, force: true });
    const r3 = await processKind.run(forced.ctx);
    undos.push(...forced.undos);
    const u3 = stopOf(forced.undos);
    assert.notEqual(u3.pid, u1.pid);
    assert.equal(isAlive(u1), false);
    assert.equal(forced.lines[0], `stopped pid ${u1.pid} (${u1.command})`);
    assert.notEqual(r3.satisfied, true);

    const changed = makeContext<ProcessWith>(home, w, { previous: recordOf(r3, forced.undos), specHash: 'spec-2' });
    await processKind.run(changed.ctx);
    undos.push(...changed.undos);
    assert.equal(isAlive(u3), false);
    assert.ok(isAlive(stopOf(changed.undos)));
  });
});

test('a recorded instance that died is started again', async () => {
  await inHome(async (home, undos) => {
    const w: ProcessWith = { command: node, args: [service, '--ready-line', 'up'], ready: { log: '^up$' } };
    const first = makeContext<ProcessWith>(home, w);
    const r1 = await processKind.run(first.ctx);
    undos.push(...first.undos);
    const u1 = stopOf(first.undos);
    assert.equal(await stopGroup(u1, { force: true }), 'killed');

    const again = makeContext<ProcessWith>(home, w, { previous: recordOf(r1, first.undos) });
    const r2 = await processKind.run(again.ctx);
    undos.push(...again.undos);
    assert.notEqual(r2.satisfied, true);
    assert.equal(again.lines[0], `pid ${u1.pid} was no longer running`);
    assert.notEqual(stopOf(again.undos).pid, u1.pid);
  });
});

test('a recorded instance that is alive but unhealthy is restarted', async () => {
  const home = tempHome();
  const undos: UndoDescriptor[] = [];
  let stale: StartedService | undefined;
  try {
    const port = await freePort();
    stale = await startOwn(home, []);
    const previous: TaskRecord = { kind: 'process', status: 'ready', specHash: 'spec-1', outputs: { pid: stale.pid }, undo: [ownDesc(stale)] };
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--listen', port], ready: { tcp: { host: '127.0.0.1', port } } }, { previous });
    const result = await processKind.run(t.ctx);
    undos.push(...t.undos);
    assert.notEqual(result.satisfied, true);
    assert.deepEqual(t.lines.slice(0, 2), [
      `pid ${stale.pid} is running but not healthy (connect ECONNREFUSED 127.0.0.1:${port}); restarting it`,
      `stopped pid ${stale.pid} (${stale.commandLine})`,
    ]);
    assert.equal(isAlive(stale), false);
  } finally {
    if (stale) await stopGroup(ownDesc(stale));
    await undoAll(undos);
    await cleanupHome(home);
  }
});

test('a recorded pid now used by another program is not signalled', async () => {
  const home = tempHome();
  const undos: UndoDescriptor[] = [];
  let other: StartedService | undefined;
  try {
    other = await startOwn(home, []);
    const reused: StopProcess = { ...ownDesc(other), startTime: other.startTime - 1 };
    const previous: TaskRecord = { kind: 'process', status: 'ready', specHash: 'spec-1', outputs: { pid: other.pid }, undo: [reused] };
    const t = makeContext<ProcessWith>(home, { command: node, args: [service] }, { previous });
    await processKind.run(t.ctx);
    undos.push(...t.undos);
    assert.equal(t.lines[0], `pid ${other.pid} now belongs to another program; not signalled`);
    assert.ok(isAlive(other));
  } finally {
    if (other) await stopGroup(ownDesc(other));
    await undoAll(undos);
    await cleanupHome(home);
  }
});

test('an abort while waiting for readiness leaves the recorded undo to stop it', async () => {
  await inHome(async (home, undos) => {
    const port = await freePort();
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--child'], ready: { tcp: { port }, timeout: '60s' } });
    const running = processKind.run(t.ctx);
    setTimeout(() => t.abort.abort('interrupted by SIGTERM'), 200);
    const err = await failureOf(running);
    undos.push(...t.undos);
    assert.equal(err.message, 'aborted: interrupted by SIGTERM');
    const u = stopOf(undos);
    assert.ok(isAlive(u));
    await undoAll(undos.splice(0));
    assert.equal(isAlive(u), false);
  });
});

test('environment: process env + task env + with.env reach the service; bad input starts nothing', async () => {
  await inHome(async (home, undos) => {
    const t = makeContext<ProcessWith>(
      home,
      { command: node, args: [service, '--print-env', 'A,B,STIGMER_HOME', '--ready-line', 'go'], env: { A: 1, B: 'from-with' }, ready: { log: '^go$' } },
      { env: { B: 'from-task' } },
    );
    await processKind.run(t.ctx);
    undos.push(...t.undos);
    assert.deepEqual(tailLines(t.ctx.logFile, 4).slice(0, 3), ['A=1', 'B=from-with', `STIGMER_HOME=${home}`]);

    const missing = makeContext<ProcessWith>(home, { command: 'stigmer-test-no-such-command' });
    const spawnErr = await failureOf(processKind.run(missing.ctx));
    assert.equal(spawnErr.message, 'could not start stigmer-test-no-such-command: not found (ENOENT)');
    assert.deepEqual(missing.undos, []);

    const badRegex = makeContext<ProcessWith>(home, { command: node, args: [service], ready: { log: '(' } });
    const regexErr = await failureOf(processKind.run(badRegex.ctx));
    assert.equal(regexErr.failure.reason, 'invalid-input');
    assert.equal(regexErr.message, 'Expected with.ready.log to be a regular expression: Invalid regular expression: /(/: Unterminated group');
    const badSignal = makeContext<ProcessWith>(home, { command: node, stop: { signal: 'SIGNOPE' } });
    assert.equal((await failureOf(processKind.run(badSignal.ctx))).message, 'Expected with.stop.signal to be a signal name like SIGTERM, got "SIGNOPE"');
    assert.deepEqual([...badRegex.undos, ...badSignal.undos], []);
  });
});
