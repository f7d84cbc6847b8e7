/**
 * The detached supervisor supervises: after a detached `up` it runs the watch loop (restart
 * policies, liveness checks) over services whose output it pipes into their stamped, rotated
 * logs; `stigmer run <task>` goes through it (the one writer of the state while it runs: a CLI
 * that does not go through its socket is refused) and the watch keeps supervising afterwards;
 * `down` during a backoff cancels the restart; kill -9 of it still stops everything.
 * All through the real CLI; waits are bounded polls, never timed assertions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readProcStat } from '../src/process/proc.js';
import { cleanupHome, fixture, freePort, processesWithHome, readStateOf, runCli, sleep, stackCli, tempHome } from './helpers.js';

interface Rec {
  pid: number;
  startTime: number;
  pgid: number;
}
interface State {
  supervisor?: { pid: number; startTime: number };
  tasks: Record<string, { status: string; service?: string; restarts?: number; undo: Rec[] }>;
}
interface Ev {
  task: string | null;
  type: string;
  pid?: number;
  detail?: string;
}
interface StatusJson {
  tasks: { task: string; state: string; pid?: number; restarts?: number }[];
  supervisor: { pid: number; alive: boolean } | null;
}

interface Rig {
  home: string;
  dir: string;
  data: string;
  file: string;
}

/** A tasks file with one `web` service (the fake service on `port` with `args(home)`) and extra `with` lines. */
function rig(port: number, args: (home: string) => string[], withLines: string[], ready = (_home: string): string => `ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 60s }`): Rig {
  const home = tempHome();
  const dir = join(home, 'proj');
  mkdirSync(dir, { recursive: true });
  const data = join(home, 'data');
  const file = join(dir, 'stigmer.tasks.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'tasks:',
      '  web:',
      '    uses: process',
      '    with:',
      `      command: ${JSON.stringify(process.execPath)}`,
      `      args: [${[fixture('service.mjs'), '--listen', String(port), ...args(home)].map((a) => JSON.stringify(a)).join(', ')}]`,
      `      ports: [${port}]`,
      `      ${ready(home)}`,
      '      stop: { signal: SIGTERM, grace: 1s }',
      ...withLines.map((l) => `      ${l}`),
      '',
    ].join('\n'),
  );
  return { home, dir, data, file };
}

const cli = stackCli;
const stateOf = (r: Rig): State | undefined => readStateOf<State>(r);
const webRec = (r: Rig): Rec | undefined => stateOf(r)?.tasks['web']?.undo[0];

