/**
 * `stigmer logs`: merged in time order, --since, -n, --timestamps, old-format lines, -f across
 * rotations and restarts, Ctrl-C, and what it says when there is nothing to show. Logs are made
 * by the capture module (real child processes into openLogWriter) or written as fixtures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openLogWriter } from '../src/process/log-writer.js';
import { cleanupHome, cliEnv, cliPath, runCli, sleep, tempHome } from './helpers.js';

const iso = (t: number): string => new Date(t).toISOString();

function writeLog(dataDir: string, task: string, lines: string[], suffix = ''): void {
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  writeFileSync(join(dataDir, 'logs', `${task}.log${suffix}`), lines.map((l) => l + '\n').join(''));
}

/**
 * A child printing `tag i` every `everyMs` from the wall-clock time `at`, captured by the log
 * module like a supervised service.
 */
async function capturedService(dataDir: string, task: string, tag: string, n: number, everyMs: number, at: number, home: string): Promise<void> {
  const w = openLogWriter({ file: join(dataDir, 'logs', `${task}.log`) });
  const script = `let i = 0; setTimeout(() => { const t = setInterval(() => { console.log('${tag} ' + ++i); if (i === ${n}) clearInterval(t); }, ${everyMs}); }, ${at} - Date.now());`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STIGMER_HOME: home } });
  await Promise.all([w.attach(child.stdout, 'out'), w.attach(child.stderr, 'err'), new Promise((r) => child.once('exit', r))]);
  await w.close();
}

test('logs: two services merged line by line in time order, prefixed by task; one task alone unprefixed', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const dir = join(home, 'd');
  // b starts half a period after a: their lines alternate in time.
  const at = Date.now() + 2500; // both children are running by then, even on a loaded machine
  await Promise.all([capturedService(dir, 'alpha', 'a', 8, 60, at, home), capturedService(dir, 'beta', 'b', 8, 60, at + 30, home)]);
  const r = await runCli(['logs', '--data-dir', dir], { home });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  // The order the timestamps in the files give (a before b within one millisecond) ...
  const stamped = ['alpha', 'beta'].flatMap((task, k) =>
    readFileSync(join(dir, 'logs', `${task}.log`), 'utf8').trimEnd().split('\n').map((l, i) => ({ time: Date.parse(l.slice(0, 24)), k, i, shown: `${task.padEnd(5)} | ${l.slice(29)}` })),
  );
  stamped.sort((x, y) => x.time - y.time || x.k - y.k || x.i - y.i);
  assert.deepEqual(lines, stamped.map((e) => e.shown));
  // ... and it really interleaves the two (the machine kept roughly to the schedule).
  const switches = lines.filter((l, i) => i > 0 && l.slice(0, 5) !== lines[i - 1]!.slice(0, 5)).length;
  assert.ok(switches >= 4, `only ${switches} switches between the tasks:\n${lines.join('\n')}`);
  const one = await runCli(['logs', 'beta', '-n', '2', '--data-dir', dir], { home });
  assert.deepEqual(one.stdout, 'b 7\nb 8\n');
  const both = await runCli(['logs', 'beta', 'alpha', '-n', '1', '--data-dir', dir], { home });
  const lastOfEach = stamped.filter((e) => e.shown.endsWith(' 8'));
  assert.deepEqual(both.stdout, lastOfEach.map((e) => e.shown + '\n').join(''));
  const ts = await runCli(['logs', 'alpha', '-n', '1', '--timestamps', '--data-dir', dir], { home });
  assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z a 8\n$/);
});

test('logs: --since, stigmer lines, ANSI stripped, old-format lines, rotated files read back', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const dir = join(home, 'd');
  const now = Date.now();
  writeLog(dir, 'svc', [`${iso(now - 30 * 60_000)} out oldest, in the rotated file`], '.1');
  writeLog(dir, 'svc', [
    `${iso(now - 20 * 60_000)} out twenty minutes ago`,
    `${iso(now - 5 * 60_000)} err \u001b[31mfive\u001b[0m minutes ago`,
    `${iso(now - 4 * 60_000)} --- restarted after exit code 1 (2/5)`,
    `${iso(now - 60_000)} out one minute ago`,
  ]);
  // Written before capture: a header with its time, then bare lines.
  writeLog(dir, 'legacy', [`--- ${iso(now - 3 * 60_000)} starting node old.js`, 'plain line one', 'plain line two']);
  const since = await runCli(['logs', '--since', '10m', '--data-dir', dir], { home });
  assert.equal(since.code, 0, since.stderr);
  assert.deepEqual(since.stdout.trimEnd().split('\n'), [
    'svc    | five minutes ago',
    'svc    | --- restarted after exit code 1 (2/5)',
    `legacy | --- ${iso(now - 3 * 60_000)} starting node old.js`,
    'legacy | plain line one',
    'legacy | plain line two',
    'svc    | one minute ago',
  ]);
  const all = await runCli(['logs', 'svc', '--data-dir', dir], { home });
  assert.deepEqual(all.stdout.trimEnd().split('\n'), ['oldest, in the rotated file', 'twenty minutes ago', 'five minutes ago', '--- restarted after exit code 1 (2/5)', 'one minute ago']);
  const abs = await runCli(['logs', 'svc', '--since', iso(now - 2 * 60_000), '--data-dir', dir], { home });
  assert.equal(abs.stdout, 'one minute ago\n');
  const bad = await runCli(['logs', '--since', 'yesterday', '--data-dir', dir], { home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since: expected a duration like 10m, 2h, 90s or a time like .*, got "yesterday"/);
});

