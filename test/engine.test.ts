/**
 * The engine through the real CLI: concurrency, failure and skip, undo order, signals, crash
 * recovery, locking, idempotence, `run <task>`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, cliEnv, cliPath, fixture, freePort, processesWithHome, runCli, sleep, spawnCli, tempHome, until as pollUntil, type RunningCli } from './helpers.js';
import { readProcStat } from '../src/process/proc.js';
import { projectDataDir } from '../src/engine/stacks.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));

interface Ev {
  event: string;
  task: string;
  why?: string;
  satisfied?: boolean;
  error?: { reason: string; message: string };
}

function events(stdout: string): Ev[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Ev);
}

function write(home: string, yaml: string): string {
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** A process task running the fake service. */
function svc(name: string, opts: { port: number; needs?: string[]; after?: number; extra?: string[]; grace?: string; ready?: string }): string {
  const args = ['--listen', String(opts.port), ...(opts.after ? ['--after', String(opts.after)] : []), ...(opts.extra ?? [])];
  return [
    `  ${name}:`,
    `    uses: process`,
    ...(opts.needs ? [`    needs: [${opts.needs.join(', ')}]`] : []),
    `    with:`,
    `      command: ${node}`,
    `      args: [${[service, ...args.map((a) => JSON.stringify(a))].join(', ')}]`,
    `      ports: [${opts.port}]`,
    `      ready: ${opts.ready ?? `{ tcp: { host: 127.0.0.1, port: ${opts.port} }, timeout: 20s }`}`,
    `      stop: { signal: SIGTERM, grace: ${opts.grace ?? '5s'} }`,
  ].join('\n');
}

function sh(name: string, script: string, needs: string[] = []): string {
  return [`  ${name}:`, `    uses: exec`, ...(needs.length ? [`    needs: [${needs.join(', ')}]`] : []), `    with: { command: sh, args: ["-c", ${JSON.stringify(script)}] }`].join('\n');
}

