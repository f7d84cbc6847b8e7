import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskRecord } from '../src/model/kind.js';
import { clearSecrets, registerSecret } from '../src/util/mask.js';
import execKind, { type ExecWith } from '../tasks/exec.js';
import { failureOf, makeContext } from './kind-context.js';
import { cleanupHome, fixture, processesWithHome, sleep, tempHome, until as pollUntil } from './helpers.js';

const node = process.execPath;
const service = fixture('service.mjs');

const until = (what: string, check: () => boolean, ms = 10_000): Promise<true> => pollUntil(what, check, ms);

test('exec runs a command to completion: outputs, log without ANSI, env and cwd', async () => {
  const home = tempHome();
  try {
    mkdirSync(join(home, 'sub'));
    const script = "console.log('\\x1b[31mred\\x1b[0m'); console.log(process.cwd()); console.log(process.env.A + ' ' + process.env.B)";
    const { ctx, lines, undos } = makeContext<ExecWith>(home, { command: node, args: ['-e', script], cwd: 'sub', env: { A: 1 } }, { env: { B: 'from-task' } });
    const result = await execKind.run(ctx);
    assert.deepEqual(result.outputs, { exit_code: 0, stdout: `red\n${join(home, 'sub')}\n1 from-task` });
    assert.equal(result.undo, undefined);
    assert.deepEqual(undos, []);
    assert.deepEqual(lines, ['red', join(home, 'sub'), '1 from-task']);
    const log = readFileSync(ctx.logFile, 'utf8').split('\n');
    assert.match(log[0]!, /^--- \d{4}-\d\d-\d\dT[\d:.]+Z running \S+ -e 'console\.log/);
    assert.deepEqual(log.slice(1), ['red', join(home, 'sub'), '1 from-task', '']);
  } finally {
    await cleanupHome(home);
  }
});

test('a non-zero exit fails with the command, its code and the last lines of output', async () => {
  const home = tempHome();
  try {
    const args = [service, '--lines', '25', '--exit-after', '0', '--code', '3'];
    const { ctx } = makeContext<ExecWith>(home, { command: node, args });
    const err = await failureOf(execKind.run(ctx));
    assert.equal(err.failure.reason, 'exit-non-zero');
    assert.equal(err.message, `${node} ${args.join(' ')} exited with code 3`);
    assert.equal(err.failure.exitCode, 3);
    assert.equal(err.failure.logFile, ctx.logFile);
    const tail = err.failure.logTail!;
    assert.equal(tail.length, 20);
    assert.ok(tail.includes('exiting with code 3'));
    assert.ok(tail.includes('line 25') && !tail.includes('line 5'), tail.join('\n'));
  } finally {
    await cleanupHome(home);
  }
});

test('a command killed by a signal says so', async () => {
  const home = tempHome();
  try {
    const { ctx } = makeContext<ExecWith>(home, { command: node, args: ['-e', "process.kill(process.pid, 'SIGKILL')"] });
    const err = await failureOf(execKind.run(ctx));
    assert.equal(err.message, `${node} -e 'process.kill(process.pid, '\\''SIGKILL'\\'')' was killed by SIGKILL`);
    assert.ok(err.failure.reason === 'exit-non-zero');
    assert.equal(err.failure.exitCode, null);
  } finally {
    await cleanupHome(home);
  }
});

test('a command that cannot be started fails with spawn-failed', async () => {
  const home = tempHome();
  try {
    const { ctx } = makeContext<ExecWith>(home, { command: 'stigmer-test-no-such-command', args: ['x'] });
    const err = await failureOf(execKind.run(ctx));
    assert.equal(err.failure.reason, 'spawn-failed');
    assert.equal(err.message, 'could not start stigmer-test-no-such-command x: not found (ENOENT)');
    const missing = makeContext<ExecWith>(home, { command: node, cwd: 'nowhere' });
    assert.equal((await failureOf(execKind.run(missing.ctx))).message, `could not start ${node}: working directory ${join(home, 'nowhere')} does not exist`);
  } finally {
    await cleanupHome(home);
  }
});

test('an abort stops the command and its grandchild', async () => {
  const home = tempHome();
  try {
    const { ctx, lines, abort } = makeContext<ExecWith>(home, { command: node, args: [service, '--child'] });
    const running = execKind.run(ctx);
    await until('the command to start', () => lines.some((l) => l.startsWith('service pid=')) && processesWithHome(home).length === 2);
    abort.abort('interrupted by SIGINT');
    const err = await failureOf(running);
    assert.equal(err.failure.reason, 'aborted');
    assert.equal(err.message, 'aborted: interrupted by SIGINT');
    assert.deepEqual(processesWithHome(home), []);
  } finally {
    await cleanupHome(home);
  }
});

test('an abort kills a command that ignores SIGTERM after a short grace', async () => {
  const home = tempHome();
  try {
    const { ctx, lines, abort } = makeContext<ExecWith>(home, { command: node, args: [service, '--ignore-term', '--child'] });
    const running = execKind.run(ctx);
    await until('the command to start', () => lines.some((l) => l.startsWith('service pid=')) && processesWithHome(home).length === 2);
    abort.abort();
    const err = await failureOf(running);
    assert.equal(err.message, 'aborted: the run was interrupted');
    assert.ok(lines.includes('ignoring SIGTERM'));
  } finally {
    await cleanupHome(home);
  }
});

test('what a finished command leaves in its process group is stopped', async () => {
  const home = tempHome();
  try {
    const script = "require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }).unref(); console.log('parent done')";
    const { ctx } = makeContext<ExecWith>(home, { command: node, args: ['-e', script] });
    assert.deepEqual((await execKind.run(ctx)).outputs, { exit_code: 0, stdout: 'parent done' });
  } finally {
    await cleanupHome(home);
  }
});

test('exec is satisfied by a previous successful run of the same spec, unless forced', async () => {
  const home = tempHome();
  try {
    const previous: TaskRecord = { kind: 'exec', status: 'done', specHash: 'spec-1', outputs: { exit_code: 0, stdout: 'earlier' }, undo: [] };
    const w: ExecWith = { command: node, args: ['-e', "console.log('now')"] };
    const same = await execKind.run(makeContext(home, w, { previous }).ctx);
    assert.deepEqual(same, { satisfied: true, outputs: { exit_code: 0, stdout: 'earlier' }, summary: 'already done' });
    const changed = await execKind.run(makeContext(home, w, { previous, specHash: 'spec-2' }).ctx);
    assert.deepEqual(changed.outputs, { exit_code: 0, stdout: 'now' });
    const forced = await execKind.run(makeContext(home, w, { previous, force: true }).ctx);
    assert.deepEqual(forced.outputs, { exit_code: 0, stdout: 'now' });
    const failedBefore = await execKind.run(makeContext(home, w, { previous: { ...previous, status: 'failed' } }).ctx);
    assert.notEqual(failedBefore.satisfied, true);
  } finally {
    await cleanupHome(home);
  }
});

test('secret values are masked in the log and the output lines', async () => {
  const home = tempHome();
  try {
    registerSecret('sk-test-0123456789');
    const { ctx, lines } = makeContext<ExecWith>(home, { command: node, args: ['-e', 'console.log("key=" + process.env.KEY)'], env: { KEY: 'sk-test-0123456789' } });
    await execKind.run(ctx);
    assert.deepEqual(lines, ['key=********']);
    assert.ok(!readFileSync(ctx.logFile, 'utf8').includes('sk-test-0123456789'));
  } finally {
    clearSecrets();
    await cleanupHome(home);
  }
});