function events(r: Rig, task = 'web'): Ev[] {
  try {
    return readFileSync(join(r.data, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Ev)
      .filter((e) => e.task === task);
  } catch {
    return [];
  }
}
const types = (evs: Ev[]): string => evs.map((e) => e.type).join(' ');

async function status(r: Rig): Promise<StatusJson> {
  const s = await cli(r, ['status', '--json']);
  return JSON.parse(s.stdout) as StatusJson;
}

/** Wait (bounded, generous: a loaded machine is slow, never wrong) until `cond` holds. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 45_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const kill = (pid: number, sig: NodeJS.Signals = 'SIGKILL'): void => {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
};

/** Down through the CLI, then kill by pid/pgid whatever of this test is still alive. */
async function teardown(r: Rig): Promise<void> {
  await cli(r, ['down']);
  for (const p of processesWithHome(r.home)) kill(p.pid);
  await cleanupHome(r.home);
}

/** The supervisor exited before `down` returned; if not, how long it took after, and what it logged. */
async function assertGoneAfterDown(r: Rig, sup: { pid: number; startTime: number }, down: { stdout: string; stderr: string }): Promise<void> {
  if (!isAlive(sup)) return;
  const t0 = Date.now();
  const status = readFileSync(`/proc/${sup.pid}/status`, 'utf8').split('\n').filter((l) => /^(State|PPid)/.test(l)).join(', ');
  await until('the supervisor to exit', () => !isAlive(sup), 30_000).catch(() => {});
  const log = existsSync(join(r.data, 'supervisor.log')) ? readFileSync(join(r.data, 'supervisor.log'), 'utf8') : '';
  assert.fail(`the supervisor (pid ${sup.pid}, ${status}) was alive when down returned; gone ${isAlive(sup) ? 'not even' : ''} ${Date.now() - t0} ms later\ndown: ${down.stdout}${down.stderr}\nsupervisor.log: ${log}`);
}

const STAMPED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (out|err|---) /;

test('detached: a service crashing after ready is restarted by the supervisor; its output is piped and stamped; `run` goes through the supervisor and the watch goes on after it', async (t) => {
  const port = await freePort();
  const r = rig(port, (home) => ['--once', join(home, 'crashed-once'), '--exit-after', '2500', '--code', '3'], ['restart: { policy: on-failure, backoff: 200ms }']);
  const marker = join(r.home, 'crashed-once');
  t.after(() => teardown(r));

  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  const first = webRec(r)!;
  assert.equal(readProcStat(first.pid)?.ppid, sup.pid, 'the service is the supervisor\'s child');
  // Its output goes through a pipe to the supervisor's log writer, not straight to the file.
  // (node's child stdio pipes are socket pairs; an unsupervised service's fd 1 is its log file)
  assert.match(readlinkSync(`/proc/${first.pid}/fd/1`), /^(pipe|socket):\[/, 'stdout is a pipe');
  assert.match(readlinkSync(`/proc/${first.pid}/fd/2`), /^(pipe|socket):\[/, 'stderr is a pipe');

  // It exits with code 3 after ready: restarted after its backoff, by the detached supervisor.
  await until('restarted and ready', () => types(events(r)) === 'exited restarting started ready');
  await until('status: restarts 1, ready', async () => {
    const web = (await status(r)).tasks.find((x) => x.task === 'web');
    return web?.restarts === 1 && web.state === 'ready';
  });
  const second = webRec(r)!;
  assert.notEqual(second.pid, first.pid);
  assert.equal(readProcStat(second.pid)?.ppid, sup.pid, 'the new instance is the supervisor\'s child too');
  const evs = await cli(r, ['events', '--json', '--no-follow']);
  assert.equal(evs.code, 0, evs.stderr);
  const seen = evs.stdout.trim().split('\n').map((l) => JSON.parse(l) as Ev).filter((e) => e.task === 'web');
  assert.deepEqual(seen.map((e) => e.type), ['exited', 'restarting', 'started', 'ready'], evs.stdout);
  assert.match(seen[1]!.detail ?? '', /exited with code 3/);

  // The log: every line stamped, the service's own lines captured, the restart said.
  const log = readFileSync(join(r.data, 'logs', 'web.log'), 'utf8').trimEnd().split('\n');
  for (const line of log) assert.match(line, STAMPED, `a stamped line: ${line}`);
  assert.ok(log.some((l) => / out service pid=\d+ starting$/.test(l)), log.join('\n'));
  assert.ok(log.some((l) => / err exiting with code 3$/.test(l)), log.join('\n'));
  assert.ok(log.some((l) => / --- restarted after exit code 3 \(1\/5\)$/.test(l)), log.join('\n'));
  const logs = await cli(r, ['logs', 'web']);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, new RegExp(`service pid=${first.pid} starting`));
  assert.match(logs.stdout, new RegExp(`service pid=${second.pid} starting`));
  assert.match(logs.stdout, /--- restarted after exit code 3 \(1\/5\)/);

  // A CLI that would write the state behind the supervisor's back is refused, naming it: a `down`
  // or a `run` that cannot reach its socket (moved away here) would run in the CLI.
  const sock = join(r.data, 'supervisor.sock');
  renameSync(sock, `${sock}.away`);
  try {
    const down = await cli(r, ['down']);
    assert.equal(down.code, 1, down.stderr);
    assert.match(down.stderr, new RegExp(`the supervisor of this stack \\(pid ${sup.pid}\\) runs .*only it may change the stack`));
    assert.match(down.stderr, /up --foreground` attaches to it/);
    const behind = await cli(r, ['run', 'web']);
    assert.equal(behind.code, 1, behind.stderr);
    assert.match(behind.stderr, new RegExp(`the supervisor of this stack \\(pid ${sup.pid}\\)`));
  } finally {
    renameSync(`${sock}.away`, sock);
  }
  assert.equal(webRec(r)!.pid, second.pid, 'the refused commands touched nothing');

  // `run web` goes through the supervisor: its new instance is the supervisor's child, watched.
  rmSync(marker); // the next instance crashes once more
  const run = await cli(r, ['run', 'web', '--output', 'plain']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /web: ready/);
  const third = webRec(r)!;
  assert.notEqual(third.pid, second.pid);
  assert.equal(stateOf(r)!.supervisor?.pid, sup.pid, 'the same supervisor');
  assert.equal(readProcStat(third.pid)?.ppid, sup.pid, 'the rerun instance is the supervisor\'s child');
  assert.ok(!isAlive(second), 'the instance before the run was stopped');
  // It crashes after the run: the watch restarts it.
  await until('restarted after the run', () => events(r).some((e) => e.type === 'exited' && e.pid === third.pid) && webRec(r)?.pid !== third.pid && events(r).at(-1)?.type === 'ready');
  const fourth = webRec(r)!;
  assert.ok(isAlive(fourth) && readProcStat(fourth.pid)?.ppid === sup.pid);
  assert.equal(types(events(r)), 'exited restarting started ready exited restarting started ready', 'the run itself is no exit of the watch');
  await until('status after the run: ready, its restarts counted on', async () => {
    const web = (await status(r)).tasks.find((x) => x.task === 'web');
    return web?.state === 'ready' && web.restarts === 3;
  });

  const down = await cli(r, ['down']);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(!isAlive(fourth), `the service was stopped: ${down.stdout}${down.stderr}`);
  await assertGoneAfterDown(r, sup, down);
  assert.equal(events(r).at(-1)?.type, 'stopped');
  assert.deepEqual(processesWithHome(r.home), []);
});

test('detached: a hung service fails its liveness checks and is restarted; kill -9 of the supervisor then stops everything', async (t) => {
  const port = await freePort();
  const r = rig(port, (home) => ['--http', '--hang-once', join(home, 'hung-once'), '--hang-after', '2000'], [
    'restart: { policy: on-failure, backoff: 100ms }',
    `health: { http: { url: "http://127.0.0.1:${port}/healthz" }, interval: 300ms, timeout: 500ms, failures: 2 }`,
  ]);
  t.after(() => teardown(r));
  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  const first = webRec(r)!;
  await until('unhealthy, then restarted and ready', () => types(events(r)).startsWith('unhealthy restarting started ready'));
  const second = webRec(r)!;
  assert.notEqual(second.pid, first.pid);
  assert.ok(!isAlive(first), 'the hung instance (it ignores SIGTERM) was killed after its grace');
  assert.equal(readProcStat(second.pid)?.ppid, sup.pid);
  assert.match(readFileSync(join(r.data, 'logs', 'web.log'), 'utf8'), / --- unhealthy after 2 failed liveness checks: /);
  await until('status: ready, restarts 1', async () => {
    const web = (await status(r)).tasks.find((x) => x.task === 'web');
    return web?.state === 'ready' && web.restarts === 1;
  });

  kill(sup.pid);
  await until('the supervisor and its service gone', () => !isAlive(sup) && !isAlive(second), 15_000);
  await until('nothing of the test left', () => processesWithHome(r.home).length === 0, 15_000);
});

test('detached: down during a backoff cancels the restart and leaves nothing running; a service between restarts keeps the supervisor', async (t) => {
  const port = await freePort();
  const r = rig(port, () => ['--exit-after', '2500', '--code', '1'], ['restart: { policy: on-failure, backoff: 60s }']);
  t.after(() => teardown(r));
  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  const first = webRec(r)!;
  // (the state is written before the event that reports it)
  await until('restarting', () => types(events(r)) === 'exited restarting');
  assert.equal(stateOf(r)?.tasks['web']?.service, 'restarting');
  // Nothing runs, but a restart is due: the supervisor stays (its idle check runs every second).
  await sleep(2_500);
  assert.ok(isAlive(sup), 'a service between restarts is not "nothing running"');
  assert.equal((await status(r)).tasks.find((x) => x.task === 'web')?.state, 'restarting');

  const down = await cli(r, ['down']);
  assert.equal(down.code, 0, down.stderr);
  await assertGoneAfterDown(r, sup, down);
  assert.ok(!isAlive(first));
  assert.equal(types(events(r)), 'exited restarting stopped', 'no restart after the down');
  assert.deepEqual(processesWithHome(r.home), []);
  assert.equal(existsSync(join(r.data, 'supervisor.sock')), false);
});

test('detached: a service given up on (policy no) with nothing else running ends the supervisor; status says dead', async (t) => {
  const port = await freePort();
  const r = rig(port, () => ['--exit-after', '2500', '--code', '1'], []);
  t.after(() => teardown(r));
  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  await until('the supervisor to exit', () => !isAlive(sup));
  assert.deepEqual(types(events(r)), 'exited');
  const s = await cli(r, ['status', '--json']);
  assert.equal(s.code, 1, s.stdout);
  assert.equal((JSON.parse(s.stdout) as StatusJson).tasks.find((x) => x.task === 'web')?.state, 'dead');
  assert.match(readFileSync(join(r.data, 'logs', 'web.log'), 'utf8'), / --- exited after exit code 1; not restarted \(restart policy no\)/);
  assert.deepEqual(processesWithHome(r.home), []);
});

test('detached: down while a `run` is in progress through the supervisor takes it over: the watch is stopped, everything undone, nothing restarts', async (t) => {
  const port = await freePort();
  // ready while the gate file exists: the test holds the rerun's instance short of ready
  const gate = (home: string): string => join(home, 'gate');
  const r = rig(port, () => [], ['restart: { policy: on-failure, backoff: 100ms }'], (home) => `ready: { exec: { command: test, args: ["-f", ${JSON.stringify(gate(home))}] }, interval: 100ms, timeout: 120s }`);
  t.after(() => teardown(r));
  writeFileSync(gate(r.home), '');
  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  const first = webRec(r)!;
  rmSync(gate(r.home));
  // `run web` stops the instance and starts a new one, which is not ready while the gate is shut
  const run = cli(r, ['run', 'web', '--output', 'plain']);
  await until('the rerun instance recorded', () => {
    const rec = webRec(r);
    return !!rec && rec.pid !== first.pid;
  });
  const second = webRec(r)!;
  const down = await cli(r, ['down']);
  assert.equal(down.code, 0, down.stderr);
  const ran = await run;
  assert.notEqual(ran.code, 0, 'the run was stopped');
  assert.match(ran.stderr, /`stigmer down` is stopping the stack/);
  assert.ok(!isAlive(first) && !isAlive(second), 'both instances are stopped');
  await assertGoneAfterDown(r, sup, down);
  writeFileSync(gate(r.home), ''); // a restart behind the undo would be ready now
  await sleep(500);
  assert.deepEqual(processesWithHome(r.home), []);
  assert.ok(!events(r).some((e) => e.type === 'restarting' || e.type === 'started'), types(events(r)));
});

test('detached: an exit while a request holds the watch paused is handled after it (a `run` of one service; the other, killed meanwhile, is restarted)', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const home = tempHome();
  const dir = join(home, 'proj');
  mkdirSync(dir, { recursive: true });
  const gate = join(home, 'gate');
  const task = (name: string, port: number, ready: string): string[] => [
    `  ${name}:`,
    '    uses: process',
    '    with:',
    `      command: ${JSON.stringify(process.execPath)}`,
    `      args: [${[fixture('service.mjs'), '--listen', String(port)].map((a) => JSON.stringify(a)).join(', ')}]`,
    `      ports: [${port}]`,
    `      ${ready}`,
    '      stop: { signal: SIGTERM, grace: 1s }',
    '      restart: { policy: on-failure, backoff: 100ms }',
  ];
  const file = join(dir, 'stigmer.tasks.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'tasks:',
      // `a` is ready while the gate file exists: the test holds its rerun short of ready
      ...task('a', pa, `ready: { exec: { command: test, args: ["-f", ${JSON.stringify(gate)}] }, interval: 100ms, timeout: 120s }`),
      ...task('b', pb, `ready: { tcp: { host: 127.0.0.1, port: ${pb} }, timeout: 60s }`),
      '',
    ].join('\n'),
  );
  const r: Rig = { home, dir, data: join(home, 'data'), file };
  t.after(() => teardown(r));
  writeFileSync(gate, '');
  const up = await cli(r, ['up', '--output', 'plain']);
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(r)!.supervisor!;
  const rec = (name: string): Rec | undefined => stateOf(r)?.tasks[name]?.undo[0];
  const [a1, b1] = [rec('a')!, rec('b')!];
  rmSync(gate);
  const run = cli(r, ['run', 'a', '--output', 'plain']);
  await until('the rerun of a recorded', () => !!rec('a') && rec('a')!.pid !== a1.pid);
  // The watch is paused for the run: b's exit now is not acted on until the run is over.
  kill(b1.pid);
  await until('b gone', () => !isAlive(b1));
  writeFileSync(gate, '');
  const ran = await run;
  assert.equal(ran.code, 0, ran.stderr);
  await until('b restarted after the run', () => types(events(r, 'b')) === 'exited restarting started ready');
  const b2 = rec('b')!;
  assert.notEqual(b2.pid, b1.pid);
  assert.ok(isAlive(b2) && readProcStat(b2.pid)?.ppid === sup.pid, 'the new b is the supervisor\'s child');
  assert.equal(events(r, 'a').length, 0, 'a, rerun by the request, was no exit of the watch');
  const down = await cli(r, ['down']);
  assert.equal(down.code, 0, down.stderr);
  await assertGoneAfterDown(r, sup, down);
  assert.deepEqual(processesWithHome(r.home), []);
});