/** The data dir of the stack of <home>/stigmer.tasks.yaml (its own, under <home>/stacks), made. */
function stackDir(home: string): string {
  const dir = projectDataDir(join(home, 'stigmer.tasks.yaml'), home);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function state(home: string): { tasks: Record<string, { status: string; undo: { pid: number; startTime: number }[] }> } | undefined {
  const f = join(stackDir(home), 'state.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
}

function pidOf(home: string, task: string): number | undefined {
  return state(home)?.tasks[task]?.undo[0]?.pid;
}

/** Start the CLI without waiting for it. */
const startCli = (args: string[], home: string): RunningCli => spawnCli(args, { home });

const until = (cond: () => boolean, ms = 15_000): Promise<true> => pollUntil('the condition', cond, ms);

test('a diamond runs its two branches at the same time; dependents start as soon as needs are done', async () => {
  const home = tempHome();
  try {
    write(home, ['version: 1', 'tasks:', sh('a', 'true'), sh('b', 'sleep 0.6', ['a']), sh('c', 'sleep 0.6', ['a']), sh('d', 'true', ['b', 'c']), ''].join('\n'));
    const r = await runCli(['up', '--output', 'json'], { home });
    assert.equal(r.code, 0, r.stderr);
    const evs = events(r.stdout).map((e) => `${e.event}:${e.task}`);
    // c started before b finished (and vice versa): the branches overlapped.
    assert.ok(evs.indexOf('started:c') < evs.indexOf('done:b'), evs.join(' '));
    assert.ok(evs.indexOf('started:b') < evs.indexOf('done:c'), evs.join(' '));
    assert.ok(evs.indexOf('started:d') > Math.max(evs.indexOf('done:b'), evs.indexOf('done:c')));
    // --concurrency 1 serialises them.
    const r1 = await runCli(['run', 'd', '--output', 'json', '--concurrency', '1'], { home });
    assert.equal(r1.code, 2, 'run takes no --concurrency');
    await runCli(['down'], { home });
    const r2 = await runCli(['up', '--output', 'json', '--concurrency', '1'], { home });
    assert.equal(r2.code, 0, r2.stderr);
    const e2 = events(r2.stdout).map((e) => `${e.event}:${e.task}`);
    const [first, second] = e2.indexOf('started:b') < e2.indexOf('started:c') ? ['b', 'c'] : ['c', 'b'];
    assert.ok(e2.indexOf(`done:${first}`) < e2.indexOf(`started:${second}`), e2.join(' '));
  } finally {
    await runCli(['down'], { home });
    await cleanupHome(home);
  }
});

test('a failure skips what needs it, cancels what runs, undoes what was started in reverse, exit 1', async () => {
  const home = tempHome();
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  try {
    write(
      home,
      [
        'version: 1',
        'tasks:',
        svc('s1', { port: p1 }),
        svc('s2', { port: p2, needs: ['s1'] }),
        svc('s3', { port: p3, needs: ['s2'] }),
        sh('boom', 'echo going down; echo for real >&2; exit 3', ['s3']),
        sh('after', 'true', ['boom']),
        sh('slow', 'sleep 30', ['s1']),
        '',
      ].join('\n'),
    );
    const r = await runCli(['up', '--output', 'json'], { home });
    assert.equal(r.code, 1, r.stderr);
    const evs = events(r.stdout);
    const failed = evs.find((e) => e.event === 'failed');
    assert.equal(failed?.task, 'boom');
    assert.equal(failed?.error?.message, "sh -c 'echo going down; echo for real >&2; exit 3' exited with code 3");
    assert.equal(evs.find((e) => e.task === 'after' && e.event === 'skipped')?.why, 'needs boom, which failed');
    assert.equal(evs.find((e) => e.task === 'slow' && e.event !== 'queued' && e.event !== 'started')?.event, 'cancelled');
    const undone = evs.filter((e) => e.event === 'undone').map((e) => e.task);
    // The cancelled command was recorded while in flight: it is undone too, before what it needs.
    assert.deepEqual(undone.filter((t) => t !== 'slow'), ['s3', 's2', 's1']);
    assert.ok(undone.includes('slow') && undone.indexOf('slow') < undone.indexOf('s1'), undone.join(' '));
    assert.match(r.stderr, /stigmer: boom failed: sh -c 'echo going down; echo for real >&2; exit 3' exited with code 3\n {2}last lines of its log:\n(.|\n)*going down\n(.|\n)*for real/);
    assert.equal(state(home), undefined, 'nothing left recorded');
  } finally {
    await cleanupHome(home);
  }
});

test('a process that exits before it is ready fails at once with its exit code and log tail', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    write(home, ['version: 1', 'tasks:', svc('api', { port, after: 60_000, extra: ['--exit-after', '100', '--code', '4', '--lines', '3'] }), ''].join('\n'));
    const t0 = Date.now();
    const r = await runCli(['up'], { home });
    assert.equal(r.code, 1);
    assert.ok(Date.now() - t0 < 15_000, 'failed well before the 20 s readiness deadline');
    assert.match(r.stderr, /stigmer: api failed: exited with code 4 before it was ready\n {2}last lines of its log:\n(.|\n)*line 3\n(.|\n)*exiting with code 4\n {2}full log: .*api\.log/);
  } finally {
    await cleanupHome(home);
  }
});

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  test(`${sig} during up undoes what was started and exits ${code}`, async () => {
    const home = tempHome();
    const [p1, p2] = [await freePort(), await freePort()];
    try {
      write(home, ['version: 1', 'tasks:', svc('db', { port: p1 }), svc('api', { port: p2, needs: ['db'], after: 60_000 }), ''].join('\n'));
      const run = startCli(['up', '--output', 'json'], home);
      await until(() => pidOf(home, 'api') !== undefined);
      run.child.kill(sig);
      assert.equal(await run.exit, code, run.err());
      const evs = events(run.out());
      assert.deepEqual(
        evs.filter((e) => e.event === 'undone').map((e) => e.task),
        ['api', 'db'],
      );
      assert.equal(evs.find((e) => e.task === 'api' && e.event === 'cancelled')?.task, 'api');
    } finally {
      await cleanupHome(home);
    }
  });
}

test('a second signal skips the grace periods and kills every process group', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    write(home, ['version: 1', 'tasks:', svc('stubborn', { port, extra: ['--ignore-term', '--child'], grace: '60s' }), ''].join('\n'));
    const up = await runCli(['up'], { home });
    assert.equal(up.code, 0, up.stderr);
    const down = startCli(['down'], home);
    await until(() => /stubborn: undoing/.test(down.out())); // down is waiting out the 60 s grace
    await sleep(100);
    assert.ok(processesWithHome(home).length >= 2, 'service and its child still running during the grace period');
    down.child.kill('SIGINT');
    await sleep(100);
    down.child.kill('SIGINT');
    const code = await down.exit;
    assert.equal(code, 130);
    assert.match(down.err(), /SIGINT again, killing every process group without grace/);
  } finally {
    await cleanupHome(home);
  }
});

