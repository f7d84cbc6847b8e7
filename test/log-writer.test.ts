import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { openLogWriter } from '../src/process/log-writer.js';
import { parseLogLine } from '../src/process/log-line.js';
import { cleanupHome, fixture, sleep, tempHome } from './helpers.js';

const read = (f: string): string[] => readFileSync(f, 'utf8').split('\n').slice(0, -1);
const texts = (f: string): string[] => read(f).map((l) => parseLogLine(l).text);

/** Run print-fast.mjs through a writer; resolves once the child exited and the log is closed. */
async function capture(home: string, file: string, args: string[], o: { maxSize?: number; keep?: number; maxPending?: number }) {
  const w = openLogWriter({ file, ...o });
  const child = spawn(process.execPath, [fixture('print-fast.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STIGMER_HOME: home } });
  await Promise.all([w.attach(child.stdout, 'out'), w.attach(child.stderr, 'err'), new Promise((r) => child.once('exit', r))]);
  await w.close();
  return w.stats;
}

test('log writer: a million lines arrive whole, stamped and in order', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'logs', 'svc.log');
  const before = Date.now();
  const stats = await capture(home, file, ['--lines', '1000000', '--batch', '100'], { maxSize: 1 << 30, maxPending: 1 << 30 });
  assert.equal(stats.dropped, 0);
  assert.equal(stats.rotations, 0);
  const lines = read(file);
  assert.equal(lines.length, 1_000_000);
  let prev = before - 1;
  for (let i = 0; i < lines.length; i++) {
    const l = parseLogLine(lines[i]!);
    if (l.stream !== 'out' || !l.text.startsWith(`line ${i + 1} `)) assert.fail(`line ${i + 1}: ${lines[i]}`);
    if (l.time === undefined || l.time < prev) assert.fail(`line ${i + 1} goes back in time: ${lines[i]}`);
    prev = l.time;
  }
  assert.ok(prev <= Date.now());
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(file).size, stats.written);
});

test('log writer: rotation bounds the total size, keeps `keep` files of whole lines, loses nothing it kept', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'logs', 'svc.log');
  const maxSize = 256 * 1024;
  const stats = await capture(home, file, ['--lines', '200000', '--batch', '50'], { maxSize, keep: 2, maxPending: 1 << 30 });
  assert.equal(stats.dropped, 0);
  assert.ok(stats.rotations > 10, `rotated ${stats.rotations} times`);
  assert.ok(!existsSync(`${file}.3`));
  const files = [`${file}.2`, `${file}.1`, file];
  let total = 0;
  for (const f of files) {
    const size = statSync(f).size;
    assert.ok(size <= maxSize, `${f}: ${size} bytes`);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    total += size;
  }
  assert.ok(total <= 3 * maxSize);
  // Oldest to newest, the kept lines are one unbroken run ending at the last line printed.
  const kept = files.flatMap(texts).map((t) => Number(t.split(' ')[1]));
  assert.equal(kept.at(-1), 200000);
  for (let i = 1; i < kept.length; i++) if (kept[i] !== kept[i - 1]! + 1) assert.fail(`gap after line ${kept[i - 1]}`);
  // Rotated files are nearly full: what is kept is close to the bound, not a fraction of it.
  for (const f of files.slice(0, 2)) assert.ok(statSync(f).size >= 0.75 * maxSize, `${f}: ${statSync(f).size} bytes`);
});

test('log writer: partial lines are joined, split at maxLine, written after partialMs; CRLF and split UTF-8', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'logs', 'p.log');
  const w = openLogWriter({ file, maxLine: 10, partialMs: 60 });
  const out = new PassThrough();
  const err = new PassThrough();
  const done = Promise.all([w.attach(out, 'out'), w.attach(err, 'err')]);
  out.write('hel');
  out.write('lo\r\nwor');
  out.write('ld\n');
  const e = Buffer.from('café\n');
  err.write(e.subarray(0, 4)); // cuts é in two
  err.write(e.subarray(4));
  out.write('0123456789abc\n'); // a complete line is never split
  out.write('abcdefghijklm'); // a partial one is, at maxLine
  out.write('\n');
  await w.flush();
  out.write('prompt: ');
  await sleep(200);
  await w.flush();
  assert.deepEqual(read(file).map((l) => [parseLogLine(l).stream, parseLogLine(l).text]), [
    ['out', 'hello'],
    ['out', 'world'],
    ['err', 'café'],
    ['out', '0123456789abc'],
    ['out', 'abcdefghijklm'],
    ['out', 'prompt: '],
  ]);
  out.write('\n'); // ends the prompt's line: no empty line
  out.end('tail without newline');
  err.end();
  await done;
  await w.close();
  assert.deepEqual(read(file).slice(6).map((l) => parseLogLine(l).text), ['tail without newline']);
});

test('log writer: writeEvent stamps each line as stigmer\'s own', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'logs', 'e.log');
  let now = Date.parse('2026-12-02T06:37:22.123Z');
  const w = openLogWriter({ file, now: () => now });
  w.writeEvent('restarted after exit code 1 (2/5)');
  now += 5;
  w.writeEvent('health check failed\nsecond line');
  await w.close();
  w.writeEvent('after close: ignored');
  assert.deepEqual(read(file), [
    '2026-12-02T06:37:22.123Z --- restarted after exit code 1 (2/5)',
    '2026-12-02T06:37:22.128Z --- health check failed',
    '2026-12-02T06:37:22.128Z --- second line',
  ]);
});

test('log writer: when the disk falls behind, lines are dropped and counted, never the reading', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'logs', 'd.log');
  const w = openLogWriter({ file, maxPending: 4096 });
  const out = new PassThrough();
  const done = w.attach(out, 'out');
  // Written within one tick: the first write is still in flight when the rest arrive.
  for (let i = 1; i <= 2000; i++) out.write(`line ${i}\n`);
  out.end();
  await done;
  await w.close();
  const lines = read(file).map(parseLogLine);
  const kept = lines.filter((l) => l.stream === 'out').map((l) => Number(l.text.split(' ')[1]));
  const markers = lines.filter((l) => l.stream === '---');
  assert.ok(w.stats.dropped > 0, 'something was dropped');
  assert.equal(kept.length + w.stats.dropped, 2000);
  const counted = markers.reduce((n, m) => n + Number(/^dropped (\d+) lines?: the log could not be written fast enough$/.exec(m.text)?.[1]), 0);
  // The last gap has no later line to mark it: it is in stats only.
  assert.ok(counted <= w.stats.dropped && counted >= 0);
  for (let i = 1; i < kept.length; i++) assert.ok(kept[i]! > kept[i - 1]!, 'order kept');
});

test('log writer: its folder removed under it, a rotation cannot reopen the file: lines are dropped and counted, nothing thrown', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'gone', 'svc.log');
  const w = openLogWriter({ file, maxSize: 4096, keep: 1, maxPending: 1 << 30 });
  const input = new PassThrough();
  const attached = w.attach(input, 'out');
  input.write('before the folder went away\n');
  await w.flush();
  rmSync(join(home, 'gone'), { recursive: true, force: true });
  for (let i = 0; i < 200; i++) input.write(`line ${i} ${'x'.repeat(60)}\n`);
  input.end();
  await attached;
  await w.close();
  assert.ok(w.stats.dropped > 0, 'what could not be written is counted');
  assert.match(w.stats.lastError ?? '', /ENOENT/);
  assert.ok(!existsSync(join(home, 'gone')), 'the removed folder is not made again');
});
