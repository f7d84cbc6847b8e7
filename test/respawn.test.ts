/**
 * A restart prepared ahead (src/process/proc.ts prepareRespawn): the supervisor starts the next
 * spawn's launcher while the old instance is stopped and the backoff runs, so its move into a
 * cgroup (an RCU grace period) is off the restart's path. The parked launcher runs nothing of the
 * service until the spawn it stands in for; one that is not used (discarded, or a spec that
 * changed) is stopped and its cgroup removed. Where no cgroup can be created nothing is prepared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupBase } from '../src/process/cgroup.js';
import { childEnv, discardRespawn, isAlive, prepareRespawn, readCmdline, spawnService, stopGroup, type ServiceSpec, type StartedService } from '../src/process/proc.js';
import { findMarked, type MarkedProcess } from '../src/process/sweep.js';
import { cleanupHome, fixture, freePort, tempHome, until } from './helpers.js';

const available = cgroupBase() !== null;

async function stop(svc: StartedService): Promise<void> {
  await stopGroup({ type: 'stop-process', pid: svc.pid, pgid: svc.pgid, startTime: svc.startTime, command: svc.commandLine, signal: 'SIGTERM', graceMs: 5000, startedAt: new Date().toISOString(), ...(svc.instance ? { instance: svc.instance } : {}) });
}

/** The cgroup directory of a stigmer instance, as /proc/<pid>/cgroup names it. */
function cgroupOf(pid: number): string | undefined {
  try {
    return /^0::(.*\/stigmer\/[0-9a-f]{12}-[0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

test('a prepared respawn: parked in its own cgroup, running nothing of the service until the spawn it stands in for; a discarded or mismatched one leaves nothing', async () => {
  const home = tempHome();
  const data = join(home, 'data');
  mkdirSync(join(data, 'logs'), { recursive: true });
  const logFile = join(data, 'logs', 'svc.log');
  const port = await freePort();
  const spec = (extra: string[] = []): ServiceSpec => ({
    command: process.execPath,
    args: [fixture('service.mjs'), '--listen', String(port), '--print-env', 'STIGMER_INSTANCE', ...extra],
    cwd: home,
    env: childEnv({ STIGMER_HOME: home }),
    logFile,
    stack: data,
    capture: { maxSize: 10 << 20, keep: 1 },
  });
  const started: StartedService[] = [];
  const parkedOne = (): MarkedProcess | undefined => findMarked(data).find((p) => !started.some((s) => s.pid === p.pid && isAlive(s)));
  const log = (): string => readFileSync(logFile, 'utf8');
  try {
    // Nothing to prepare from before a first spawn.
    prepareRespawn(logFile);
    assert.equal(findMarked(data).length, 0, 'no spec known yet: nothing parked');

    const first = await spawnService(spec());
    started.push(first);
    await until('the first instance printed its instance', () => log().includes(`STIGMER_INSTANCE=${first.instance}`));
    await stop(first);

    prepareRespawn(logFile);
    if (!available) {
      assert.equal(parkedOne(), undefined, 'no cgroups here: nothing is parked (no move to take off the path)');
      const second = await spawnService(spec());
      started.push(second);
      await until('the second instance printed its instance', () => log().includes(`STIGMER_INSTANCE=${second.instance}`));
      assert.notEqual(second.instance, first.instance);
      return;
    }
    const parked = await until('the parked launcher', parkedOne);
    assert.notEqual(parked.instance, first.instance, 'a new instance of its own');
    await until('the launcher moved into its cgroup', () => cgroupOf(parked.pid)?.endsWith(`-${parked.instance}`));
    assert.match(readCmdline(parked.pid) ?? '', /^\/bin\/sh -c /, 'the launcher, not the service, while parked');
    assert.equal(log().split(`STIGMER_INSTANCE=`).length - 1, 1, 'nothing of the service ran while parked');

    const second = await spawnService(spec());
    started.push(second);
    assert.equal(second.pid, parked.pid, 'the spawn is the parked launcher');
    assert.equal(second.instance, parked.instance);
    await until('the second instance printed its instance', () => log().includes(`STIGMER_INSTANCE=${second.instance}`));
    assert.ok(cgroupOf(second.pid)?.endsWith(`-${second.instance}`), 'the service runs in the cgroup of its instance');
    const cgroupDir = join(cgroupBase()!, '..', cgroupOf(second.pid)!.split('/').slice(-2).join('/'));
    await stop(second);
    assert.ok(!existsSync(cgroupDir), 'its emptied cgroup is removed once stopped');

    // Discarded: the launcher is stopped and its cgroup removed.
    prepareRespawn(logFile);
    const unused = await until('another parked launcher', parkedOne);
    await until('it moved into its cgroup', () => cgroupOf(unused.pid));
    const unusedDir = join(cgroupBase()!, '..', cgroupOf(unused.pid)!.split('/').slice(-2).join('/'));
    await discardRespawn(logFile);
    assert.ok(!isAlive(unused), 'the discarded launcher is gone');
    assert.ok(!existsSync(unusedDir), 'its cgroup is removed');

    // A spawn whose spec changed does not use the parked one: it is stopped, the spawn is fresh.
    prepareRespawn(logFile);
    const stale = await until('a third parked launcher', parkedOne);
    const third = await spawnService(spec(['--lines', '1']));
    started.push(third);
    assert.notEqual(third.pid, stale.pid, 'a changed spec spawns afresh');
    assert.ok(!isAlive(stale), 'the mismatched launcher is stopped');
    await until('the third instance printed its instance', () => log().includes(`STIGMER_INSTANCE=${third.instance}`));
  } finally {
    await discardRespawn(logFile);
    for (const s of started) if (isAlive(s)) await stop(s);
    await cleanupHome(home);
  }
});
