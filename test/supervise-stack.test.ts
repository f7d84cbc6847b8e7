/**
 * The shipped stack under supervision: `local start --foreground` restarts the stigmer-server
 * after a kill -9 (policy on-failure from stigmer.tasks.yaml), the agent-runner that needs it keeps
 * its process, and Ctrl-C still stops everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents } from '../src/supervisor/events.js';
import { isAlive } from '../src/process/proc.js';
import { assertNothingLeft, cliEnv, cliPath, sleep } from './helpers.js';
import { stackRig } from './temporal-mirror.js';

type Undo = { pid: number; pgid: number; startTime: number };

test('local start --foreground: a kill -9 of the server is restarted after its backoff; the agent-runner keeps running', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const child = spawn(process.execPath, [cliPath, 'local', 'start', '--foreground'], { cwd: r.home, env: cliEnv(r.home, r.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const undoOf = (task: string): Undo | undefined => {
    try {
      return (JSON.parse(readFileSync(join(r.home, 'state.json'), 'utf8')) as { tasks: Record<string, { undo: Undo[] }> }).tasks[task]?.undo[0];
    } catch {
      return undefined;
    }
  };
  const serverEvents = (): string => readEvents(r.home).filter((e) => e.task === 'start-server').map((e) => e.type).join(' ');
  try {
    const deadline = Date.now() + 60_000;
    while (!stderr.includes('running in the foreground') && Date.now() < deadline && child.exitCode === null) await sleep(20);
    assert.match(stderr, /running in the foreground/);
    const server = undoOf('start-server')!;
    const runner = undoOf('start-agent-runner')!;
    process.kill(server.pid, 'SIGKILL');
    while (serverEvents() !== 'exited restarting started ready' && Date.now() < deadline) await sleep(25);
    assert.equal(serverEvents(), 'exited restarting started ready', stderr);
    const evs = readEvents(r.home).filter((e) => e.task === 'start-server');
    assert.equal(evs[0]!.signal, 'SIGKILL');
    assert.deepEqual([evs[1]!.attempt, evs[1]!.max, evs[1]!.delay_ms], [1, 5, 1000], 'the shipped policy: on-failure, 1s backoff, 5 restarts');
    const again = undoOf('start-server')!;
    assert.notEqual(again.pid, server.pid);
    assert.ok(isAlive(again));
    assert.equal(evs[2]!.pid, again.pid);
    assert.equal(undoOf('start-agent-runner')!.pid, runner.pid, 'its dependent is not restarted');
    assert.ok(isAlive(runner));
    assert.equal(readEvents(r.home).filter((e) => e.task === 'start-agent-runner').length, 0);
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 130, stderr);
  await assertNothingLeft(r.home, 5000);
});
