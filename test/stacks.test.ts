/**
 * One stack per project: each tasks file has its own data dir, two projects run side by side, a
 * bare `down` in one folder stops only that one, every command takes `-f`, `ls` lists them all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectDataDir } from '../src/engine/stacks.js';
import { isAlive } from '../src/process/proc.js';
import { cleanupHome, fixture, freePort, runCli, tempHome } from './helpers.js';

interface LsJson {
  stacks: { name: string; data_dir: string; file: string | null; state: string; services: { task: string; state: string; pid?: number }[]; supervisor: unknown }[];
}

/** A project folder with a tasks file running one service on `port`. */
function project(home: string, name: string, port: number): string {
  const dir = join(home, name);
  mkdirSync(dir, { recursive: true });
  const args = [fixture('service.mjs'), '--listen', String(port)].map((a) => JSON.stringify(a)).join(', ');
  writeFileSync(
    join(dir, 'stigmer.tasks.yaml'),
    ['version: 1', 'tasks:', '  web:', '    uses: process', '    with:', `      command: ${JSON.stringify(process.execPath)}`, `      args: [${args}]`, `      ports: [${port}]`, `      ready: { tcp: { host: 127.0.0.1, port: ${port} } }`, ''].join('\n'),
  );
  return dir;
}

const pidIn = (dataDir: string): { pid: number; startTime: number } => {
  const s = JSON.parse(readFileSync(join(dataDir, 'state.json'), 'utf8')) as { tasks: Record<string, { undo: { pid: number; startTime: number }[] }> };
  return s.tasks['web']!.undo[0]!;
};

test('two projects run side by side; a bare down in one stops only it; ls lists both with their files', async (t) => {
  const home = tempHome();
  const [a, b] = [project(home, 'shop', await freePort()), project(home, 'blog', await freePort())];
  t.after(async () => {
    await runCli(['down'], { home, cwd: a });
    await runCli(['down'], { home, cwd: b });
    await cleanupHome(home);
  });
  const [dirA, dirB] = [projectDataDir(join(a, 'stigmer.tasks.yaml'), home), projectDataDir(join(b, 'stigmer.tasks.yaml'), home)];
  assert.match(dirA, new RegExp(`^${home}/stacks/shop-[0-9a-f]{8}$`));

  const upA = await runCli(['up', '--output', 'plain'], { home, cwd: a });
  assert.equal(upA.code, 0, upA.stderr);
  assert.match(upA.stderr, new RegExp(`^stigmer: this stack keeps its state and logs in ${dirA}\n`));
  const again = await runCli(['up', '--output', 'plain'], { home, cwd: a });
  assert.doesNotMatch(again.stderr, /keeps its state/, 'said once, when the data dir is made');
  const upB = await runCli(['up', '-f', join(b, 'stigmer.tasks.yaml'), '--output', 'plain'], { home });
  assert.equal(upB.code, 0, upB.stderr);
  const [webA, webB] = [pidIn(dirA), pidIn(dirB)];
  assert.ok(isAlive(webA) && isAlive(webB));
  assert.equal(existsSync(join(home, 'state.json')), false, 'nothing in the shared home');

  const ls = await runCli(['ls', '--json'], { home });
  assert.equal(ls.code, 0, ls.stderr);
  const stacks = (JSON.parse(ls.stdout) as LsJson).stacks.sort((x, y) => x.name.localeCompare(y.name));
  assert.deepEqual(
    stacks.map((s) => [s.name.replace(/-[0-9a-f]{8}$/, ''), s.state, s.file, s.data_dir, s.services.map((v) => `${v.task}:${v.state}:${v.pid}`)]),
    [
      ['blog', 'running', join(b, 'stigmer.tasks.yaml'), dirB, [`web:ready:${webB.pid}`]],
      ['shop', 'running', join(a, 'stigmer.tasks.yaml'), dirA, [`web:ready:${webA.pid}`]],
    ],
  );

  // A bare down in the shop folder: the shop stops, the blog runs on.
  const down = await runCli(['down'], { home, cwd: a });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(!isAlive(webA), 'shop stopped');
  assert.ok(isAlive(webB), 'blog still running');
  const text = await runCli(['ls'], { home });
  const rows = text.stdout.trimEnd().split('\n');
  assert.match(rows[0]!, /^NAME +STATE +SERVICES +SUPERVISOR +TASKS FILE +DATA DIR$/);
  // The running stack names its supervisor (a detached up leaves one per data dir); the stopped one none.
  const supB = (JSON.parse(readFileSync(join(dirB, 'state.json'), 'utf8')) as { supervisor?: { pid: number; startTime: number } }).supervisor;
  assert.ok(supB && isAlive(supB), 'the blog has a live supervisor');
  assert.match(text.stdout, new RegExp(`\nblog-[0-9a-f]{8} +running +1/1 +${supB.pid} +${join(b, 'stigmer.tasks.yaml')} +${dirB}\n`));
  assert.match(text.stdout, new RegExp(`\nshop-[0-9a-f]{8} +stopped +0/0 +- +${join(a, 'stigmer.tasks.yaml')} +${dirA}`));

  // -f names the stack from anywhere, for every command.
  const st = await runCli(['status', '--json', '-f', join(b, 'stigmer.tasks.yaml')], { home });
  assert.equal(st.code, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as { data_dir: string }).data_dir, dirB);
  const logs = await runCli(['logs', '--file', join(b, 'stigmer.tasks.yaml'), '-n', '1'], { home });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /listening|starting|service pid/);
  const graph = await runCli(['graph', '-f', join(b, 'stigmer.tasks.yaml')], { home });
  assert.equal(graph.code, 0, graph.stderr);
  const downB = await runCli(['down', '-f', join(b, 'stigmer.tasks.yaml')], { home });
  assert.equal(downB.code, 0, downB.stderr);
  assert.ok(!isAlive(webB), 'blog stopped by down -f');
});