test('logs: nothing yet says so and where; a known task without a log is no typo; an unknown one is', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const dir = join(home, 'd');
  const none = await runCli(['logs', '--data-dir', dir], { home });
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.equal(none.stderr, `stigmer: no logs yet in ${join(dir, 'logs')} (each service writes <task>.log there once it starts)\n`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, seq: 1, tasks: { 'start-db': { kind: 'process', status: 'pending', undo: [] } } }));
  writeLog(dir, 'other', [`${iso(Date.now())} out hi`]);
  const known = await runCli(['logs', 'start-db', '--data-dir', dir], { home });
  assert.equal(known.code, 0, known.stderr);
  assert.equal(known.stderr, `stigmer: no log for start-db yet; it will be written to ${join(dir, 'logs', 'start-db.log')} once it starts\n`);
  const typo = await runCli(['logs', 'start-bd', '--data-dir', dir], { home });
  assert.equal(typo.code, 2);
  assert.equal(typo.stderr, 'stigmer: no log for "start-bd" (did you mean "start-db"?): the stack has no such task. Tasks: other, start-db\n');
});

test('logs -f: follows across rotations and restarts, each line once and in order; Ctrl-C exits 130 silently', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const dir = join(home, 'd');
  const w = openLogWriter({ file: join(dir, 'logs', 'svc.log'), maxSize: 2048, keep: 1 });
  w.writeEvent('starting');
  await w.flush();
  const child = spawn(process.execPath, [cliPath, 'logs', 'svc', '-f', '-n', '1', '--data-dir', dir], { env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  try {
    const deadline = Date.now() + 15_000;
    while (!out.includes('--- starting') && Date.now() < deadline) await sleep(20);
    // ~45 bytes a line: 400 lines are eight rotations of a 2 KiB file, written in bursts.
    for (let i = 1; i <= 400; i++) {
      if (i === 200) w.writeEvent('restarted after exit code 1 (1/5)');
      await w.attach(Readable.from([Buffer.from(`line ${i}\n`)]), 'out');
      if (i % 50 === 0) await sleep(150);
    }
    await w.close();
    assert.ok(w.stats.rotations >= 4, `${w.stats.rotations} rotations`);
    while (!out.includes('line 400\n') && Date.now() < deadline) await sleep(20);
    await sleep(300);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.equal(err, '');
    const expected = ['--- starting', ...Array.from({ length: 400 }, (_, i) => `line ${i + 1}`)];
    expected.splice(200, 0, '--- restarted after exit code 1 (1/5)');
    assert.deepEqual(out.trimEnd().split('\n'), expected);
  } finally {
    child.kill('SIGKILL');
  }
});

for (const keep of [1, 3]) {
  test(`logs -f: several rotations between two looks (keep ${keep}) lose no line`, async (t) => {
    const home = tempHome();
    t.after(() => cleanupHome(home));
    const dir = join(home, 'd');
    const w = openLogWriter({ file: join(dir, 'logs', 'svc.log'), maxSize: 2048, keep });
    w.writeEvent('starting');
    await w.flush();
    const child = spawn(process.execPath, [cliPath, 'logs', 'svc', '-f', '-n', '1', '--data-dir', dir], { env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('--- starting') && Date.now() < deadline) await sleep(20);
      // Bursts of ~2 KiB x (keep + 1) written at once: up to keep + 1 rotations before the follower
      // looks again (more than that would drop the follower's file and one newer: kept files only).
      const perBurst = Math.floor((2048 * (keep + 1)) / 46) - 2;
      let n = 0;
      for (let b = 0; b < 5; b++) {
        const lines = Array.from({ length: perBurst }, () => Buffer.from(`line ${++n}\n`));
        await w.attach(Readable.from(lines), 'out');
        await w.flush();
        await sleep(300);
      }
      await w.close();
      assert.ok(w.stats.rotations >= 5 * keep, `${w.stats.rotations} rotations`);
      while (!out.includes(`line ${n}\n`) && Date.now() < deadline) await sleep(20);
      child.kill('SIGINT');
      assert.equal(await exited, 130);
      assert.deepEqual(out.trimEnd().split('\n'), ['--- starting', ...Array.from({ length: n }, (_, i) => `line ${i + 1}`)]);
    } finally {
      child.kill('SIGKILL');
    }
  });
}
