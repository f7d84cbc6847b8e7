/**
 * cgroup v2 placement (src/process/cgroup.ts): where this machine lets stigmer create cgroups
 * (root, or a delegated slice), every service gets one of its own and `down` ends it with
 * cgroup.kill, which reaches a grandchild that left its session AND cleared its environment (no
 * marker: the sweep cannot see it). Where it cannot, or with STIGMER_CGROUP=off, that one grandchild
 * escapes (the documented limit of the marker sweep) and this test stops it itself, by pid.
 */
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readProcStat } from '../src/process/identity.js';
import { cgroupBase, createCgroup, inCgroup } from '../src/process/cgroup.js';
import { findMarked } from '../src/process/sweep.js';
import { projectDataDir } from '../src/engine/stacks.js';
import { cleanupHome, fixture, freePort, runCli, sleep, tempHome, until } from './helpers.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));
const available = cgroupBase() !== null;

const stackDir = (home: string): string => projectDataDir(join(home, 'stigmer.tasks.yaml'), home);


function alive(pid: number): boolean {
  const s = readProcStat(pid);
  return !!s && s.state !== 'Z';
}

/** A service whose grandchild calls setsid and clears its environment, its pid in <home>/hidden.pid. */
function writeStack(home: string, port: number): string {
  const pidFile = join(home, 'hidden.pid');
  const script = `setsid env -i sleep 300 </dev/null >/dev/null 2>&1 & echo $! > ${JSON.stringify(pidFile)}; exec "$0" "$@"`;
  writeFileSync(
    join(home, 'stigmer.tasks.yaml'),
    [
      'version: 1',
      'tasks:',
      '  api:',
      '    uses: process',
      `    with: { command: sh, args: ["-c", ${JSON.stringify(script)}, ${node}, ${service}, "--listen", "${port}"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s } }`,
      '',
    ].join('\n'),
  );
  return pidFile;
}

