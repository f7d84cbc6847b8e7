/**
 * Fault injection the issue measured, held by tests: one run per data dir under a forced race
 * (delays injected between taking the lock and writing its holder, the window two runs used to
 * slip through), a lock that dies with its holder, and kill -9 of `up` at random points leaving
 * nothing running after `down`; a supervisor whose CLI was killed while it started it leaves by itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findMarked } from '../src/process/sweep.js';
import { assertNothingLeft, cleanupHome, cliEnv, cliPath, fixture, freePort, processesWithHome, runCli, sleep, tempHome, until as pollUntil } from './helpers.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));

async function stack(home: string, opts: { after?: number } = {}): Promise<string> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const svc = (name: string, port: number, needs?: string): string[] => [
    `  ${name}:`,
    '    uses: process',
    ...(needs ? [`    needs: [${needs}]`] : []),
    `    with: { command: ${node}, args: [${service}, "--listen", "${port}", "--after", "${opts.after ?? 0}"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s } }`,
  ];
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'tasks:',
      ...svc('db', ports[0]!),
      '  migrate:',
      '    uses: exec',
      '    needs: [db]',
      '    with: { command: sh, args: ["-c", "sleep 0.2 & sleep 0.3"] }',
      ...svc('api', ports[1]!, 'migrate'),
      ...svc('web', ports[2]!, 'api'),
      '',
    ].join('\n'),
  );
  return file;
}

function startUp(home: string, env: Record<string, string> = {}): { pid: number; exit: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [cliPath, 'up', '--data-dir', home], { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return { pid: child.pid!, exit: new Promise((r) => child.on('close', (code) => r({ code, stderr }))) };
}

test('six concurrent ups on one data dir with the race window forced open: exactly one winner', async () => {
  const home = tempHome();
  try {
    await stack(home);
    const runs = Array.from({ length: 6 }, () => startUp(home, { STIGMER_FAULT_LOCK_DELAY_MS: '300' }));
    const results = await Promise.all(runs.map((r) => r.exit));
    const winners = results.filter((r) => r.code === 0);
    assert.equal(winners.length, 1, results.map((r) => `${r.code}: ${r.stderr}`).join('\n'));
    for (const r of results.filter((x) => x.code !== 0)) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /another stigmer run \(.*\) is using/);
    }
    // The winner's services all run: nobody undid them.
    const state = JSON.parse(readFileSync(join(home, 'state.json'), 'utf8')) as { tasks: Record<string, { status: string }> };
    for (const t of ['db', 'api', 'web']) assert.equal(state.tasks[t]?.status, 'ready', t);
    assert.equal(findMarked(home).length, 3);
  } finally {
    await runCli(['down', '--data-dir', home], { home });
    await cleanupHome(home);
  }
});

test('the lock dies with its holder (kill -9), and an empty lock file never blocks a run', async () => {
  const home = tempHome();
  try {
    // The holder: a `run` in the CLI (no supervisor runs the stack), still waiting for db.
    await stack(home, { after: 15_000 });
    const child = spawn(process.execPath, [cliPath, 'run', 'db', '--data-dir', home], { cwd: home, env: cliEnv(home), stdio: ['ignore', 'ignore', 'pipe'] });
    const holder = { pid: child.pid!, exit: new Promise((r) => child.on('close', r)) };
    await until(() => findMarked(home).length === 1);
    const blocked = await runCli(['up', '--data-dir', home], { home });
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, new RegExp(`another stigmer run \\(pid ${holder.pid}: `));
    process.kill(holder.pid, 'SIGKILL');
    await holder.exit;
    await stack(home);
    // No helper outlives it: the next run takes the lock at once.
    const next = await runCli(['up', '--data-dir', home], { home });
    assert.equal(next.code, 0, next.stderr);
    assert.equal((await runCli(['down', '--data-dir', home], { home })).code, 0);
    writeFileSync(join(home, 'run.lock'), '');
    const again = await runCli(['up', '--data-dir', home], { home });
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await runCli(['down', '--data-dir', home], { home });
    await cleanupHome(home);
  }
});

const until = (cond: () => boolean, ms = 20_000): Promise<true> => pollUntil('the condition', cond, ms);

test('kill -9 of up at random points (fixed seed, 10 runs): down leaves nothing running', async () => {
  const home = tempHome();
  try {
    await stack(home, { after: 50 });
    // A small linear congruential generator: the same points on every run of the suite.
    let seed = 20261202;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 10; i++) {
      const at = Math.floor(next() * 700);
      const up = startUp(home);
      await sleep(at);
      try {
        process.kill(up.pid, 'SIGKILL');
      } catch {
        // it finished first
      }
      await up.exit;
      const down = await runCli(['down', '--data-dir', home], { home });
      assert.ok(down.code === 0, `kill at ${at} ms: down ${down.code}: ${down.stdout}${down.stderr}`);
      await assertNothingLeft(home, 3000).catch((err: Error) => {
        throw new Error(`kill at ${at} ms: ${err.message}`);
      });
      assert.deepEqual(processesWithHome(home), []);
    }
  } finally {
    await runCli(['down', '--data-dir', home], { home });
    await cleanupHome(home);
  }
});

test('kill -9 of up while it starts the supervisor: the supervisor nobody will come to leaves at once, without a down', async () => {
  const home = tempHome();
  try {
    await stack(home);
    for (let i = 0; i < 3; i++) {
      const up = startUp(home);
      // The supervisor exists (exec'd) but cannot listen yet: the CLI has sent nothing.
      const sup = await until(() => processesWithHome(home).some((p) => p.cmd.includes('internal supervise')), 30_000);
      assert.ok(sup);
      process.kill(up.pid, 'SIGKILL');
      await up.exit;
      // Without the watch on its spawning CLI it stayed for its 30 s idle bound.
      await assertNothingLeft(home, 10_000);
      assert.ok(!existsSync(join(home, 'supervisor.sock')), 'its socket is gone');
    }
    // The next up starts a supervisor of its own, as on a fresh data dir.
    const up = await runCli(['up', '--data-dir', home], { home });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(findMarked(home).length, 3);
  } finally {
    await runCli(['down', '--data-dir', home], { home });
    await cleanupHome(home);
  }
});
