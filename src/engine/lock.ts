/**
 * One run at a time per data dir: `run.lock` holds the pid and start time of its holder. A lock
 * whose holder is gone (or whose pid now belongs to another program) is taken over.
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError, EXIT } from '../util/errors.js';
import { describeFsError, fsExitCode } from '../util/fs-error.js';
import { readProcStat, readCmdline } from '../process/proc.js';

/** The lock file cannot be created or written (read-only or full disk, not ours): one line, path and errno. */
export class LockUnwritable extends UserError {
  constructor(path: string, err: unknown) {
    super(`stigmer: cannot take the lock ${describeFsError(err, path)}`, fsExitCode(err));
    this.name = 'LockUnwritable';
  }
}

export interface Lock {
  release(): void;
}

interface Holder {
  pid: number;
  startTime: number;
  command?: string;
}

function holderAlive(h: Holder): boolean {
  const stat = readProcStat(h.pid);
  return !!stat && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === h.startTime;
}

export function acquireLock(path: string, what: string): Lock {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new LockUnwritable(path, err);
  }
  const me: Holder = { pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0, command: what };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            const h = JSON.parse(readFileSync(path, 'utf8')) as Holder;
            if (h.pid === me.pid) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new LockUnwritable(path, err);
    }
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as Holder;
    } catch {
      holder = undefined; // half-written or corrupt: treat as stale
    }
    if (holder && holderAlive(holder)) {
      const cmd = readCmdline(holder.pid) ?? holder.command ?? '';
      throw new UserError(
        `stigmer: another stigmer run (pid ${holder.pid}${cmd ? `: ${cmd}` : ''}) is using ${dirname(path)}.\n` +
          `Wait for it to finish, or stop it (kill ${holder.pid}); use --data-dir to run a separate stack.`,
        EXIT.taskFailed,
      );
    }
    rmSync(path, { force: true }); // stale: its holder is gone
  }
  throw new UserError(`stigmer: could not take the lock ${path}`, EXIT.taskFailed);
}
