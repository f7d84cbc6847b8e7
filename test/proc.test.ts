import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { chmodSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TaskError } from '../src/model/kind.js';
import {
  groupMembers,
  groupOwnership,
  hasExited,
  findPortHolder,
  inspectPort,
  isAlive,
  killGroupNow,
  parseProcStat,
  processIdentity,
  readCmdline,
  readProcStat,
  spawnService,
  stopGroup,
  type StartedService,
  type StopProcess,
} from '../src/process/proc.js';
import { executeUndo, forceKillAll } from '../src/engine/undo.js';
import { tailLines } from '../src/process/log-file.js';
import { cleanupHome, fixture, freePort, sleep, tempHome, until as pollUntil } from './helpers.js';

const service = fixture('service.mjs');

function start(home: string, args: string[], task = 'svc', command = process.execPath, extra: string[] = [service]): Promise<StartedService> {
  return spawnService({
    command,
    args: [...extra, ...args],
    cwd: home,
    env: { ...process.env, STIGMER_HOME: home },
    logFile: join(home, 'logs', `${task}.log`),
  });
}

function descOf(svc: StartedService, over: Partial<StopProcess> = {}): StopProcess {
  return {
    type: 'stop-process',
    pid: svc.pid,
    pgid: svc.pgid,
    startTime: svc.startTime,
    command: svc.commandLine,
    signal: 'SIGTERM',
    graceMs: 5000,
    startedAt: new Date().toISOString(),
    ...over,
  };
}

const until = (what: string, check: () => boolean, ms = 10_000): Promise<true> => pollUntil(what, check, ms);

const logOf = (home: string, task = 'svc'): string => readFileSync(join(home, 'logs', `${task}.log`), 'utf8');

test('parseProcStat splits at the last ")" so comm may hold spaces and parentheses', () => {
  const text = '4242 (a) b (c) S 1 4242 4242 0 -1 4194304 0 0 0 0 7 5 0 0 20 0 1 0 98765 1000 200\n';
  assert.deepEqual(parseProcStat(text), { pid: 4242, comm: 'a) b (c', state: 'S', ppid: 1, pgid: 4242, startTime: 98765, threads: 1, cpuTicks: 12 });
  assert.equal(parseProcStat('garbage'), undefined);
});

test('a zombie leader whose threads are still exiting has not exited yet (its sockets are still open)', () => {
  const stat = (state: string, threads: number): string => `7 (node) ${state} 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 ${threads} 0 555`;
  assert.equal(hasExited(parseProcStat(stat('Z', 7))!), false);
  assert.equal(hasExited(parseProcStat(stat('Z', 1))!), true);
  assert.equal(hasExited(parseProcStat(stat('X', 1))!), true);
  assert.equal(hasExited(parseProcStat(stat('S', 7))!), false);
});

test('readProcStat reads a live process whose executable name has spaces and ")"', async () => {
  const home = tempHome();
  try {
    const weird = join(home, 'we)ird (na me');
    symlinkSync(process.execPath, weird);
    const svc = await start(home, [], 'weird', weird, ['-e', 'setInterval(() => {}, 1000)']);
    const stat = readProcStat(svc.pid);
    assert.ok(stat);
    assert.equal(stat.comm, 'we)ird (na me');
    assert.equal(stat.pid, svc.pid);
    assert.equal(stat.pgid, svc.pid, 'a service leads its own process group');
    assert.equal(stat.ppid, process.pid);
    assert.equal(stat.startTime, svc.startTime);
    assert.equal(readCmdline(svc.pid), `${weird} -e setInterval(() => {}, 1000)`);
    assert.deepEqual(processIdentity(svc.pid), { pid: svc.pid, pgid: svc.pid, startTime: svc.startTime });
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
  } finally {
    await cleanupHome(home);
  }
});

