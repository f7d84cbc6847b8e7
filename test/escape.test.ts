/**
 * Nothing escapes `down`: every process a stack starts carries its marker (STIGMER_STACK), and
 * `down` / the next `up` stop what carries it but no record explains: a process spawned by a run
 * killed before it recorded it, an `exec` command running at `kill -9`, a grandchild that left
 * its group (setsid, double fork).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readProcStat } from '../src/process/identity.js';
import { findMarked, INSTANCE_VAR, STACK_VAR } from '../src/process/sweep.js';
import { inspectPort } from '../src/process/proc.js';
import { projectDataDir } from '../src/engine/stacks.js';
import { cleanupHome, cliEnv, cliPath, fixture, freePort, runCli, sleep, tempHome, until } from './helpers.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));

function write(home: string, lines: string[]): void {
  writeFileSync(join(home, 'stigmer.tasks.yaml'), ['version: 1', 'tasks:', ...lines, ''].join('\n'));
}

/** The data dir of the stack of <home>/stigmer.tasks.yaml (its own, under <home>/stacks). */
const stackDir = (home: string): string => projectDataDir(join(home, 'stigmer.tasks.yaml'), home);

type State = { tasks: Record<string, { status: string; undo: { type: string; pid: number; pgid: number; startTime: number; instance?: string }[] }> };
const state = (home: string): State | undefined => {
  try {
    return JSON.parse(readFileSync(join(stackDir(home), 'state.json'), 'utf8')) as State;
  } catch {
    return undefined;
  }
};


function startCli(args: string[], home: string): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: home, env: cliEnv(home), stdio: 'ignore' });
  return { child, exit: new Promise((r) => child.on('close', (code) => r(code))) };
}

test('a process carrying the stack marker that no record names (spawned, then kill -9 before the state write) is stopped by down', async () => {
  const home = tempHome();
  try {
    // What a run leaves when it dies between the spawn and the state write: a marked process, no state.
    const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      env: { ...cliEnv(home), [STACK_VAR]: stackDir(home), [INSTANCE_VAR]: 'a1b2c3' },
      detached: true,
      stdio: 'ignore',
    });
    orphan.unref();
    await until('the orphan', () => !!readProcStat(orphan.pid!));
    assert.deepEqual(findMarked(stackDir(home)).map((p) => p.pid), [orphan.pid]);
    const r = await runCli(['down'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`stopped pid ${orphan.pid} \\(.*\\): it carried this stack's marker but no record named it`));
    assert.equal(findMarked(stackDir(home)).length, 0);
    const again = await runCli(['down'], { home });
    assert.match(again.stderr, /nothing to stop/);
  } finally {
    await cleanupHome(home);
  }
});

test('an exec command is recorded while it runs (group, start time), dropped when it finishes, and stopped by down after kill -9 of up', async () => {
  const home = tempHome();
  try {
    write(home, [
      '  quick:',
      '    uses: exec',
      '    with: { command: sh, args: ["-c", "true"] }',
      '  long:',
      '    uses: exec',
      '    needs: [quick]',
      '    with: { command: sh, args: ["-c", "sleep 300 & sleep 300"] }',
    ]);
    const up = startCli(['up'], home);
    await until('the running command in the state', () => state(home)?.tasks['long']?.undo.length === 1);
    const rec = state(home)!.tasks['long']!.undo[0]!;
    assert.equal(rec.type, 'stop-process');
    assert.equal(rec.pgid, rec.pid, 'the command leads its own group');
    assert.ok(isAlive(rec), 'pid and start time name the running command');
    assert.deepEqual(state(home)!.tasks['quick']!.undo, [], 'a finished command leaves no record');
    up.child.kill('SIGKILL');
    await up.exit;
    assert.ok(isAlive(rec), 'the command survives the kill -9 of up');
    const r = await runCli(['down'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`stopped pid ${rec.pid}`));
    assert.equal(findMarked(stackDir(home)).length, 0, 'both sleeps are gone');
  } finally {
    await cleanupHome(home);
  }
});

