/**
 * `up --foreground` goes through the data dir's supervisor, as a detached `up` does, and stays
 * attached: it streams every service's output prefixed by task (with the supervisor's `---`
 * restart lines); `status`, `restart` and `down` from a second command work as on a detached
 * stack; Ctrl-C undoes everything (exit 130); a `down` from elsewhere ends the session (exit 0); a
 * supervisor killed -9 is said (exit 1); a foreground CLI killed -9 takes the stack down with it.
 * All through the real CLI; waits are bounded polls; every process is checked gone by pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readProcStat, type StopProcess } from '../src/process/proc.js';
import type { StateData as State } from '../src/engine/state-file.js';
import { cleanupHome, fixture, freePort, readStateOf, spawnCli, stackCli as cli, tempHome, until, type RunningCli as Foreground, type StackDirs as Rig } from './helpers.js';

type Rec = StopProcess;

/** A process task running the fake service on `port`, with extra `with` lines. */
function svc(name: string, port: number, args: string[], withLines: string[] = []): string[] {
  return [
    `  ${name}:`,
    '    uses: process',
    '    with:',
    `      command: ${JSON.stringify(process.execPath)}`,
    `      args: [${[fixture('service.mjs'), '--listen', String(port), ...args].map((a) => JSON.stringify(a)).join(', ')}]`,
    `      ports: [${port}]`,
    `      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 60s }`,
    '      stop: { signal: SIGTERM, grace: 1s }',
    ...withLines.map((l) => `      ${l}`),
  ];
}

function rig(tasks: string[][] | ((home: string) => string[][])): Rig {
  const home = tempHome();
  if (typeof tasks === 'function') tasks = tasks(home);
  const dir = join(home, 'proj');
  mkdirSync(dir, { recursive: true });
  const data = join(home, 'data');
  const file = join(dir, 'stigmer.tasks.yaml');
  writeFileSync(file, ['version: 1', 'tasks:', ...tasks.flat(), ''].join('\n'));
  return { home, dir, data, file };
}

const stateOf = (r: Rig): State | undefined => readStateOf<State>(r);
const recOf = (r: Rig, task: string): Rec | undefined => stateOf(r)?.tasks[task]?.undo.find((u): u is Rec => u.type === 'stop-process');

const foreground = (r: Rig): Foreground => spawnCli(['up', '--foreground', '--output', 'plain', '--file', r.file, '--data-dir', r.data], { home: r.home, cwd: r.dir });

const attached = (fg: Foreground): Promise<true> =>
  until('the foreground session attached', () => /service\(s\) running in the foreground; press Ctrl-C/.test(fg.err()) || fg.child.exitCode !== null, 60_000).then(() => {
    assert.equal(fg.child.exitCode, null, `up --foreground exited early:\n${fg.out()}${fg.err()}`);
    return true as const;
  });

/** The end of every test: the foreground CLI stopped by pid, nothing of the stack left (by pid). */
async function finish(r: Rig, fg: Foreground, pids: Set<number>): Promise<void> {
  if (fg.child.exitCode === null && fg.child.signalCode === null) fg.child.kill('SIGINT');
  await fg.exit;
  try {
    await until('every recorded process gone', () => [...pids].every((p) => !isAlive({ pid: p, startTime: 0 }) || readProcStat(p)?.state === 'Z'), 10_000);
  } finally {
    await cleanupHome(r.home);
  }
}