test('after kill -9 of the CLI, down finds and stops what it left behind', async () => {
  const home = tempHome();
  const [p1, p2] = [await freePort(), await freePort()];
  try {
    write(home, ['version: 1', 'tasks:', svc('db', { port: p1, extra: ['--child'] }), svc('api', { port: p2, needs: ['db'], after: 60_000 }), ''].join('\n'));
    const run = startCli(['up'], home);
    await until(() => pidOf(home, 'api') !== undefined);
    run.child.kill('SIGKILL');
    await run.exit;
    assert.ok(processesWithHome(home).length >= 3, 'db, its child and api survive the CLI');
    // The next up is refused nothing: the lock of the dead run is taken over. Down cleans up.
    const down = await runCli(['down'], { home });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /api: undone/);
    assert.match(down.stdout, /db: undone/);
    assert.deepEqual(processesWithHome(home), []);
    const again = await runCli(['down'], { home });
    assert.equal(again.code, 0);
  } finally {
    await cleanupHome(home);
  }
});

test('one run at a time per data dir; a stale lock is taken over', async () => {
  const home = tempHome();
  try {
    write(home, ['version: 1', 'tasks:', sh('a', 'true'), ''].join('\n'));
    // A lock held by a live process (this test) refuses the run, naming the pid.
    const me = readProcStat(process.pid)!;
    writeFileSync(join(stackDir(home), 'run.lock'), JSON.stringify({ pid: process.pid, startTime: me.startTime }));
    const r = await runCli(['up'], { home });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`another stigmer run \\(pid ${process.pid}: .*\\) is using ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The same pid with another start time is a reused pid: stale.
    writeFileSync(join(stackDir(home), 'run.lock'), JSON.stringify({ pid: process.pid, startTime: me.startTime + 1 }));
    const r2 = await runCli(['up'], { home });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(existsSync(join(stackDir(home), 'run.lock')), false, 'released after the run');
  } finally {
    await runCli(['down'], { home });
    await cleanupHome(home);
  }
});

test('a recorded pid now used by another program is never signalled', async () => {
  const home = tempHome();
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', detached: true, env: cliEnv(home) });
  try {
    await until(() => readProcStat(other.pid!) !== undefined);
    const real = readProcStat(other.pid!)!;
    writeFileSync(
      join(stackDir(home), 'state.json'),
      JSON.stringify({
        version: 1,
        seq: 1,
        tasks: {
          ghost: {
            kind: 'process',
            status: 'ready',
            seq: 1,
            undo: [{ type: 'stop-process', pid: other.pid, pgid: other.pid, startTime: real.startTime - 5, command: 'old', signal: 'SIGTERM', graceMs: 100, startedAt: new Date().toISOString() }],
          },
        },
      }),
    );
    const r = await runCli(['down'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /another program/);
    assert.ok(readProcStat(other.pid!), 'the unrelated process is still alive');
  } finally {
    process.kill(-other.pid!, 'SIGKILL');
    await cleanupHome(home);
  }
});

test('a second up restarts nothing; run <task> restarts only that task; --no-deps uses recorded outputs', async () => {
  const home = tempHome();
  const [p1, p2] = [await freePort(), await freePort()];
  try {
    write(home, ['version: 1', 'tasks:', svc('db', { port: p1 }), svc('api', { port: p2, needs: ['db'] }), sh('seed', 'echo seeded', ['db']), ''].join('\n'));
    const first = await runCli(['up'], { home });
    assert.equal(first.code, 0, first.stderr);
    const [db1, api1] = [pidOf(home, 'db'), pidOf(home, 'api')];
    const second = await runCli(['up', '--output', 'json'], { home });
    assert.equal(second.code, 0, second.stderr);
    const evs = events(second.stdout).filter((e) => e.event === 'ready' || e.event === 'done');
    assert.deepEqual(evs.map((e) => [e.task, e.satisfied]).sort(), [['api', true], ['db', true], ['seed', true]]);
    assert.deepEqual([pidOf(home, 'db'), pidOf(home, 'api')], [db1, api1]);

    const rerun = await runCli(['run', 'api'], { home });
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(pidOf(home, 'db'), db1, 'its need was satisfied, not restarted');
    assert.notEqual(pidOf(home, 'api'), api1, 'the task itself restarted');
    assert.ok([undefined, 'Z'].includes(readProcStat(api1!)?.state), 'the previous instance was stopped');

    const nodeps = await runCli(['run', 'seed', '--no-deps', '--output', 'json'], { home });
    assert.equal(nodeps.code, 0, nodeps.stderr);
    assert.equal(events(nodeps.stdout).find((e) => e.task === 'db' && e.event === 'skipped')?.why, 'using its recorded outputs (--no-deps)');
    await runCli(['down'], { home });
    const missing = await runCli(['run', 'seed', '--no-deps'], { home });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--no-deps: "db" has no recorded outputs/);
  } finally {
    await runCli(['down'], { home });
    await cleanupHome(home);
  }
});

test('--foreground streams prefixed service output and undoes everything on Ctrl-C', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    write(home, ['version: 1', 'tasks:', svc('web', { port, extra: ['--ready-line', 'web is up'] }), ''].join('\n'));
    const run = startCli(['up', '--foreground'], home);
    await until(() => /web: ready/.test(run.out()));
    await until(() => processesWithHome(home).length >= 1);
    run.child.kill('SIGINT');
    assert.equal(await run.exit, 130, run.err());
    assert.match(run.err(), /web: undone/);
    assert.equal(state(home), undefined);
  } finally {
    await cleanupHome(home);
  }
});

test('status, logs and graph describe the stack; down works with a broken tasks file', async () => {
  const home = tempHome();
  const port = await freePort();
  try {
    const file = write(home, ['version: 1', 'tasks:', svc('web', { port, extra: ['--lines', '2'] }), sh('check', 'echo checked', ['web']), ''].join('\n'));
    assert.equal((await runCli(['up'], { home })).code, 0);
    const st = await runCli(['status', '--json'], { home });
    const s = JSON.parse(st.stdout) as { tasks: { task: string; state: string; pid?: number; address?: string }[] };
    const web = s.tasks.find((t) => t.task === 'web')!;
    assert.equal(web.state, 'ready');
    assert.equal(web.pid, pidOf(home, 'web'));
    const logs = await runCli(['logs'], { home });
    assert.match(logs.stdout, /web {3}\| line 2/);
    assert.match(logs.stdout, /check \| checked/);
    const one = await runCli(['logs', 'check', '-n', '1'], { home });
    assert.equal(one.stdout, 'checked\n');
    const unknown = await runCli(['logs', 'chek'], { home });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no log for "chek" \(did you mean "check"\?\)/);
    const g = await runCli(['graph', '--format', 'mermaid'], { home });
    assert.match(g.stdout, /web --> check/);
    writeFileSync(file, 'version: [\n');
    assert.equal((await runCli(['validate'], { home })).code, 2);
    const down = await runCli(['down'], { home });
    assert.equal(down.code, 0, down.stderr);
  } finally {
    await cleanupHome(home);
  }
});

test('port-in-use names the holder; exit codes for usage errors', async () => {
  const home = tempHome();
  const port = await freePort();
  const holder = spawn(process.execPath, [fixture('service.mjs'), '--listen', String(port)], { stdio: 'ignore', env: cliEnv(home) });
  try {
    await sleep(300);
    write(home, ['version: 1', 'tasks:', svc('web', { port }), `    hints: { port-in-use: "Or point web elsewhere than \${{ env.WEB_HINT_HOST }}:${port}." }`, ''].join('\n'));
    const r = await runCli(['up'], { home, env: { WEB_HINT_HOST: 'example.test' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`web failed: port ${port} is held by pid ${holder.pid} \\(.*service\\.mjs --listen ${port}\\)`));
    assert.match(r.stderr, new RegExp(`\\n  hint: Or point web elsewhere than example\\.test:${port}\\.\\n`));
    assert.equal((await runCli(['up', '--bogus'], { home })).code, 2);
    assert.equal((await runCli(['run', 'nope'], { home })).code, 2);
  } finally {
    holder.kill('SIGKILL');
    await cleanupHome(home);
  }
});
