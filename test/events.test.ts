import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { appendEvent, eventsFile, followEvents, formatEvent, parseEvent, readEvents, type SupervisorEvent } from '../src/supervisor/events.js';
import { registerSecret } from '../src/util/mask.js';
import { cleanupHome, cliEnv, cliPath, runCli, tempHome, until } from './helpers.js';

test('events: appended lines read back in order, fields in a fixed order, file private', async (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  assert.deepEqual(readEvents(dir), []);
  assert.equal(appendEvent(dir, { task: null, type: 'supervisor-started', pid: 42, at: '2026-12-02T14:00:00.000Z' }), true);
  appendEvent(dir, { task: 'server', type: 'exited', code: 1, signal: null, at: '2026-12-02T14:00:01.000Z' });
  appendEvent(dir, { delay_ms: 2000, max: 5, attempt: 2, type: 'restarting', task: 'server', at: '2026-12-02T14:00:01.001Z' });
  const lines = readFileSync(eventsFile(dir), 'utf8').split('\n');
  assert.equal(lines[2], '{"at":"2026-12-02T14:00:01.001Z","task":"server","type":"restarting","delay_ms":2000,"max":5,"attempt":2}');
  assert.equal(lines[3], '');
  assert.equal(statSync(eventsFile(dir)).mode & 0o777, 0o600);
  const evs = readEvents(dir);
  assert.deepEqual(
    evs.map((e) => e.type),
    ['supervisor-started', 'exited', 'restarting'],
  );
  assert.deepEqual(evs[1], { at: '2026-12-02T14:00:01.000Z', task: 'server', type: 'exited', code: 1, signal: null });
  assert.deepEqual(readEvents(dir, { last: 1 }).map((e) => e.type), ['restarting']);
  assert.deepEqual(readEvents(dir, { since: Date.parse('2026-12-02T14:00:01.000Z') }).length, 2);
  // A task filter keeps the supervisor's own events.
  assert.deepEqual(readEvents(dir, { tasks: ['agent-runner'] }).map((e) => e.type), ['supervisor-started']);
  // `at` defaults to now.
  const before = Date.now();
  appendEvent(dir, { task: 'server', type: 'ready' });
  const at = Date.parse(readEvents(dir, { last: 1 })[0]!.at);
  assert.ok(at >= before && at <= Date.now());
});

test('events: lines that are not events are skipped, a partial last line is not read', (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  appendEvent(dir, { task: 'a', type: 'started', at: '2026-12-02T14:00:00.000Z' });
  appendFileSync(eventsFile(dir), 'not json\n{"at":"x","task":"a","type":"ready"}\n{"at":"2026-12-02T14:00:00.000Z","task":1,"type":"ready"}\n');
  appendFileSync(eventsFile(dir), '{"at":"2026-12-02T14:00:00.000Z","task":"a","type":"bogus"}\n[]\nnull\n{"at":"2026-12-02T14:00:00.000Z","task":"a","type":"ready","code":"1","attempt":"x"}\n');
  appendFileSync(eventsFile(dir), '{"at":"2026-12-02T14:00:02.000Z","task":"a","type":"exi');
  assert.deepEqual(readEvents(dir), [
    { at: '2026-12-02T14:00:00.000Z', task: 'a', type: 'started' },
    { at: '2026-12-02T14:00:00.000Z', task: 'a', type: 'ready' },
  ]);
  assert.equal(parseEvent('{"at":"2026-12-02T14:00:00.000Z","task":null,"type":"supervisor-stopped","__proto__":{"x":1}}')?.type, 'supervisor-stopped');
});