test('a grandchild that left its session and cleared its environment: cgroup.kill stops it where cgroups work; the marker sweep alone cannot', async () => {
  for (const mode of ['default', 'off'] as const) {
    const home = tempHome();
    const port = await freePort();
    const env = mode === 'off' ? { STIGMER_CGROUP: 'off' } : {};
    let hidden = 0;
    try {
      const pidFile = writeStack(home, port);
      const up = await runCli(['up'], { home, env });
      assert.equal(up.code, 0, up.stderr);
      await until('the hidden grandchild', () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')) > 0 && alive(Number(readFileSync(pidFile, 'utf8'))));
      hidden = Number(readFileSync(pidFile, 'utf8'));
      await until('the grandchild to be sleep', () => readProcStat(hidden)?.comm === 'sleep');
      assert.ok(!findMarked(stackDir(home)).some((p) => p.pid === hidden), 'it carries no marker: the sweep cannot see it');
      const cgroup = readFileSync(`/proc/${hidden}/cgroup`, 'utf8');
      const base = cgroupBase();
      const own = /^0::.*\/stigmer\/([0-9a-f]{12}-[0-9a-f]+)$/m.exec(cgroup)?.[1];
      if (mode === 'default' && available) {
        assert.ok(own && existsSync(join(base!, own)), `its service's cgroup under ${base} holds it:\n${cgroup}`);
      } else {
        assert.doesNotMatch(cgroup, /\/stigmer\/[0-9a-f]{12}-/, 'no cgroup of stigmer');
      }
      const down = await runCli(['down'], { home, env });
      assert.equal(down.code, 0, down.stderr);
      if (mode === 'default' && available) {
        await until('the grandchild to be gone', () => !alive(hidden), 5000);
        assert.match(down.stdout, new RegExp(`also stopped pid ${hidden} \\(sleep 300\\) that left its process group`));
        assert.ok(!existsSync(join(base!, own!)), 'the emptied cgroup is removed');
      } else {
        // The documented limit: nothing can find a process that cleared its environment and left its session.
        await sleep(200);
        assert.ok(alive(hidden), 'without cgroups it escapes: the limit the README names');
      }
    } finally {
      await runCli(['down'], { home, env });
      if (hidden && alive(hidden)) process.kill(hidden, 'SIGKILL');
      await cleanupHome(home);
    }
  }
});

test('the cgroup of a stopped service is removed; a hostile instance in the state names nothing outside stigmer\'s cgroups', async (t) => {
  if (!available) {
    // Nothing to place services in: up and down still work (the marker sweep), and nothing is created.
    const home = tempHome();
    t.after(() => cleanupHome(home));
    writeStack(home, await freePort());
    assert.equal((await runCli(['up'], { home })).code, 0);
    assert.equal((await runCli(['down'], { home })).code, 0);
    return;
  }
  const home = tempHome();
  const port = await freePort();
  const base = cgroupBase()!;
  try {
    writeStack(home, port);
    const up = await runCli(['up'], { home });
    assert.equal(up.code, 0, up.stderr);
    const st = JSON.parse(readFileSync(join(stackDir(home), 'state.json'), 'utf8')) as { tasks: Record<string, { undo: { instance?: string; pid: number }[] }> };
    const rec = st.tasks['api']!.undo[0]!;
    const mine = readdirSync(base).filter((n) => n.endsWith(`-${rec.instance}`));
    assert.equal(mine.length, 1, 'one cgroup for the service');
    assert.match(readFileSync(join(base, mine[0]!, 'cgroup.procs'), 'utf8'), new RegExp(`^${rec.pid}$`, 'm'), 'the service itself is in it');
    const down = await runCli(['down'], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.ok(!existsSync(join(base, mine[0]!)), 'removed once empty');

    // A state whose instance is not hex is refused by the schema and never acted on.
    const hostile = { version: 1, tasks: { api: { status: 'ready', undo: [{ ...rec, type: 'stop-process', instance: '../..', pid: 999999, pgid: 999999, startTime: 1, command: 'x', signal: 'SIGTERM', graceMs: 10, startedAt: new Date().toISOString() }] } } };
    writeFileSync(join(stackDir(home), 'state.json'), JSON.stringify(hostile));
    const refused = await runCli(['down'], { home });
    assert.match(refused.stderr, /state\.json: Expected tasks\.api\.undo\[0\]\.instance to be a spawn id \(hex digits\), got "\.\.\/\.\."/);
    assert.ok(existsSync(join(base, 'cgroup.procs')), 'stigmer\'s cgroup dir is untouched');
    assert.ok(isAlive({ pid: process.pid, startTime: readProcStat(process.pid)!.startTime }));
  } finally {
    await runCli(['down'], { home });
    await cleanupHome(home);
  }
});

test('a cgroup of the stack that no record names (a run killed before its state write) is stopped by down, even without a marker', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  writeStack(home, await freePort());
  const dir = available ? createCgroup(stackDir(home), 'abcdef123456') : undefined;
  if (!available) {
    assert.equal(dir, undefined, 'no cgroup where none can be created');
    return;
  }
  assert.ok(dir, 'created');
  // What a killed run leaves: a process in the stack's cgroup, without the marker, and no state.
  const run = inCgroup(dir, 'sleep', ['300'], { PATH: process.env['PATH'] }, home)!;
  const child = spawn(run.command, run.args, { env: { PATH: process.env['PATH'] }, detached: true, stdio: 'ignore' });
  child.unref();
  try {
    await until('it to be in the cgroup', () => readFileSync(join(dir, 'cgroup.procs'), 'utf8').includes(`${child.pid}\n`) && readProcStat(child.pid!)?.comm === 'sleep');
    const down = await runCli(['down'], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout + down.stderr, new RegExp(`stopped pid ${child.pid} \\(sleep 300\\): it was in a cgroup of this stack but no record named it`));
    await until('it to be gone', () => !alive(child.pid!), 5000);
    assert.ok(!existsSync(dir), 'and the cgroup removed');
  } finally {
    if (alive(child.pid!)) process.kill(child.pid!, 'SIGKILL');
  }
});
