/**
 * The lock file without flock(1) (engine/lock.ts `takeFileLock`): the run lock's fallback on
 * macOS, and stigmer-server's store lock everywhere. A live holder is refused (named), a dead one
 * or a pid since reused is taken over, a lock this very process left is taken over, an older
 * server's lock (`start` as a string) is read, and a release removes only its own lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LockHeld, takeFileLock } from '../src/engine/lock.js';
import { readProcStat } from '../src/process/identity.js';
import { tempHome, until } from './helpers.js';

async function withOther(fn: (other: { pid: number; startTime: number }, dir: string) => void | Promise<void>): Promise<void> {
  const dir = tempHome('stigmer-file-lock-');
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const stat = await until('the other process', () => readProcStat(child.pid!));
    await fn({ pid: child.pid!, startTime: stat.startTime }, dir);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pid a refusal names; fails when the lock was taken. */
const heldBy = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof LockHeld) return err.holder?.pid;
    throw err;
  }
  assert.fail('the lock was taken');
};

test('a free lock is taken with its holder written, and released by its holder only', () => {
  const dir = tempHome('stigmer-file-lock-');
  try {
    const file = join(dir, 'x.lock');
    const release = takeFileLock(file, 'test');
    const holder = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; startTime: number; command: string };
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.startTime, readProcStat(process.pid)!.startTime);
    assert.equal(holder.command, 'test');
    release();
    assert.equal(existsSync(file), false);
    // A release after another took it over leaves the other's lock alone.
    const late = takeFileLock(file, 'test');
    writeFileSync(file, JSON.stringify({ pid: 1, startTime: 0 }));
    late();
    assert.equal(existsSync(file), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a live holder is refused and named; a dead one, a reused pid and this process are taken over', async () => {
  await withOther((other, dir) => {
    const file = join(dir, 'x.lock');
    writeFileSync(file, JSON.stringify({ pid: other.pid, startTime: other.startTime, command: 'other' }));
    assert.equal(heldBy(() => takeFileLock(file, 'test')), other.pid);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, other.pid, 'the holder\'s lock is kept');

    writeFileSync(file, JSON.stringify({ pid: other.pid, startTime: other.startTime + 1 })); // the pid was reused
    takeFileLock(file, 'test')();

    writeFileSync(file, JSON.stringify({ pid: 2 ** 22 + 7, startTime: 1 })); // gone
    takeFileLock(file, 'test')();

    writeFileSync(file, JSON.stringify({ pid: process.pid, startTime: readProcStat(process.pid)!.startTime }));
    const release = takeFileLock(file, 'test'); // a store reopened after a simulated crash
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
    release();
  });
});

test("an older stigmer-server's lock (start time as a string) is read: its live holder is refused", async () => {
  await withOther((other, dir) => {
    const file = join(dir, 'server.lock');
    writeFileSync(file, JSON.stringify({ pid: other.pid, start: String(other.startTime) }));
    assert.equal(heldBy(() => takeFileLock(file, 'test')), other.pid);
  });
});

test('a lock file that cannot be read yet is retried, never taken over', async () => {
  await withOther((_other, dir) => {
    const file = join(dir, 'x.lock');
    writeFileSync(file, '');
    assert.throws(() => takeFileLock(file, 'test'), (err) => err instanceof LockHeld && err.holder === undefined, 'refused, with no holder to name');
    assert.equal(readFileSync(file, 'utf8'), '', 'the file was left alone');
  });
});
