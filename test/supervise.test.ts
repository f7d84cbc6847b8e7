/**
 * Supervision in `stigmer up --foreground` (the CLI is the host): restart policies with backoff,
 * crash-loop, a dependent left alone, policy `no`, and a stop during a backoff. Backoff timing is
 * read from the recorded events (events.jsonl), never from the wall clock of the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEvents, type SupervisorEvent } from '../src/supervisor/events.js';
import { cleanupHome, cliEnv, cliPath, fixture, freePort, processesWithHome, sleep, spawnCli, tempHome, until as pollUntil, type RunningCli } from './helpers.js';

const node = process.execPath;
const service = fixture('service.mjs');

interface Rig {
  home: string;
  data: string;
  file: string;
}

function rig(yaml: string[]): Rig {
  const home = tempHome();
  const data = join(home, 'data');
  mkdirSync(data, { recursive: true });
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(file, ['version: 1', 'tasks:', ...yaml, ''].join('\n'));
  return { home, data, file };
}

/** A process task running the fake service on `port`, with extra `with` lines. */
function svc(name: string, port: number, args: string[], withLines: string[] = [], needs: string[] = []): string {
  return [
    `  ${name}:`,
    `    uses: process`,
    ...(needs.length ? [`    needs: [${needs.join(', ')}]`] : []),
    `    with:`,
    `      command: ${node}`,
    `      args: [${[service, '--listen', String(port), ...args].map((a) => JSON.stringify(a)).join(', ')}]`,
    `      ports: [${port}]`,
    `      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s }`,
    `      stop: { signal: SIGTERM, grace: 2s }`,
    ...withLines.map((l) => `      ${l}`),
  ].join('\n');
}

type Foreground = RunningCli;

const foreground = (r: Rig): Foreground => spawnCli(['up', '--foreground', '-f', r.file, '--data-dir', r.data], { home: r.home });

const until = (what: string, cond: () => boolean, ms = 30_000): Promise<true> => pollUntil(what, cond, ms, { everyMs: 25 });

const events = (r: Rig, task?: string): SupervisorEvent[] => readEvents(r.data).filter((e) => task === undefined || e.task === task);
const types = (evs: SupervisorEvent[]): string => evs.map((e) => e.type).join(' ');

interface StateRecord {
  status: string;
  service?: string;
  restarts?: number;
  lastExit?: { code: number | null; signal: string | null; at: string };
  nextRestartAt?: string | null;
  readyAt?: string;
  undo: { pid: number }[];
}

function record(r: Rig, task: string): StateRecord | undefined {
  const f = join(r.data, 'state.json');
  if (!existsSync(f)) return undefined;
  try {
    return (JSON.parse(readFileSync(f, 'utf8')) as { tasks: Record<string, StateRecord> }).tasks[task];
  } catch {
    return undefined; // mid-rename
  }
}

/**
 * Stop the foreground CLI by pid (SIGINT, as Ctrl-C), check that nothing it started is left;
 * returns its exit code and the events as it left them.
 */
async function finish(r: Rig, fg: Foreground): Promise<{ code: number | null; events: SupervisorEvent[] }> {
  if (fg.child.exitCode === null) fg.child.kill('SIGINT');
  const code = await fg.exit;
  const evs = events(r);
  await cleanupHome(r.home);
  return { code, events: evs };
}