test('events: the file is bounded (rotates to events.jsonl.1, keeps one), readers see both', (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  const maxSize = 2000;
  for (let i = 0; i < 200; i++) appendEvent(dir, { task: 'svc', type: 'restarting', attempt: i, at: new Date(1_800_000_000_000 + i).toISOString() }, { maxSize });
  assert.ok(statSync(eventsFile(dir)).size <= maxSize);
  assert.ok(statSync(`${eventsFile(dir)}.1`).size <= maxSize);
  assert.ok(!existsSync(`${eventsFile(dir)}.2`));
  const attempts = readEvents(dir).map((e) => e.attempt!);
  assert.ok(attempts.length > 20 && attempts.length < 200, `kept ${attempts.length}`);
  // The newest, contiguous, in order.
  assert.equal(attempts.at(-1), 199);
  attempts.forEach((a, i) => assert.equal(a, 199 - (attempts.length - 1) + i));
});

test('events: a secret never reaches the file', (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  registerSecret('sk-events-test-secret-123');
  appendEvent(dir, { task: 'svc', type: 'unhealthy', detail: 'GET http://x/?key=sk-events-test-secret-123 failed' });
  assert.ok(!readFileSync(eventsFile(dir), 'utf8').includes('sk-events-test-secret-123'));
  assert.match(readEvents(dir)[0]!.detail!, /key=\*{8} failed/);
});

test('events: an unwritable data dir loses the event, never throws', () => {
  assert.equal(appendEvent('/proc/nonexistent-stigmer-dir', { task: 'svc', type: 'ready' }), false);
});

test('events: follow yields history then new events, across rotation and a file that appears later', async (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  const ac = new AbortController();
  const got: SupervisorEvent[] = [];
  // Started before the file exists.
  const done = (async () => {
    for await (const ev of followEvents(dir, { signal: ac.signal, history: true, pollMs: 10 })) {
      got.push(ev);
      if (got.length === 60) ac.abort();
    }
  })();
  const deadline = setTimeout(() => ac.abort(), 20_000);
  t.after(() => clearTimeout(deadline));
  const waitFor = (n: number): Promise<true> => until(`${n} events`, () => got.length >= n, 10_000, { everyMs: 5 });
  appendEvent(dir, { task: 'a', type: 'started', attempt: 0 });
  await waitFor(1);
  // A rotation every ~3 lines while following; up to two rotations between the follower's looks.
  for (let i = 1; i < 60; i++) {
    appendEvent(dir, { task: 'a', type: 'started', attempt: i }, { maxSize: 300 });
    if (i % 5 === 0) await waitFor(i + 1);
  }
  await done;
  assert.deepEqual(
    got.map((e) => e.attempt),
    Array.from({ length: 60 }, (_, i) => i),
  );
});