test('up --foreground runs in the supervisor: prefixed output and restart lines streamed, status shows the supervisor, restart from a second command, Ctrl-C undoes everything (130)', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const r = rig((home) => [svc('web', p1, ['--exit-after', '1200', '--code', '3', '--once', join(home, 'crashed-once')], ['restart: { policy: on-failure, backoff: 100ms }']), svc('api', p2, [])]);
  const fg = foreground(r);
  const pids = new Set<number>();
  try {
    await attached(fg);
    const sup = stateOf(r)!.supervisor!;
    pids.add(sup.pid);
    assert.notEqual(sup.pid, fg.child.pid, 'the supervisor runs the stack, not the foreground CLI');
    const api = recOf(r, 'api')!;
    pids.add(api.pid);
    assert.equal(readProcStat(api.pid)?.ppid, sup.pid, "the service is the supervisor's child");

    // status sees the supervisor alive, with its pid
    const st = await cli(r, ['status', '--json']);
    const json = JSON.parse(st.stdout) as { supervisor: { pid: number; alive: boolean } | null; tasks: { task: string; state: string }[] };
    assert.deepEqual([json.supervisor?.pid, json.supervisor?.alive], [sup.pid, true], st.stdout);

    // web crashes once after ready: the supervisor restarts it, and the session streams it all, prefixed
    await until('the restart streamed', () => /web \| --- restarted after exit code 3 \(1\/\d+\)/.test(fg.out()), 30_000, { show: () => fg.out() });
    const web = await until('web running again', () => recOf(r, 'web'));
    pids.add(web.pid);
    await until("the restarted web's own output streamed", () => new RegExp(`web \\| service pid=${web.pid} starting`).test(fg.out()), 15_000, { show: () => fg.out() });
    assert.match(fg.out(), /web \| exiting with code 3/);

    // restart from a second command: through the same supervisor; the session streams the new instance
    const restarted = await cli(r, ['restart', 'api', '--output', 'plain']);
    assert.equal(restarted.code, 0, restarted.stderr);
    const api2 = recOf(r, 'api')!;
    pids.add(api2.pid);
    assert.notEqual(api2.pid, api.pid);
    assert.equal(readProcStat(api2.pid)?.ppid, sup.pid);
    assert.ok(!isAlive(api), 'the old instance was stopped');
    await until('the new api streamed', () => new RegExp(`api \\| service pid=${api2.pid} starting`).test(fg.out()), 15_000, { show: () => fg.out() });
    assert.equal(fg.child.exitCode, null, 'the session stays');

    // Ctrl-C: the supervisor undoes everything, the down is shown, the CLI exits 130
    fg.child.kill('SIGINT');
    assert.equal(await fg.exit, 130, fg.err());
    assert.match(fg.err(), /api: undone/);
    assert.match(fg.err(), /web: undone/);
    for (const pid of pids) assert.ok(!isAlive({ pid, startTime: 0 }) || readProcStat(pid)?.state === 'Z', `pid ${pid} still runs`);
    assert.equal(Object.keys(stateOf(r)?.tasks ?? {}).length, 0, 'nothing recorded');
  } finally {
    await finish(r, fg, pids);
  }
});

test('up --foreground attaches to a detached stack; a down from another command ends the session (exit 0)', async () => {
  const port = await freePort();
  const r = rig([svc('web', port, [])]);
  const pids = new Set<number>();
  const up = await cli(r, ['up']);
  assert.equal(up.code, 0, up.stderr);
  const before = recOf(r, 'web')!;
  const sup = stateOf(r)!.supervisor!;
  pids.add(before.pid).add(sup.pid);
  const fg = foreground(r);
  try {
    await attached(fg);
    assert.equal(recOf(r, 'web')!.pid, before.pid, 'the running stack was attached to, not started again');
    assert.equal(stateOf(r)!.supervisor!.pid, sup.pid, 'the same supervisor');
    const down = await cli(r, ['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await fg.exit, 0, fg.err());
    assert.match(fg.err(), /the stack was stopped \(by `stigmer down`\)/);
    assert.ok(!isAlive(before));
  } finally {
    await finish(r, fg, pids);
  }
});

/** A foreground session on one service, attached; its supervisor and service recorded in `pids`. */
async function oneService(): Promise<{ r: Rig; fg: Foreground; pids: Set<number>; sup: { pid: number; startTime: number }; web: Rec }> {
  const r = rig([svc('web', await freePort(), [])]);
  const fg = foreground(r);
  const pids = new Set<number>();
  try {
    await attached(fg);
  } catch (err) {
    await finish(r, fg, pids);
    throw err;
  }
  const sup = stateOf(r)!.supervisor!;
  const web = recOf(r, 'web')!;
  pids.add(sup.pid).add(web.pid);
  return { r, fg, pids, sup, web };
}

test('kill -9 of the supervisor: the foreground session says so and exits 1; its services are stopped', async () => {
  const { r, fg, pids, sup, web } = await oneService();
  try {
    process.kill(sup.pid, 'SIGKILL');
    assert.equal(await fg.exit, 1, fg.err());
    assert.match(fg.err(), new RegExp(`the supervisor of .* \\(pid ${sup.pid}\\) died`));
    await until('its service stopped by the kernel', () => !isAlive(web), 10_000);
  } finally {
    await finish(r, fg, pids);
  }
});

test('kill -9 of the foreground CLI takes the stack down with it', async () => {
  const { r, fg, pids, sup, web } = await oneService();
  try {
    fg.child.kill('SIGKILL');
    await fg.exit;
    await until('the stack down', () => !isAlive(web) && !isAlive(sup) && !stateOf(r)?.supervisor, 15_000);
    assert.equal(Object.keys(stateOf(r)?.tasks ?? {}).length, 0, 'undone, not just killed');
  } finally {
    await finish(r, fg, pids);
  }
});
