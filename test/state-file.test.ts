/**
 * The state file is data, checked like input: a corrupt file is not "nothing was running", a bad
 * record is reported and never acted on while the rest is undone, and recorded needs that form a
 * cycle never crash `down`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcStat } from '../src/process/identity.js';
import { findMarked, INSTANCE_VAR, STACK_VAR } from '../src/process/sweep.js';
import { loadState } from '../src/engine/state-file.js';
import { cleanupHome, cliEnv, fixture, freePort, runCli, sleep, tempHome, until } from './helpers.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));

/** A process carrying the stack's marker, as a service the state recorded would. */
async function markedSleeper(home: string): Promise<number> {
  const child = spawn('sleep', ['300'], { env: { ...cliEnv(home), [STACK_VAR]: home, [INSTANCE_VAR]: 'abc123' }, detached: true, stdio: 'ignore' });
  child.unref();
  while (!readProcStat(child.pid!)) await sleep(10);
  return child.pid!;
}

for (const [what, text] of [
  ['empty', ''],
  ['truncated', '{"version": 1, "seq": 2, "tasks": {"svc": {"kind": "process", "status": "ready", "undo": [{"type": "stop-pro'],
  ['garbage', '\u0000\u0001binary garbage'],
  ['not a state', '[1, 2, 3]'],
] as const) {
  test(`a ${what} state.json is corrupt, not "nothing was running": kept aside, swept by marker, exit 1`, async () => {
    const home = tempHome();
    try {
      const pid = await markedSleeper(home);
      writeFileSync(join(home, 'state.json'), text);
      const r = await runCli(['down', '--data-dir', home], { home });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /state\.json is corrupt \(.+\); services it recorded may still run\. kept it as .*state\.json\.corrupt-/);
      assert.doesNotMatch(r.stdout + r.stderr, /nothing was running|internal error/);
      assert.match(r.stdout, new RegExp(`stopped pid ${pid} \\(sleep 300\\)`));
      const aside = readdirSync(home).filter((f) => f.startsWith('state.json.corrupt-'));
      assert.equal(aside.length, 1);
      assert.equal(readFileSync(join(home, aside[0]!), 'utf8'), text, 'the corrupt file is kept as it was');
      assert.deepEqual(findMarked(home), []);
    } finally {
      await cleanupHome(home);
    }
  });
}

test('bad records are reported one line each and never acted on; the good ones are undone', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    writeFileSync(join(home, 'stigmer.tasks.yaml'), ['version: 1', 'tasks:', '  good:', '    uses: process', `    with: { command: ${node}, args: [${service}, "--listen", "${port}"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} } } }`, ''].join('\n'));
    const up = await runCli(['up', '--data-dir', home], { home });
    assert.equal(up.code, 0, up.stderr);
    const file = join(home, 'state.json');
    // A live supervisor keeps the truth in memory and writes it over whatever the file says: the
    // hostile file is met by a down after the supervisor died (kill -9), which reads it.
    const sup = (JSON.parse(readFileSync(file, 'utf8')) as { supervisor: { pid: number } }).supervisor.pid;
    process.kill(sup, 'SIGKILL');
    await until('the supervisor gone', () => readProcStat(sup) === undefined || readProcStat(sup)?.state === 'Z');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { tasks: Record<string, unknown> };
    const stop = { type: 'stop-process', pid: 4242, pgid: 4242, startTime: 1, command: 'x', signal: 'SIGTERM', graceMs: 10, startedAt: 'now' };
    Object.assign(state.tasks, {
      a: null,
      b: { kind: 'exec', status: 'done', undo: 'x' },
      c: { kind: 'exec', status: 'done', undo: [null] },
      d: { kind: 'process', status: 'ready', undo: [{ type: 'stop-process' }] },
      e: { kind: 'process', status: 'ready', undo: [{ ...stop, pgid: 2.5 }] },
      f: { kind: 'process', status: 'ready', undo: [{ ...stop, signal: 'rm -rf' }], needs: 'good' },
    });
    writeFileSync(file, JSON.stringify(state));
    const r = await runCli(['down', '--data-dir', home], { home });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /internal error|TypeError/);
    for (const line of [
      'state.json: Expected tasks.a to be a mapping, got null',
      'state.json: Expected tasks.b.undo to be a list, got "x"',
      'state.json: Expected tasks.c.undo[0] to be a mapping, got null',
      'state.json: missing required key "tasks.d.undo[0].pid"',
      'state.json: tasks.e: pgid 2.5 is not a process group stigmer started; not signalled',
      'state.json: Expected tasks.f.undo[0].signal to be a signal name like SIGTERM, got "rm -rf"',
      'state.json: Expected tasks.f.needs to be a list, got "good"',
    ]) {
      assert.ok(r.stderr.includes(line), `${line}\n--- in ---\n${r.stderr}`);
    }
    assert.match(r.stdout, /good: undone/);
    const left = loadState(file);
    assert.equal(left.status, 'ok');
    assert.deepEqual(Object.keys(left.status === 'ok' ? left.invalid : {}).sort(), ['a', 'b', 'c', 'd', 'e', 'f'], 'bad records are kept for inspection');
  } finally {
    await cleanupHome(home);
  }
});