test('isAlive: a matching start time is alive; another start time or a zombie is not', async () => {
  const self = readProcStat(process.pid)!;
  assert.equal(isAlive({ pid: process.pid, startTime: self.startTime }), true);
  assert.equal(isAlive({ pid: process.pid, startTime: self.startTime + 1 }), false);
  const home = tempHome();
  try {
    // The shell forks `sleep 0`, then becomes `sleep 30`, which never reaps it: a zombie.
    const svc = await start(home, ['-c', 'sleep 0 & exec sleep 30'], 'zombie', '/bin/sh', []);
    let zombie: number | undefined;
    await until('a zombie child', () => {
      for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        const s = readProcStat(Number(name));
        if (s && s.ppid === svc.pid && s.state === 'Z') zombie = s.pid;
      }
      return zombie !== undefined;
    });
    const z = readProcStat(zombie!)!;
    assert.equal(isAlive({ pid: z.pid, startTime: z.startTime }), false);
    assert.deepEqual(groupMembers(svc.pgid), [svc.pid], 'zombies are not members');
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
  } finally {
    await cleanupHome(home);
  }
});


test('stopGroup stops a service and its grandchild with SIGTERM to the group', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--child']);
    await until('the grandchild', () => groupMembers(svc.pgid).length === 2);
    assert.equal(groupOwnership(descOf(svc)), 'alive');
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
    assert.deepEqual(groupMembers(svc.pgid), []);
    const log = logOf(home);
    assert.match(log, /^--- \d{4}-\d\d-\d\dT[\d:.]+Z starting \S+ \S+service\.mjs --child\n/);
    assert.match(log, /got SIGTERM, exiting/);
    assert.equal(await stopGroup(descOf(svc)), 'not-running');
    assert.equal(await executeUndo(descOf(svc)), `pid ${svc.pid} was no longer running`);
  } finally {
    await cleanupHome(home);
  }
});

test('a service ignoring SIGTERM is killed after the grace period', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--ignore-term']);
    await until('the service to start', () => logOf(home).includes('starting\n'));
    const msg = await executeUndo(descOf(svc, { graceMs: 200 }));
    assert.equal(msg, `killed pid ${svc.pid} (${svc.commandLine}): it did not stop within 200 ms of SIGTERM`);
    assert.equal(isAlive(svc), false);
    assert.match(logOf(home), /ignoring SIGTERM/);
  } finally {
    await cleanupHome(home);
  }
});

test('force skips the grace period', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--ignore-term', '--child']);
    await until('the grandchild', () => groupMembers(svc.pgid).length === 2);
    assert.equal(await stopGroup(descOf(svc, { graceMs: 600_000 }), { force: true }), 'killed');
    assert.deepEqual(groupMembers(svc.pgid), []);
  } finally {
    await cleanupHome(home);
  }
});

test('a pid with another start time is never signalled', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--child']);
    await until('the grandchild', () => groupMembers(svc.pgid).length === 2);
    const stale = descOf(svc, { startTime: svc.startTime + 1 });
    assert.equal(groupOwnership(stale), 'pid-reused');
    assert.equal(await stopGroup(stale), 'pid-reused');
    assert.equal(await stopGroup(stale, { force: true }), 'pid-reused');
    assert.equal(killGroupNow(stale), false);
    forceKillAll([stale]);
    assert.equal(await executeUndo(stale), `pid ${svc.pid} now belongs to another program; not signalled`);
    await sleep(100);
    assert.equal(isAlive(svc), true);
    assert.equal(groupMembers(svc.pgid).length, 2);
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
  } finally {
    await cleanupHome(home);
  }
});

test('members left in the group after the leader died are stopped too', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--child']);
    await until('the grandchild', () => groupMembers(svc.pgid).length === 2);
    process.kill(svc.pid, 'SIGKILL');
    assert.deepEqual(await svc.waitExit(), { code: null, signal: 'SIGKILL' });
    assert.equal(groupMembers(svc.pgid).length, 1);
    assert.equal(groupOwnership(descOf(svc)), 'orphans');
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
    assert.deepEqual(groupMembers(svc.pgid), []);
  } finally {
    await cleanupHome(home);
  }
});

