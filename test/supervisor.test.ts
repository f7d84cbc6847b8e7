/**
 * The detached supervisor (src/supervisor/): a detached `up` starts one per data dir, which runs
 * the engine and is the parent of every service; the CLI attaches over its socket (0600). A second
 * up goes through it; down goes through it and it exits; kill -9 of it stops its services (the
 * parent-death signal) and the next up brings the stack back; kill -9 of the CLI during up
 * orphans nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectDataDir } from '../src/engine/stacks.js';
import { SUPERVISOR_NODE_FLAGS } from '../src/daemon/client.js';
import { isAlive, readProcStat } from '../src/process/proc.js';
import { cleanupHome, cliEnv, cliPath, fixture, freePort, processesWithHome, runCli, sleep, tempHome, until as pollUntil } from './helpers.js';

interface Rec {
  pid: number;
  startTime: number;
  pgid: number;
}
interface State {
  supervisor?: { pid: number; startTime: number; startedAt: string; lastSeen: string; socket: string };
  tasks: Record<string, { status: string; undo: Rec[] }>;
}

/** A project folder whose tasks file runs one service on `port` (after `after` ms), needing a one-shot. */
function project(home: string, name: string, port: number, extra: string[] = []): { dir: string; data: string } {
  const dir = join(home, name);
  mkdirSync(dir, { recursive: true });
  const args = [fixture('service.mjs'), '--listen', String(port), ...extra].map((a) => JSON.stringify(a)).join(', ');
  writeFileSync(
    join(dir, 'stigmer.tasks.yaml'),
    [
      'version: 1',
      'tasks:',
      '  prepare:',
      '    uses: exec',
      `    with: { command: ${JSON.stringify(process.execPath)}, args: ["-e", "0"] }`,
      '  web:',
      '    uses: process',
      '    needs: [prepare]',
      '    with:',
      `      command: ${JSON.stringify(process.execPath)}`,
      `      args: [${args}]`,
      `      ports: [${port}]`,
      `      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 60s }`,
      '',
    ].join('\n'),
  );
  return { dir, data: projectDataDir(join(dir, 'stigmer.tasks.yaml'), home) };
}

const stateOf = (data: string): State => JSON.parse(readFileSync(join(data, 'state.json'), 'utf8')) as State;
const web = (data: string): Rec => stateOf(data).tasks['web']!.undo[0]!;

/** Wait (bounded) until `cond` holds; the deadline is generous: a loaded machine is slow, never wrong. */
const until = (cond: () => boolean, what: string, ms = 15_000): Promise<true> => pollUntil(what, cond, ms, { everyMs: 25 });

const gone = (r: { pid: number; startTime: number }): boolean => !isAlive(r);
const kill = (pid: number, sig: NodeJS.Signals = 'SIGKILL'): void => {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
};

test('detached up starts a supervisor that is the parent of the service; socket 0600; a second up goes through it; down through it ends it', async (t) => {
  const home = tempHome();
  const p = project(home, 'shop', await freePort());
  t.after(async () => {
    await runCli(['down'], { home, cwd: p.dir });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /web: ready/);
  const st = stateOf(p.data);
  const sup = st.supervisor!;
  assert.ok(sup, 'the state records the supervisor');
  assert.equal(sup.socket, join(p.data, 'supervisor.sock'));
  assert.ok(isAlive(sup), 'the supervisor runs after up returned');
  assert.equal(readProcStat(web(p.data).pid)?.ppid, sup.pid, 'the service is the supervisor\'s child');
  assert.match(readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8'), /internal\0supervise\0--data-dir\0/);
  // its node flags (a small young generation, no optimizing compiler: src/daemon/client.ts)
  assert.deepEqual(readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8').split('\0').slice(1, 1 + SUPERVISOR_NODE_FLAGS.length), [...SUPERVISOR_NODE_FLAGS]);
  const mode = statSync(sup.socket);
  assert.ok(mode.isSocket());
  assert.equal(mode.mode & 0o777, 0o600, 'the socket is the owner\'s only');

  const again = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /web: ready \(already running, reused\)/);
  assert.equal(stateOf(p.data).supervisor?.pid, sup.pid, 'the same supervisor ran it');
  assert.equal(web(p.data).pid, st.tasks['web']!.undo[0]!.pid, 'nothing restarted');

  const json = await runCli(['up', '--output', 'json'], { home, cwd: p.dir });
  assert.equal(json.code, 0, json.stderr);
  const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; task: string });
  assert.ok(events.some((e) => e.task === 'web' && e.event === 'ready'), json.stdout);

  const serviceRec = web(p.data);
  const down = await runCli(['down'], { home, cwd: p.dir });
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /web: undone/);
  assert.ok(gone(serviceRec), 'the service was stopped');
  assert.ok(gone(sup), 'the supervisor exited before down returned');
  assert.equal(existsSync(sup.socket), false, 'its socket is gone');
  assert.deepEqual(processesWithHome(home), []);
});

