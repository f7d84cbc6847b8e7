/**
 * A hostile or broken state file must never make stigmer signal what it did not start: not its
 * own process group (kill(0)), not every process (kill(-1)), not its caller's group. Each CLI run
 * here happens inside a throwaway session (`setsid`), beside a canary that shares the group the
 * record names, so even a regression kills only the sandbox, never the test runner. kill(-1) is
 * exercised only inside a PID namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signalRefusal, SignalRefused, isAlive, readProcStat } from '../src/process/identity.js';
import { killGroupNow, stopGroup, type StopProcess } from '../src/process/proc.js';
import { cleanupHome, cliEnv, cliPath, fixture, runCli, tempHome } from './helpers.js';

const stop = (pid: unknown, pgid: unknown, startTime: unknown = 0): Record<string, unknown> => ({
  type: 'stop-process',
  pid,
  pgid,
  startTime,
  command: 'not ours',
  signal: 'SIGTERM',
  graceMs: 1000,
  startedAt: new Date().toISOString(),
});

function writeState(home: string, tasks: Record<string, unknown[]>): void {
  const recs = Object.fromEntries(Object.entries(tasks).map(([name, undo], i) => [name, { kind: 'process', status: 'ready', undo, seq: i + 1 }]));
  writeFileSync(join(home, 'state.json'), JSON.stringify({ version: 1, seq: 9, tasks: recs }));
}

const recorded = (home: string): Record<string, { undo: unknown[] }> => (JSON.parse(readFileSync(join(home, 'state.json'), 'utf8')) as { tasks: Record<string, { undo: unknown[] }> }).tasks;

interface Sandbox {
  code: number | null;
  stdout: string;
  stderr: string;
  canaryAlive: boolean;
}

/**
 * Run `body` (sh) in a new session: first a canary (`sleep`) in the shell's own process group, then
 * the shell prints `me <pid> <starttime>`, lets `arrange` write the state file naming them, and runs
 * `body`. Reports whether the canary survived, and stops it.
 */