test('recorded needs that form a cycle never crash down: everything is undone', async () => {
  const home = tempHome();
  const [pa, pb] = [await freePort(), await freePort()];
  try {
    const svc = (name: string, port: number): string[] => [`  ${name}:`, '    uses: process', `    with: { command: ${node}, args: [${service}, "--listen", "${port}"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} } } }`];
    writeFileSync(join(home, 'stigmer.tasks.yaml'), ['version: 1', 'tasks:', ...svc('a', pa), ...svc('b', pb), '    needs: [a]', ''].join('\n'));
    assert.equal((await runCli(['up', '--data-dir', home], { home })).code, 0);
    // Reverse the dependency, then rerun one task with --no-deps: the state's needs are refreshed.
    writeFileSync(join(home, 'stigmer.tasks.yaml'), ['version: 1', 'tasks:', ...svc('a', pa), '    needs: [b]', ...svc('b', pb), ''].join('\n'));
    const rerun = await runCli(['run', 'a', '--no-deps', '--data-dir', home], { home });
    assert.equal(rerun.code, 0, rerun.stderr);
    const file = join(home, 'state.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { tasks: Record<string, { needs?: string[] }> };
    assert.deepEqual(state.tasks['a']!.needs, ['b']);
    assert.deepEqual(state.tasks['b']!.needs, [], 'the --no-deps need got its needs as the file says now');
    // A cycle written by hand still undoes.
    state.tasks['b']!.needs = ['a'];
    writeFileSync(file, JSON.stringify(state));
    const r = await runCli(['down', '--data-dir', home], { home, timeout: 30_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /Maximum call stack|internal error/);
    assert.match(r.stdout, /a: undone/);
    assert.match(r.stdout, /b: undone/);
  } finally {
    await cleanupHome(home);
  }
});

test('the state written piece by piece is the whole state, masked, after every kind of change', async () => {
  const { StateStore } = await import('../src/engine/state.js');
  const { clearSecrets, registerSecret } = await import('../src/util/mask.js');
  const home = tempHome();
  try {
    const path = join(home, 'state.json');
    writeFileSync(path, JSON.stringify({ version: 1, seq: 0, tasks: { bad: { kind: 7 }, old: { kind: 'exec', status: 'done', undo: [] } } }));
    const state = new StateStore(path);
    const onDisk = (): unknown => JSON.parse(readFileSync(path, 'utf8'));
    let masked = false;
    const expected = (): unknown => {
      const text = JSON.stringify({ ...state.data, tasks: { ...state.invalid, ...state.data.tasks } });
      return JSON.parse(masked ? text.replaceAll('s3cr3t-value', '********') : text);
    };
    const step = { type: 'stop-process' as const, pid: 1, pgid: 1, startTime: 1, command: 'x s3cr3t-value', signal: 'SIGTERM' as const, graceMs: 1, startedAt: '2026-01-01T00:00:00.000Z' };
    state.update('a', { kind: 'exec', status: 'running' }, true);
    assert.deepEqual(onDisk(), expected());
    state.addUndo('a', step);
    assert.deepEqual(onDisk(), expected());
    assert.match(readFileSync(path, 'utf8'), /s3cr3t-value/);
    // A secret registered later masks what was already written, unchanged records too.
    registerSecret('s3cr3t-value');
    masked = true;
    state.update('b', { kind: 'exec', status: 'done' }, true);
    assert.deepEqual(onDisk(), expected());
    assert.doesNotMatch(readFileSync(path, 'utf8'), /s3cr3t-value/);
    state.forgetUndo('a', step);
    state.save();
    assert.deepEqual((onDisk() as { tasks: Record<string, { undo: unknown[] }> }).tasks['a']!.undo, []);
    state.remove('b');
    assert.deepEqual(onDisk(), expected());
    assert.equal((onDisk() as { tasks: Record<string, unknown> }).tasks['bad'] !== undefined, true);
    assert.deepEqual(loadState(path).status, 'ok');
  } finally {
    clearSecrets();
    await cleanupHome(home);
  }
});

test('a big state is written chunk by chunk as the text JSON.stringify gives the whole, after every kind of change', async () => {
  const { StateStore } = await import('../src/engine/state.js');
  const { clearSecrets, registerSecret } = await import('../src/util/mask.js');
  const home = tempHome();
  try {
    const path = join(home, 'state.json');
    writeFileSync(path, JSON.stringify({ version: 1, seq: 0, tasks: { bad: { kind: 7 } } }));
    const state = new StateStore(path);
    let masked = false;
    const expected = (): string => {
      const { tasks, ...rest } = state.data; // the file has tasks last
      const text = `${JSON.stringify({ ...rest, tasks: { ...state.invalid, ...tasks } }, null, 2)}\n`;
      return masked ? text.replaceAll('s3cr3t-big', '********') : text;
    };
    // Many records at once (the batch path, several chunks), with values that look like the cut.
    for (let i = 0; i < 5000; i++) {
      state.update(`t${i}`, { kind: 'exec', status: 'done', needs: i ? [`t${i - 1}`] : [], outputs: { line: `x,\n    "y": s3cr3t-big ${i}`, nested: { list: [1, { deep: 'a' }] } } });
    }
    state.save();
    assert.equal(readFileSync(path, 'utf8'), expected());
    // A few changed (one at a time), then unchanged ones written again (their text is kept from then on).
    for (const i of [0, 1500, 4999]) state.update(`t${i}`, { status: 'failed', error: 'boom' }, true);
    assert.equal(readFileSync(path, 'utf8'), expected());
    state.update('t7', { status: 'running' }, true);
    assert.equal(readFileSync(path, 'utf8'), expected());
    // A secret registered later masks every record, the kept texts too.
    registerSecret('s3cr3t-big');
    masked = true;
    state.update('t8', { status: 'running' }, true);
    assert.equal(readFileSync(path, 'utf8'), expected());
    assert.doesNotMatch(readFileSync(path, 'utf8'), /s3cr3t-big/);
    state.remove('t2000');
    assert.equal(readFileSync(path, 'utf8'), expected());
    assert.deepEqual(loadState(path).status, 'ok');
  } finally {
    clearSecrets();
    await cleanupHome(home);
  }
});