test('on-failure: a service crashing after ready is restarted with doubling backoff, then crash-loop; its dependent is not restarted', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const r = rig([
    svc('flaky', p1, ['--exit-after', '150', '--code', '3'], ['restart: { policy: on-failure, backoff: 50ms, max_backoff: 150ms, max_restarts: 3, window: 1m }']),
    svc('web', p2, [], [], ['flaky']),
  ]);
  const fg = foreground(r);
  try {
    await until('crash-loop', () => events(r, 'flaky').some((e) => e.type === 'crash-loop'), 60_000);
    const evs = events(r, 'flaky');
    // three rounds of exited -> restarting -> started -> ready, then the fourth exit is a crash loop
    assert.equal(types(evs), 'exited restarting started ready exited restarting started ready exited restarting started ready exited crash-loop');
    const restarting = evs.filter((e) => e.type === 'restarting');
    assert.deepEqual(restarting.map((e) => [e.attempt, e.max, e.delay_ms]), [[1, 3, 50], [2, 3, 100], [3, 3, 150]]);
    assert.ok(restarting.every((e) => e.detail === 'exited with code 3'));
    // the restart never came before its backoff: started - restarting >= delay (as recorded)
    for (const [i, e] of evs.entries()) {
      if (e.type !== 'restarting') continue;
      const started = evs[i + 1]!;
      assert.equal(started.type, 'started');
      assert.ok(Date.parse(started.at) - Date.parse(e.at) >= e.delay_ms!, `${started.at} - ${e.at} < ${e.delay_ms}`);
    }
    // every exit is the code it exited with; each restarted instance has a new pid
    assert.ok(evs.filter((e) => e.type === 'exited').every((e) => e.code === 3 && e.signal === null));
    const pids = evs.filter((e) => e.type === 'started').map((e) => e.pid);
    assert.equal(new Set(pids).size, 3);
    const crash = evs.at(-1)!;
    assert.equal(crash.code, 3);
    assert.equal(crash.max, 3);
    assert.match(crash.detail!, /more than 3 restarts within 1m; last: exit code 3; last log line: exiting with code 3/);

    await until('crash-loop recorded, its group stopped', () => record(r, 'flaky')?.service === 'crash-loop' && record(r, 'flaky')?.undo.length === 0);
    const rec = record(r, 'flaky')!;
    assert.equal(rec.restarts, 3);
    assert.equal(rec.lastExit?.code, 3);
    assert.equal(rec.nextRestartAt, null);

    // the dependent kept its one instance
    assert.equal(events(r, 'web').length, 0);
    assert.equal(record(r, 'web')?.service, 'ready');

    // the log says it in stigmer's own lines
    const log = readFileSync(join(r.data, 'logs', 'flaky.log'), 'utf8');
    assert.match(log, / --- exited with code 3; restarting in 50ms \(1\/3\)\n/);
    assert.match(log, / --- restarted after exit code 3 \(2\/3\)\n/);
    assert.match(log, / --- crash loop: more than 3 restarts within 1m/);
    assert.ok(fg.child.exitCode === null, 'the session goes on');
  } finally {
    const end = await finish(r, fg);
    assert.equal(end.code, 130, fg.err());
    // Ctrl-C stopped both on purpose: a stopped event each
    assert.deepEqual(end.events.filter((e) => e.type === 'stopped').map((e) => e.task).sort(), ['flaky', 'web']);
  }
});

test('a crash once is restarted once and stays ready; policy no leaves a crashed service down and the rest running', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const marker = join(tmpdir(), `stigmer-crashed-once-${process.pid}-${Date.now()}`);
  const r = rig([
    svc('once', p1, ['--exit-after', '100', '--code', '1', '--once', marker], ['restart: { policy: always, backoff: 50ms }']),
    svc('plain', p2, ['--exit-after', '100', '--code', '2']),
  ]);
  const fg = foreground(r);
  try {
    await until('once ready again', () => types(events(r, 'once')) === 'exited restarting started ready');
    await until('plain exited', () => events(r, 'plain').some((e) => e.type === 'exited'));
    assert.equal(types(events(r, 'plain')), 'exited');
    assert.equal(events(r, 'plain')[0]!.code, 2);
    await until('plain recorded', () => record(r, 'plain')?.lastExit?.code === 2);
    assert.equal(record(r, 'plain')!.restarts ?? 0, 0);
    assert.match(readFileSync(join(r.data, 'logs', 'plain.log'), 'utf8'), / --- exited after exit code 2; not restarted \(restart policy no\)\n/);
    await until('once recorded ready', () => record(r, 'once')?.service === 'ready');
    const rec = record(r, 'once')!;
    assert.equal(rec.restarts, 1);
    assert.equal(rec.lastExit?.code, 1);
    const started = events(r, 'once').find((e) => e.type === 'started')!;
    assert.equal(rec.undo[0]!.pid, started.pid, 'the undo record is the new instance');
    assert.ok(fg.child.exitCode === null, 'the session goes on with what still runs');
  } finally {
    assert.equal((await finish(r, fg)).code, 130, fg.err());
    rmSync(marker, { force: true });
  }
});

test('Ctrl-C (or SIGTERM) during a backoff cancels the pending restart; everything is stopped', async () => {
  const port = await freePort();
  const r = rig([svc('slow', port, ['--exit-after', '100', '--code', '1'], ['restart: { policy: on-failure, backoff: 30s }'])]);
  const fg = foreground(r);
  try {
    await until('restarting', () => events(r, 'slow').some((e) => e.type === 'restarting'));
    await until('recorded', () => record(r, 'slow')?.service === 'restarting');
    const rec = record(r, 'slow')!;
    assert.ok(rec.nextRestartAt && Date.parse(rec.nextRestartAt) - Date.parse(events(r, 'slow').at(-1)!.at) === 30_000);
    fg.child.kill('SIGTERM');
    assert.equal(await fg.exit, 143, fg.err());
    assert.equal(types(events(r, 'slow')), 'exited restarting stopped', 'no restart after the stop');
    assert.deepEqual(processesWithHome(r.home), []);
  } finally {
    await finish(r, fg);
  }
});