test('--data-dir overrides the project dir and ls still finds it; a stack from before per-project dirs is found in the home', async (t) => {
  const home = tempHome();
  const a = project(home, 'app', await freePort());
  const custom = join(home, 'elsewhere', 'my-data');
  t.after(async () => {
    await runCli(['down', '--data-dir', custom], { home, cwd: a });
    await runCli(['down'], { home, cwd: a });
    await cleanupHome(home);
  });
  const up = await runCli(['up', '--data-dir', custom, '--output', 'plain'], { home, cwd: a });
  assert.equal(up.code, 0, up.stderr);
  assert.doesNotMatch(up.stderr, /keeps its state/);
  const web = pidIn(custom);
  const ls = JSON.parse((await runCli(['ls', '--json'], { home })).stdout) as LsJson;
  assert.deepEqual(ls.stacks.map((s) => [s.name, s.data_dir, s.state]), [['my-data', custom, 'running']]);
  const down = await runCli(['down', '--data-dir', custom], { home, cwd: a });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(!isAlive(web));

  // An older stigmer kept a project's state in the home itself: `down` in the folder still finds it.
  const old = await runCli(['up', '--data-dir', home, '--output', 'plain'], { home, cwd: a });
  assert.equal(old.code, 0, old.stderr);
  const oldWeb = pidIn(home);
  const st = JSON.parse((await runCli(['status', '--json'], { home, cwd: a })).stdout) as { data_dir: string };
  assert.equal(st.data_dir, home);
  const downOld = await runCli(['down'], { home, cwd: a });
  assert.equal(downOld.code, 0, downOld.stderr);
  assert.ok(!isAlive(oldWeb));
  const none = JSON.parse((await runCli(['status', '--json'], { home, cwd: a })).stdout) as { data_dir: string };
  assert.equal(none.data_dir, projectDataDir(join(a, 'stigmer.tasks.yaml'), home), 'once stopped, the project dir again');
});

test('ls with no stacks says how to start one; a down with nothing there says where it looked', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const ls = await runCli(['ls'], { home });
  assert.equal(ls.code, 0);
  assert.equal(ls.stdout, `no stacks yet (none in ${home}); \`stigmer up\` in a project folder starts one\n`);
  assert.deepEqual(JSON.parse((await runCli(['ls', '--json'], { home })).stdout), { stacks: [] });
  const down = await runCli(['down', '-f', 'nowhere/x.yaml'], { home });
  assert.equal(down.code, 0);
  assert.match(down.stderr, new RegExp(`^stigmer: nothing to stop \\(no state in ${home}/stacks/nowhere-[0-9a-f]{8}; \`stigmer ls\` lists every stack\\)\n$`));
  const status = await runCli(['status', '-f', 'nowhere/x.yaml'], { home });
  assert.match(status.stdout, /^nothing is running \(no state in .*\/stacks\/nowhere-[0-9a-f]{8}; `stigmer ls` lists every stack\)\n$/);
  // `logs -f x.yaml` (a docker compose habit) is --follow and a task name here: said so.
  const habit = await runCli(['logs', '-f', 'x.yaml'], { home });
  assert.equal(habit.code, 2);
  assert.match(habit.stderr, /\nhint: -f is --follow for logs; name the stack with --file x\.yaml\n$/);
});