test('kill -9 of the supervisor: its service stops by itself (parent-death signal), status says so, the next up brings the stack back', async (t) => {
  const home = tempHome();
  const p = project(home, 'shop', await freePort());
  t.after(async () => {
    await runCli(['down'], { home, cwd: p.dir });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir });
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(p.data).supervisor!;
  const svc = web(p.data);
  kill(sup.pid);
  await until(() => gone(sup) && gone(svc), 'the supervisor and its service to be gone');
  const status = await runCli(['status', '--json'], { home, cwd: p.dir });
  assert.match(status.stdout, /"dead"/, status.stdout);
  const seen = (JSON.parse(status.stdout) as { supervisor: { pid: number; alive: boolean; last_seen: string | null } | null }).supervisor;
  assert.deepEqual([seen?.pid, seen?.alive], [sup.pid, false], 'status says the supervisor died');
  assert.ok(seen?.last_seen, 'and when it was last seen');
  const text = await runCli(['status'], { home, cwd: p.dir });
  assert.match(text.stdout, new RegExp(`supervisor: pid ${sup.pid} is gone, last seen `));

  const back = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir });
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stderr, new RegExp(`the supervisor of this stack \\(pid ${sup.pid}\\) died`));
  const next = stateOf(p.data).supervisor!;
  assert.notEqual(next.pid, sup.pid);
  assert.ok(isAlive(next) && isAlive(web(p.data)));
  assert.equal(readProcStat(web(p.data).pid)?.ppid, next.pid);
});

test('without setpriv, a service that outlived its killed supervisor is stopped by the next up and started again under the new one', async (t) => {
  const home = tempHome();
  const p = project(home, 'shop', await freePort());
  const env = { STIGMER_FAULT_NO_SETPRIV: '1' };
  t.after(async () => {
    await runCli(['down'], { home, cwd: p.dir, env });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir, env });
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(p.data).supervisor!;
  const svc = web(p.data);
  kill(sup.pid);
  await until(() => gone(sup), 'the supervisor to be gone');
  assert.ok(isAlive(svc), 'without the parent-death signal the service runs on');
  const back = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir, env });
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stderr, /died .*stopping what it left \(web\) and starting the stack again/);
  assert.ok(gone(svc), 'the orphan was stopped');
  assert.equal(readProcStat(web(p.data).pid)?.ppid, stateOf(p.data).supervisor!.pid);
});

test('kill -9 of the CLI during up: the supervisor finishes the run; down stops everything, nothing orphaned', async (t) => {
  const home = tempHome();
  const p = project(home, 'shop', await freePort(), ['--after', '1500']);
  t.after(async () => {
    await runCli(['down'], { home, cwd: p.dir });
    await cleanupHome(home);
  });
  const cli = spawn(process.execPath, [cliPath, 'up', '--output', 'plain'], { cwd: p.dir, env: cliEnv(home), stdio: 'ignore' });
  t.after(() => kill(cli.pid!));
  // the service was spawned (recorded) but is not ready yet
  await until(() => existsSync(join(p.data, 'state.json')) && !!stateOf(p.data).tasks['web']?.undo.length, 'the service to be recorded');
  kill(cli.pid!);
  await until(() => stateOf(p.data).tasks['web']?.status === 'ready', 'the supervisor to finish the run');
  const sup = stateOf(p.data).supervisor!;
  assert.ok(isAlive(sup) && isAlive(web(p.data)));
  const svc = web(p.data);
  const down = await runCli(['down'], { home, cwd: p.dir });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(gone(svc) && gone(sup));
  assert.deepEqual(processesWithHome(home), []);
});

