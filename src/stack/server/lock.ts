/**
 * One stigmer-server per store: a lock file holding the owner's pid and process start time
 * (from /proc), so a lock left by a dead server, or by a pid since reused by another program, is
 * taken over instead of blocking the next start.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { readProcStat } from '../../process/identity.js';

export class StoreLockedError extends Error {
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`the store is in use by another stigmer-server (pid ${pid}); stop it first, or give this one another STIGMER_DATA_DIR`);
    this.name = 'StoreLockedError';
  }
}

/** The start time of a process in clock ticks since boot, or undefined when it is gone or a zombie. */
export function processStartTime(pid: number): string | undefined {
  const stat = readProcStat(pid);
  return !stat || stat.state === 'Z' || stat.state === 'X' ? undefined : String(stat.startTime);
}

interface LockContent {
  pid: number;
  start: string | null;
}

function readLock(file: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid !== 'number') return undefined;
    return { pid: parsed.pid, start: typeof parsed.start === 'string' ? parsed.start : null };
  } catch {
    return undefined;
  }
}

/** Take the lock or throw StoreLockedError; returns the function that releases it. */
export function acquireLock(file: string): () => void {
  const mine: LockContent = { pid: process.pid, start: processStartTime(process.pid) ?? null };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(mine));
      } finally {
        closeSync(fd);
      }
      return () => {
        const held = readLock(file);
        if (held?.pid === mine.pid) {
          try {
            unlinkSync(file);
          } catch {
            // already gone
          }
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    if (holder && holder.pid !== process.pid) {
      const start = processStartTime(holder.pid);
      // Alive, and the same process that wrote the lock (not a reused pid): refuse.
      if (start !== undefined && (holder.start === null || holder.start === start)) throw new StoreLockedError(file, holder.pid);
    }
    // Stale (dead owner, reused pid, unreadable or half-written lock): take it over.
    try {
      unlinkSync(file);
    } catch {
      // someone else removed it; try again
    }
  }
  const holder = readLock(file);
  throw new StoreLockedError(file, holder?.pid ?? 0);
}