test('events: history and follow neither lose nor repeat; without history only new ones', async (t) => {
  const dir = tempHome();
  t.after(() => cleanupHome(dir));
  for (let i = 0; i < 5; i++) appendEvent(dir, { task: 'a', type: 'ready', attempt: i });
  const ac = new AbortController();
  const withHistory: number[] = [];
  const without: number[] = [];
  const a = (async () => {
    for await (const ev of followEvents(dir, { signal: ac.signal, history: true, last: 3, pollMs: 10 })) withHistory.push(ev.attempt!);
  })();
  const b = (async () => {
    for await (const ev of followEvents(dir, { signal: ac.signal, pollMs: 10 })) without.push(ev.attempt!);
  })();
  await new Promise((r) => setTimeout(r, 50));
  for (let i = 5; i < 8; i++) appendEvent(dir, { task: 'a', type: 'ready', attempt: i });
  for (let i = 0; i < 2000 && (withHistory.length < 6 || without.length < 3); i++) await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  await Promise.all([a, b]);
  assert.deepEqual(withHistory, [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(without, [5, 6, 7]);
});

test('events: one line each for people', () => {
  const at = '2026-12-02T14:03:11.201Z';
  assert.equal(formatEvent({ at, task: 'server', type: 'exited', code: 1, signal: null }, 12), `${at} server       exited code 1`);
  assert.equal(formatEvent({ at, task: 'server', type: 'exited', code: null, signal: 'SIGKILL' }), `${at} server exited signal SIGKILL`);
  assert.equal(formatEvent({ at, task: 'server', type: 'restarting', attempt: 2, max: 5, delay_ms: 2000, detail: 'exit code 1' }), `${at} server restarting (2/5) in 2s - exit code 1`);
  assert.equal(formatEvent({ at, task: 'server', type: 'restarting', attempt: 1, max: 5, delay_ms: 1500 }), `${at} server restarting (1/5) in 1.5s`);
  assert.equal(formatEvent({ at, task: 'server', type: 'crash-loop', code: 3, max: 5 }), `${at} server crash-loop code 3 (more than 5 restarts)`);
  assert.equal(formatEvent({ at, task: null, type: 'supervisor-started', pid: 7 }), `${at} supervisor supervisor-started pid 7`);
  assert.equal(formatEvent({ at, task: 'x', type: 'unhealthy', detail: 'line1\nline2' }), `${at} x unhealthy - line1 line2`);
});

test('stigmer events: --no-follow prints what is recorded (text and JSON), filtered by task; follow prints new ones; Ctrl-C exits 130 quietly', async (t) => {
  const home = tempHome();
  const dir = join(home, 'stack');
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await cleanupHome(home);
  });
  const none = await runCli(['events', '--no-follow', '--data-dir', dir], { home });
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /^stigmer: no events recorded yet \(.*\/stack\/events\.jsonl: a supervised stack writes them once it is up\)\n$/);

  appendEvent(dir, { task: null, type: 'supervisor-started', pid: 7, at: '2026-12-02T14:00:00.000Z' });
  appendEvent(dir, { task: 'server', type: 'exited', code: 1, signal: null, at: '2026-12-02T14:00:01.000Z' });
  appendEvent(dir, { task: 'server', type: 'restarting', attempt: 1, max: 5, delay_ms: 1000, at: '2026-12-02T14:00:01.001Z' });
  appendEvent(dir, { task: 'agent-runner', type: 'ready', at: '2026-12-02T14:00:02.000Z' });
  const text = await runCli(['events', '--no-follow', '--data-dir', dir], { home });
  assert.equal(text.code, 0, text.stderr);
  assert.equal(
    text.stdout,
    [
      '2026-12-02T14:00:00.000Z supervisor   supervisor-started pid 7',
      '2026-12-02T14:00:01.000Z server       exited code 1',
      '2026-12-02T14:00:01.001Z server       restarting (1/5) in 1s',
      '2026-12-02T14:00:02.000Z agent-runner ready',
      '',
    ].join('\n'),
  );
  const json = await runCli(['events', '--json', '--no-follow', '-n', '2', 'server', '--data-dir', dir], { home });
  assert.deepEqual(
    json.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown),
    [
      { at: '2026-12-02T14:00:01.000Z', task: 'server', type: 'exited', code: 1, signal: null },
      { at: '2026-12-02T14:00:01.001Z', task: 'server', type: 'restarting', attempt: 1, max: 5, delay_ms: 1000 },
    ],
  );
  const since = await runCli(['events', '--json', '--no-follow', '--since', '2026-12-02T14:00:01.5Z', '--data-dir', dir], { home });
  assert.equal(since.stdout.trim().split('\n').length, 1);

  // Following: the last 2, then a new one as it is appended.
  const child = spawn(process.execPath, [cliPath, 'events', '--json', '-n', '2', '--data-dir', dir], { env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  await until('the first lines', () => out.split('\n').length > 2, 30_000, { everyMs: 10 });
  appendEvent(dir, { task: 'server', type: 'ready', at: '2026-12-02T14:00:03.000Z' });
  await until('the new event', () => out.includes('14:00:03'), 30_000, { everyMs: 10 });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  assert.equal(await exited, 130);
  assert.deepEqual(
    out.trim().split('\n').map((l) => (JSON.parse(l) as SupervisorEvent).type),
    ['restarting', 'ready', 'ready'],
  );
  assert.equal(err, '');
});