test('a grandchild that called setsid (left the group) is stopped with its service, and the next up stops a leftover', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    // The service starts a grandchild in a session of its own, then becomes the service.
    const script = `setsid sleep 300 </dev/null >/dev/null 2>&1 & exec "$0" "$@"`;
    write(home, [
      '  api:',
      '    uses: process',
      `    with: { command: sh, args: ["-c", ${JSON.stringify(script)}, ${node}, ${service}, "--listen", "${port}"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s } }`,
    ]);
    const up = await runCli(['up'], { home });
    assert.equal(up.code, 0, up.stderr);
    await until('the escaped grandchild', () => findMarked(stackDir(home)).some((p) => p.command.startsWith('sleep')));
    const escaped = findMarked(stackDir(home)).find((p) => p.command.startsWith('sleep'))!;
    const svc = state(home)!.tasks['api']!.undo[0]!;
    assert.notEqual(escaped.pgid, svc.pgid, 'the grandchild left the service group');
    assert.equal(escaped.instance, svc.instance, 'it carries the instance its service was recorded with');
    const down = await runCli(['down'], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`also stopped pid ${escaped.pid} \\(sleep 300\\) that left its process group`));
    assert.equal(findMarked(stackDir(home)).length, 0);

    // A leftover (its record lost) is stopped before the next up starts anything.
    const stray = spawn('sleep', ['300'], { env: { ...cliEnv(home), [STACK_VAR]: stackDir(home), [INSTANCE_VAR]: 'gone' }, detached: true, stdio: 'ignore' });
    stray.unref();
    await until('the stray', () => !!readProcStat(stray.pid!));
    const again = await runCli(['up'], { home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`stopped pid ${stray.pid} \\(sleep 300\\): it carried this stack's marker but no record named it`));
    assert.ok(findMarked(stackDir(home)).every((p) => p.pid !== stray.pid));
  } finally {
    await runCli(['down'], { home });
    await cleanupHome(home);
  }
});

test('after a stop, a declared port still held is reported with its holder', async () => {
  const home = tempHome();
  const port = await freePort();
  let holder: number | undefined;
  // Where cgroups work the service's cgroup takes such a grandchild with it (test/cgroup.test.ts):
  // without them (STIGMER_CGROUP=off, or a machine that allows none) the port report is what is left.
  const env = { STIGMER_CGROUP: 'off' };
  try {
    // A grandchild that drops the whole environment (env -i) and leaves the group escapes the
    // marker: down cannot stop it, but it says who holds the port.
    const listen = `require("net").createServer().listen(${port}, "127.0.0.1")`;
    const script = `setsid env -i "$0" -e '${listen}' </dev/null >/dev/null 2>&1 & exec "$0" "$@"`;
    write(home, [
      '  api:',
      '    uses: process',
      `    with: { command: sh, args: ["-c", ${JSON.stringify(script)}, ${node}, ${service}], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s } }`,
    ]);
    const up = await runCli(['up'], { home, env });
    assert.equal(up.code, 0, up.stderr);
    holder = inspectPort(port).holder?.pid;
    assert.ok(holder, 'the escaped grandchild holds the port');
    const down = await runCli(['down'], { home, env });
    assert.match(down.stdout, new RegExp(`port ${port} is still held by pid ${holder} \\(`));
  } finally {
    if (holder && readProcStat(holder)) process.kill(holder, 'SIGKILL');
    await runCli(['down'], { home, env });
    await cleanupHome(home);
    assert.equal(existsSync(home), false);
  }
});

test('the sweep of one instance looks only at processes started since its first one: an older process with its marker is not its descendant', async () => {
  const home = tempHome();
  const dataDir = join(home, 'data');
  const env = { ...process.env, [STACK_VAR]: dataDir, [INSTANCE_VAR]: 'abcdef012345' };
  const older = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env, detached: true, stdio: 'ignore' });
  let younger: ChildProcess | undefined;
  try {
    const olderStart = await until('the older process', () => readProcStat(older.pid!)?.startTime);
    // A clock tick (10 ms) later at least, so the two start times differ.
    await sleep(50);
    younger = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env, detached: true, stdio: 'ignore' });
    const youngerStart = await until('the younger process', () => readProcStat(younger!.pid!)?.startTime);
    assert.ok(youngerStart > olderStart);
    await until('both marked', () => findMarked(dataDir, 'abcdef012345').length === 2);
    assert.deepEqual(findMarked(dataDir, 'abcdef012345', 'proc', youngerStart).map((p) => p.pid), [younger.pid]);
    assert.deepEqual(findMarked(dataDir, 'abcdef012345', 'proc', olderStart).map((p) => p.pid).sort(), [older.pid!, younger.pid!].sort());
    // Without an instance the whole stack is looked at, whatever the start time.
    assert.equal(findMarked(dataDir, undefined, 'proc', youngerStart).length, 2);
  } finally {
    for (const c of [older, younger]) if (c?.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    await cleanupHome(home);
  }
});