test('the host API in-process: runGraph(supervised) + superviseRun; restart(task) replaces one instance, its dependent untouched; stop() then undo leaves nothing', async () => {
  const { loadTasksFile } = await import('../src/engine/load.js');
  const { buildGraph } = await import('../src/engine/graph.js');
  const { runGraph } = await import('../src/engine/run.js');
  const { StateStore } = await import('../src/engine/state.js');
  const { undoRecorded } = await import('../src/engine/rollback.js');
  const { superviseRun } = await import('../src/engine/supervise.js');
  const { kinds } = await import('../src/commands/kinds.js');
  const { isAlive } = await import('../src/process/proc.js');
  const [p1, p2] = [await freePort(), await freePort()];
  const r = rig([svc('db', p1, []), svc('api', p2, [], [], ['db'])]);
  // the services carry this test's home, like a CLI's (how cleanupHome finds leftovers)
  const file = await loadTasksFile(r.file, { kinds, config: async () => undefined });
  const state = new StateStore(join(r.data, 'state.json'));
  const env = { ...process.env, STIGMER_HOME: r.home };
  try {
    const outcome = await runGraph({
      graph: buildGraph(file), kinds, baseDir: r.home, dataDir: r.data, state, config: undefined, env, signal: new AbortController().signal, canPrompt: false, emit: () => {}, supervised: true,
    });
    assert.ok(outcome.ok);
    assert.deepEqual([...outcome.services.keys()].sort(), ['api', 'db']);
    const sup = superviseRun({ dataDir: r.data, state, services: outcome.services });
    const seen: string[] = [];
    sup.on((ev) => seen.push(`${ev.task}:${ev.type}`));
    const before = { db: state.record('db')!.undo[0] as { pid: number; startTime: number }, api: state.record('api')!.undo[0] as { pid: number; startTime: number } };
    const res = await sup.restart('db');
    assert.equal(res.status, 'ready');
    const db = state.record('db')!.undo[0] as { pid: number; startTime: number };
    assert.notEqual(db.pid, before.db.pid);
    assert.ok(isAlive(db) && !isAlive(before.db));
    assert.equal((state.record('api')!.undo[0] as { pid: number }).pid, before.api.pid, 'the dependent keeps its instance');
    assert.ok(isAlive(before.api));
    assert.deepEqual(seen, ['db:stopped', 'db:started', 'db:ready']);
    assert.equal(state.record('db')!.restarts, 1);
    await assert.rejects(sup.restart('nope'), /nope is not a supervised service \(supervised: db, api\)/);
    await sup.stop();
    const undone = await undoRecorded(state, { emit: () => {} });
    assert.deepEqual(undone.failed, []);
    sup.stopped();
  } finally {
    await cleanupHome(r.home);
  }
});

test('up --foreground on a stack whose services an earlier CLI run started adopts them: an exit is noticed by polling and restarted', async () => {
  const port = await freePort();
  const r = rig([svc('web', port, [], ['restart: { policy: on-failure, backoff: 50ms }'])]);
  const { runCli } = await import('./helpers.js');
  // `run` with no supervisor runs in the CLI, which leaves the service running when it exits (a
  // detached `up`'s supervisor holds the stack: up --foreground on it is refused, see supervisor-detached)
  const up = await runCli(['run', 'web', '-f', r.file, '--data-dir', r.data], { home: r.home });
  assert.equal(up.code, 0, up.stderr);
  const first = record(r, 'web')!.undo[0]!.pid;
  const fg = foreground(r);
  try {
    await until('foreground', () => fg.err().includes('running in the foreground'));
    assert.equal(record(r, 'web')!.undo[0]!.pid, first, 'reused, not restarted');
    process.kill(first, 'SIGKILL');
    await until('restarted', () => types(events(r, 'web')) === 'exited restarting started ready');
    const exit = events(r, 'web')[0]!;
    // not its child: the exit was seen, its code was not
    assert.deepEqual([exit.code, exit.signal, exit.pid], [null, null, first]);
    assert.notEqual(record(r, 'web')!.undo[0]!.pid, first);
  } finally {
    assert.equal((await finish(r, fg)).code, 130, fg.err());
  }
});