async function inSession(home: string, body: string, arrange: (me: { pid: number; startTime: number }) => void, launcher: string[] = ['setsid']): Promise<Sandbox> {
  const script = `sleep 300 </dev/null >/dev/null 2>&1 & c=$!; echo "canary $c"; echo "me $$ $(cut -d' ' -f22 /proc/$$/stat)"; read go; ${body}`;
  const child = spawn(launcher[0]!, [...launcher.slice(1), 'sh', '-c', script], {
    cwd: home,
    env: { ...cliEnv(home), NODE: process.execPath, CLI: cliPath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const deadline = Date.now() + 10_000;
  while (!/^me \d+ \d+$/m.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const [, pid, startTime] = /^me (\d+) (\d+)$/m.exec(stdout) ?? [];
  // In a PID namespace the canary's pid means nothing out here: the shell inside checks it.
  const outside = launcher[0] === 'setsid';
  const canary = Number(/^canary (\d+)$/m.exec(stdout)?.[1]);
  const canaryStart = outside ? (readProcStat(canary)?.startTime ?? -1) : -1;
  try {
    arrange({ pid: Number(pid), startTime: Number(startTime) });
    child.stdin.end('go\n');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await closed;
    clearTimeout(timer);
    const canaryAlive = /^canary-alive$/m.test(stdout) || (outside && isAlive({ pid: canary, startTime: canaryStart }));
    return { code, stdout, stderr, canaryAlive };
  } finally {
    if (outside && isAlive({ pid: canary, startTime: canaryStart })) process.kill(canary, 'SIGKILL');
  }
}

test('signalRefusal: pid/pgid 0, 1, negative, fractional or not numbers, and our own or our caller\'s group are refused', () => {
  for (const bad of [0, 1, -1, -4242, 1.5, NaN, Infinity, '4242', null, undefined]) {
    assert.match(signalRefusal({ pid: 4242, pgid: bad, startTime: 5 }) ?? '', /is not a process group stigmer started/, `pgid ${String(bad)}`);
    assert.match(signalRefusal({ pid: bad, pgid: 4242, startTime: 5 }) ?? '', /is not a process stigmer started/, `pid ${String(bad)}`);
  }
  assert.match(signalRefusal({ pid: 4242, pgid: 4242, startTime: -1 }) ?? '', /startTime -1/);
  const own = readProcStat(process.pid)!;
  const parent = readProcStat(process.ppid)!;
  assert.match(signalRefusal({ pid: 4242, pgid: own.pgid, startTime: 5 }) ?? '', /own process group/);
  assert.match(signalRefusal({ pid: 4242, pgid: parent.pgid, startTime: 5 }) ?? '', /own process group or its caller's/);
  assert.match(signalRefusal({ pid: process.pid, pgid: 4242, startTime: 5 }) ?? '', /stigmer itself/);
  assert.equal(signalRefusal({ pid: 4242, pgid: 4242, startTime: 5 }), undefined);
});

test('stopGroup and killGroupNow refuse a record naming group 0 or 1 before any signal', async () => {
  for (const pgid of [0, 1]) {
    const desc = stop(pgid, pgid) as unknown as StopProcess;
    await assert.rejects(stopGroup(desc), (err: Error) => err instanceof SignalRefused && err.message === `pgid ${pgid} is not a process group stigmer started; not signalled`);
    await assert.rejects(stopGroup(desc, { force: true }), SignalRefused);
    assert.equal(killGroupNow(desc), false);
  }
});

test('down with a {pid: 0, pgid: 0} record signals nothing, says so, keeps the record and exits 1', async () => {
  const home = tempHome();
  try {
    const r = await inSession(home, 'exec "$NODE" "$CLI" down --data-dir "$STIGMER_HOME"', () => writeState(home, { svc: [stop(0, 0)] }));
    assert.equal(r.canaryAlive, true, `the canary in stigmer's own group was killed\n${r.stderr}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /state\.json: tasks\.svc: pgid 0 is not a process group stigmer started; not signalled/);
    assert.equal(recorded(home)['svc']?.undo.length, 1, 'the refused record is kept for inspection');
  } finally {
    await cleanupHome(home);
  }
});

test('local stop with a {pid: 0, pgid: 0} record signals nothing either', async () => {
  const home = tempHome();
  try {
    const r = await inSession(home, 'exec "$NODE" "$CLI" local stop', () => writeState(home, { 'start-server': [stop(0, 0)] }));
    assert.equal(r.canaryAlive, true, r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /state\.json: tasks\.start-server: pgid 0 is not a process group stigmer started; not signalled/);
  } finally {
    await cleanupHome(home);
  }
});

test('down never signals its own process group, even with the right leader pid and start time', async () => {
  const home = tempHome();
  try {
    // The shell execs stigmer: the record names stigmer's own pid, start time and group.
    const r = await inSession(home, 'exec "$NODE" "$CLI" down --data-dir "$STIGMER_HOME"', (me) => writeState(home, { svc: [stop(me.pid, me.pid, me.startTime)] }));
    assert.equal(r.canaryAlive, true, r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /state\.json: tasks\.svc: pgid \d+ is stigmer's own process group or its caller's; not signalled/);
  } finally {
    await cleanupHome(home);
  }
});

test("down never signals its caller's process group", async () => {
  const home = tempHome();
  try {
    // stigmer runs in a session of its own; its parent, the shell, leads the group the record names.
    const r = await inSession(home, 'setsid "$NODE" "$CLI" down --data-dir "$STIGMER_HOME"', (me) => writeState(home, { svc: [stop(me.pid, me.pid, me.startTime)] }));
    assert.equal(r.canaryAlive, true, r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /state\.json: tasks\.svc: pgid \d+ is stigmer's own process group or its caller's; not signalled/);
  } finally {
    await cleanupHome(home);
  }
});

test('up with a {pid: 0, pgid: 0} record of its service never acts on it: reported, kept aside, a fresh instance starts', async () => {
  const home = tempHome();
  try {
    const file = join(home, 'tasks.yaml');
    writeFileSync(file, `version: 1\ntasks:\n  svc:\n    uses: process\n    with:\n      command: ${JSON.stringify(process.execPath)}\n      args: [${JSON.stringify(fixture('service.mjs'))}]\n`);
    const r = await inSession(home, 'exec "$NODE" "$CLI" up -f tasks.yaml --data-dir "$STIGMER_HOME"', () => writeState(home, { svc: [stop(0, 0)] }));
    assert.equal(r.canaryAlive, true, r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /state\.json: tasks\.svc: pgid 0 is not a process group stigmer started; not signalled/);
    const aside = readdirSync(home).find((f) => f.startsWith('state.json.corrupt-'));
    assert.ok(aside, 'the file with the refused record is kept aside');
    assert.equal((JSON.parse(readFileSync(join(home, aside), 'utf8')) as { tasks: Record<string, { undo: Array<{ pgid: number }> }> }).tasks['svc']!.undo[0]!.pgid, 0);
  } finally {
    await runCli(['down', '--data-dir', home], { home });
    await cleanupHome(home);
  }
});

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;

test('down never becomes kill(-1): a record of pgid 1 with init\'s start time (inside a PID namespace)', { skip: !canUnshare && 'needs unshare --pid (root)' }, async () => {
  const home = tempHome();
  try {
    // Inside the namespace the shell is pid 1 (init): it reports its start time and checks the canary.
    const body = '"$NODE" "$CLI" down --data-dir "$STIGMER_HOME"; code=$?; kill -0 $c 2>/dev/null && echo canary-alive; kill $c 2>/dev/null; exit $code';
    const r = await inSession(home, body, (me) => writeState(home, { svc: [stop(me.pid, 1, me.startTime)] }), ['unshare', '--pid', '--fork', '--mount-proc']);
    assert.match(r.stdout, /^me 1 \d+$/m, 'the shell is init in its namespace');
    assert.equal(r.canaryAlive, true, r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /state\.json: tasks\.svc: pgid 1 is not a process group stigmer started; not signalled/);
  } finally {
    await cleanupHome(home);
  }
});

test('remove-path undo only removes what lies inside the data dir: "" and paths outside stay', async () => {
  const home = tempHome();
  const outside = mkdtempSync(join(tmpdir(), 'stigmer-outside-'));
  try {
    writeFileSync(join(home, 'keep.txt'), 'x');
    writeFileSync(join(outside, 'keep.txt'), 'x');
    mkdirSync(join(home, 'made', 'sub'), { recursive: true });
    symlinkSync(outside, join(home, 'link'));
    writeState(home, {
      empty: [{ type: 'remove-path', path: '' }],
      relative: [{ type: 'remove-path', path: '.' }],
      outside: [{ type: 'remove-path', path: outside }],
      via: [{ type: 'remove-path', path: join(home, 'link', 'keep.txt') }],
      root: [{ type: 'remove-path', path: home }],
      made: [{ type: 'remove-path', path: join(home, 'made') }],
    });
    const r = await inSession(home, 'exec "$NODE" "$CLI" down --data-dir "$STIGMER_HOME"', () => {});
    assert.equal(r.code, 1, r.stdout + r.stderr);
    // Not absolute: the state's schema refuses the record; elsewhere: the undo refuses the path.
    for (const [name, got] of [['empty', 'an empty string'], ['relative', '"\\."']] as const) {
      assert.match(r.stdout + r.stderr, new RegExp(`state\\.json: Expected tasks\\.${name}\\.undo\\[0\\]\\.path to be an absolute path inside the data dir, got ${got}`), name);
    }
    for (const name of ['outside', 'via', 'root']) assert.match(r.stdout + r.stderr, new RegExp(`state\\.json: tasks\\.${name}: refused to remove`), name);
    assert.ok(existsSync(join(home, 'keep.txt')), 'the working directory survives');
    assert.ok(existsSync(join(outside, 'keep.txt')), 'a path outside the data dir survives');
    assert.equal(existsSync(join(home, 'made')), false, 'what lies inside the data dir is removed');
    assert.deepEqual(Object.keys(recorded(home)).sort(), ['empty', 'outside', 'relative', 'root', 'via']);
  } finally {
    rmSync(outside, { recursive: true, force: true });
    await cleanupHome(home);
  }
});
