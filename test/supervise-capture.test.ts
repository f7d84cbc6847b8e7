/**
 * The process kind under a supervisor (ctx.supervised): stdout and stderr are pipes into the log
 * writer (stamped lines, `with.log` rotation), and the result carries the running instance with
 * its `with.restart` for the watch loop. Without a supervisor the service writes to the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import processKind, { type ProcessWith } from '../tasks/process.js';
import { parseLogLine } from '../src/process/log-line.js';
import { failureOf, inHome, makeContext } from './kind-context.js';
import { fixture, sleep } from './helpers.js';
import { describeFailure } from '../src/model/failure.js';

const node = process.execPath;
const service = fixture('service.mjs');

test('supervised: output is captured through pipes as stamped out/err lines; the instance and its restart policy are returned', async () => {
  await inHome(async (home, undos) => {
    const t = makeContext<ProcessWith>(home, {
      command: node,
      args: [service, '--lines', '3', '--ready-line', 'up and running'],
      ready: { log: 'up and running', timeout: '20s' },
      restart: { policy: 'on-failure', backoff: '50ms' },
    });
    t.ctx.supervised = true;
    t.ctx.recordUndo = (u) => undos.push(u);
    const result = await processKind.run(t.ctx);
    assert.ok(result.running, 'a supervised service returns its instance');
    assert.equal(result.running.pid, (undos[0] as { pid: number }).pid);
    assert.ok(result.running.exited instanceof Promise);
    assert.equal(result.running.supervision.restart.policy, 'on-failure');
    assert.equal(result.running.supervision.restart.backoffMs, 50);
    const lines = readFileSync(t.ctx.logFile, 'utf8').trimEnd().split('\n').map(parseLogLine);
    assert.equal(lines[0]!.stream, '---');
    assert.match(lines[0]!.text, /^starting .*service\.mjs --lines 3/);
    const out = lines.filter((l) => l.stream === 'out').map((l) => l.text);
    assert.deepEqual(out.slice(1, 4), ['line 1', 'line 2', 'line 3']);
    assert.ok(lines.every((l) => typeof l.time === 'number' && l.time > 0), 'every line carries its time');
  });
});

test('not supervised: no instance returned, the service writes straight to its log', async () => {
  await inHome(async (home, undos) => {
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--lines', '1', '--ready-line', 'up'], ready: { log: 'up' } });
    t.ctx.recordUndo = (u) => undos.push(u);
    const result = await processKind.run(t.ctx);
    assert.equal(result.running, undefined);
    assert.match(readFileSync(t.ctx.logFile, 'utf8'), /^--- \S+ starting /);
  });
});

test('supervised: an exit before ready reports the last captured lines (stderr included)', async () => {
  await inHome(async (home, undos) => {
    const t = makeContext<ProcessWith>(home, { command: node, args: [service, '--lines', '2', '--exit-after', '50', '--code', '3'], ready: { log: 'never' } });
    t.ctx.supervised = true;
    t.ctx.recordUndo = (u) => undos.push(u);
    const err = await failureOf(processKind.run(t.ctx));
    const f = describeFailure(err.failure);
    assert.match(f.message, /exit(ed)? .*code 3|code 3/);
    const tail = (err.failure as { logTail?: string[] }).logTail ?? [];
    assert.ok(tail.some((l) => l.includes('exiting with code 3')), `tail: ${tail.join(' | ')}`);
  });
});

test('supervised: a million lines are captured with rotation bounding the total size (with.log)', async () => {
  await inHome(async (home, undos) => {
    const maxSize = 512 * 1024;
    const keep = 2;
    const t = makeContext<ProcessWith>(home, {
      command: node,
      args: [fixture('print-fast.mjs'), '--lines', '1000000', '--batch', '64'],
      log: { max_size: '512KB', keep },
    });
    t.ctx.supervised = true;
    t.ctx.recordUndo = (u) => undos.push(u);
    // It may finish printing within the settle time: then it "exited before ready" with code 0.
    // The child does not hold the event loop (a service must not hold its host open): this test does.
    const holdLoop = setInterval(() => {}, 1000);
    try {
      const result = await processKind.run(t.ctx).catch(() => undefined);
      if (result?.running?.exited) await result.running.exited;
    } finally {
      clearInterval(holdLoop);
    }
    // The log is closed once both pipes ended: wait for its last line (bounded). The writer never
    // blocks the service: when the disk falls behind, lines are dropped and a marker says how many.
    const logs = join(home, 'logs');
    const deadline = Date.now() + 90_000;
    const last = (): string => readFileSync(t.ctx.logFile, 'utf8').trimEnd().split('\n').at(-1) ?? '';
    const ended = (): boolean => /line 1000000 the quick|--- dropped \d+ lines?: /.test(last());
    while (!ended() && Date.now() < deadline) await sleep(100);
    assert.ok(ended(), `the last line is the service's last or the dropped-lines marker: ${last()}`);
    const files = readdirSync(logs).filter((f) => f.startsWith('task.log'));
    assert.deepEqual(files.sort(), ['task.log', 'task.log.1', 'task.log.2']);
    let total = 0;
    for (const f of files) {
      const size = statSync(join(logs, f)).size;
      assert.ok(size <= maxSize, `${f} is ${size} bytes, over max_size`);
      total += size;
    }
    assert.ok(total <= (keep + 1) * maxSize);
    // Whole stamped lines only, across a rotation.
    const first = readFileSync(join(logs, 'task.log.1'), 'utf8').split('\n')[0]!;
    assert.equal(parseLogLine(first).stream, 'out');
  });
});

test('supervised: a bad with.restart or with.log fails before anything starts', async () => {
  await inHome(async (home, undos) => {
    for (const bad of [{ restart: { policy: 'sometimes' } }, { log: { max_size: 'huge' } }]) {
      const t = makeContext<ProcessWith>(home, { command: node, args: [service], ...bad });
      t.ctx.supervised = true;
      t.ctx.recordUndo = (u) => undos.push(u);
      const err = await failureOf(processKind.run(t.ctx));
      assert.equal(err.failure.reason, 'invalid-input');
    }
    assert.equal(undos.length, 0);
  });
});
