/**
 * One stigmer-server per store: the engine's file lock (engine/lock.ts `takeFileLock`, taken
 * synchronously): a lock left by a dead server, or by a pid since reused by another program, is
 * taken over instead of blocking the next start.
 */
import { LockHeld, takeFileLock } from '../../engine/lock.js';

export class StoreLockedError extends Error {
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`the store is in use by another stigmer-server (pid ${pid}); stop it first, or give this one another STIGMER_DATA_DIR`);
    this.name = 'StoreLockedError';
  }
}

/** Take the lock or throw StoreLockedError; returns the function that releases it. */
export function acquireLock(file: string): () => void {
  try {
    return takeFileLock(file, 'stigmer-server');
  } catch (err) {
    if (err instanceof LockHeld) throw new StoreLockedError(file, err.holder?.pid ?? 0);
    throw err;
  }
}