test('two projects side by side, each with its own supervisor; down in one leaves the other running', async (t) => {
  const home = tempHome();
  const [a, b] = [project(home, 'shop', await freePort()), project(home, 'blog', await freePort())];
  t.after(async () => {
    await runCli(['down'], { home, cwd: a.dir });
    await runCli(['down'], { home, cwd: b.dir });
    await cleanupHome(home);
  });
  const [upA, upB] = await Promise.all([runCli(['up', '--output', 'plain'], { home, cwd: a.dir }), runCli(['up', '--output', 'plain'], { home, cwd: b.dir })]);
  assert.equal(upA.code, 0, upA.stderr);
  assert.equal(upB.code, 0, upB.stderr);
  const [supA, supB] = [stateOf(a.data).supervisor!, stateOf(b.data).supervisor!];
  assert.notEqual(supA.pid, supB.pid);
  const [webA, webB] = [web(a.data), web(b.data)];
  const down = await runCli(['down'], { home, cwd: a.dir });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(gone(webA), `the service of the stack that went down is stopped: ${down.stdout}`);
  assert.ok(gone(supA), 'its supervisor exited');
  assert.ok(isAlive(webB) && isAlive(supB), 'the other stack runs on');
});

test('a failed detached up: the supervisor undoes the run, reports it, and exits', async (t) => {
  const home = tempHome();
  const port = await freePort();
  const p = project(home, 'shop', port, ['--exit-after', '200', '--after', '5000']);
  t.after(async () => {
    await runCli(['down'], { home, cwd: p.dir });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--output', 'plain'], { home, cwd: p.dir });
  assert.equal(up.code, 1, up.stderr);
  assert.match(up.stderr, /web failed/);
  assert.equal(existsSync(join(p.data, 'supervisor.sock')), false);
  assert.deepEqual(processesWithHome(home), [], 'the supervisor exited before up returned');
});

test('restart <task> through the supervisor: a new instance under it, its dependent untouched; a one-shot, an unknown task and a stopped stack are refused', async (t) => {
  const home = tempHome();
  const [p1, p2] = [await freePort(), await freePort()];
  const dir = join(home, 'shop');
  mkdirSync(dir, { recursive: true });
  const svc = (name: string, port: number, needs: string[]): string[] => [
    `  ${name}:`,
    '    uses: process',
    `    needs: [${needs.join(', ')}]`,
    '    with:',
    `      command: ${JSON.stringify(process.execPath)}`,
    `      args: [${[fixture('service.mjs'), '--listen', String(port)].map((a) => JSON.stringify(a)).join(', ')}]`,
    `      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 60s }`,
  ];
  writeFileSync(
    join(dir, 'stigmer.tasks.yaml'),
    ['version: 1', 'tasks:', '  prepare:', '    uses: exec', `    with: { command: ${JSON.stringify(process.execPath)}, args: ["-e", "0"] }`, ...svc('db', p1, ['prepare']), ...svc('web', p2, ['db']), ''].join('\n'),
  );
  const data = projectDataDir(join(dir, 'stigmer.tasks.yaml'), home);
  t.after(async () => {
    await runCli(['down'], { home, cwd: dir });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--output', 'plain'], { home, cwd: dir });
  assert.equal(up.code, 0, up.stderr);
  const sup = stateOf(data).supervisor!;
  const [db, webRec] = [stateOf(data).tasks['db']!.undo[0]!, stateOf(data).tasks['web']!.undo[0]!];

  const r = await runCli(['restart', 'db', '--output', 'plain'], { home, cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /db: ready/);
  assert.doesNotMatch(r.stdout, /web:/, 'its dependent is not touched');
  const db2 = stateOf(data).tasks['db']!.undo[0]!;
  assert.notEqual(db2.pid, db.pid);
  assert.ok(gone(db), 'the old instance was stopped');
  assert.ok(isAlive(db2));
  assert.equal(readProcStat(db2.pid)?.ppid, sup.pid, 'the new instance is the supervisor\'s child');
  assert.equal(stateOf(data).supervisor?.pid, sup.pid);
  assert.ok(isAlive(webRec) && stateOf(data).tasks['web']!.undo[0]!.pid === webRec.pid, 'web runs on, the same process');

  const unknown = await runCli(['restart', 'dbb'], { home, cwd: dir });
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /no task "dbb" .*did you mean "db"/);
  const oneShot = await runCli(['restart', 'prepare'], { home, cwd: dir });
  assert.equal(oneShot.code, 1, oneShot.stderr);
  assert.match(oneShot.stderr, /prepare is not a service this stack runs/);

  assert.equal((await runCli(['down'], { home, cwd: dir })).code, 0);
  const stopped = await runCli(['restart', 'db'], { home, cwd: dir });
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /no supervisor runs the stack in .*nothing to restart/);
  assert.deepEqual(processesWithHome(home), []);
});