test('killGroupNow kills the whole group synchronously', async () => {
  const home = tempHome();
  try {
    const svc = await start(home, ['--ignore-term', '--child']);
    await until('the grandchild', () => groupMembers(svc.pgid).length === 2);
    forceKillAll([descOf(svc)]);
    await until('the group to go', () => groupMembers(svc.pgid).length === 0);
    assert.equal(killGroupNow(descOf(svc)), false);
  } finally {
    await cleanupHome(home);
  }
});

test('spawn errors come back as spawn-failed', async () => {
  const home = tempHome();
  try {
    const failure = async (p: Promise<unknown>): Promise<string> => {
      const err = await p.then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof TaskError, `expected a TaskError, got ${String(err)}`);
      assert.equal(err.failure.reason, 'spawn-failed');
      return err.message;
    };
    assert.equal(await failure(start(home, [], 'x', '/nonexistent/cmd', [])), 'could not start /nonexistent/cmd: not found (ENOENT)');
    const plain = join(home, 'not-executable');
    writeFileSync(plain, '#!/bin/sh\n');
    chmodSync(plain, 0o644);
    assert.equal(await failure(start(home, [], 'x', plain, [])), `could not start ${plain}: permission denied (EACCES)`);
    const missing = join(home, 'missing');
    const err = await spawnService({ command: process.execPath, args: [], cwd: missing, env: process.env, logFile: join(home, 'x.log') }).catch((e: TaskError) => e);
    assert.ok(err instanceof TaskError);
    assert.equal(err.message, `could not start ${process.execPath}: working directory ${missing} does not exist`);
  } finally {
    await cleanupHome(home);
  }
});

test('the exit of a service is observable, and its log tail skips the header', async () => {
  const home = tempHome();
  try {
    writeFileSync(join(home, 'svc.log'), 'old run\n');
    const svc = await spawnService({
      command: process.execPath,
      args: [service, '--lines', '2', '--exit-after', '0', '--code', '4'],
      cwd: home,
      env: { ...process.env, STIGMER_HOME: home },
      logFile: join(home, 'svc.log'),
    });
    assert.deepEqual(await svc.waitExit(), { code: 4, signal: null });
    assert.deepEqual(tailLines(join(home, 'svc.log'), 20, { since: svc.logOffset }), [`service pid=${svc.pid} starting`, 'line 1', 'line 2', 'exiting with code 4']);
    assert.deepEqual(tailLines(join(home, 'svc.log'), 2, { since: svc.logOffset }), ['line 2', 'exiting with code 4']);
  } finally {
    await cleanupHome(home);
  }
});

test('findPortHolder names the pid and command listening on a port (IPv4 and IPv6)', async () => {
  const home = tempHome();
  const server = net.createServer();
  try {
    const free = await freePort();
    assert.equal(findPortHolder(free), undefined);
    assert.deepEqual(inspectPort(free), { listening: false });

    const port = await freePort();
    const svc = await start(home, ['--listen', String(port)]);
    await until('the port', () => inspectPort(port).listening);
    assert.deepEqual(findPortHolder(port), { pid: svc.pid, command: `${process.execPath} ${service} --listen ${port}` });
    assert.equal(await stopGroup(descOf(svc)), 'stopped');
    assert.equal(findPortHolder(port), undefined);

    const port6 = await freePort();
    await new Promise<void>((res) => server.listen(port6, '::1', res));
    assert.deepEqual(findPortHolder(port6), { pid: process.pid, command: readCmdline(process.pid) });
  } finally {
    server.close();
    await cleanupHome(home);
  }
});

test('executeUndo removes a path and says when it was already gone', async () => {
  const home = tempHome();
  try {
    const dir = join(home, 'made');
    writeFileSync(join(home, 'made-file'), 'x');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'sub'), { recursive: true }));
    assert.equal(await executeUndo({ type: 'remove-path', path: dir }, { dataDir: home }), `removed ${dir}`);
    assert.equal(await executeUndo({ type: 'remove-path', path: dir }, { dataDir: home }), `${dir} was already gone`);
    assert.deepEqual(readdirSync(home).sort(), ['made-file']);
    await assert.rejects(executeUndo({ type: 'remove-path', path: '/' }, { dataDir: home }), /refused to remove "\/"/);
  } finally {
    await cleanupHome(home);
  }
});
