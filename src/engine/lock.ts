/**
 * One run at a time per data dir, for real: `run.lock` is held with flock(2), a kernel lock that
 * dies with its holder, so there is no check-then-act window and no stale lock to take over.
 *
 * Node has no flock, and the npm bindings need a native build, so a tiny helper holds it: a shell
 * (util-linux `flock` on its descriptor 3) that stays alive reading its stdin, a pipe from this
 * process. When stigmer exits, even by kill -9, the pipe closes, the helper exits and the kernel
 * drops the lock. The helper runs in its own process group (a Ctrl-C must not release the lock
 * while the undo is still running) and without the stack marker (a sweep must never take it).
 *
 * Protocol: lock the descriptor, then check that the path still names the locked file (a holder
 * removes the file before it unlocks; a waiter that locked the removed file retries; checked from
 * node through /proc/<helper>/fd/3, where the shell needed two `stat` programs), then write
 * the holder (pid, start time, command) into it, for messages only. A lock file naming a live
 * holder that does not hold the flock is an older stigmer's: it is respected, never taken over.
 *
 * Without util-linux flock (macOS) the file is created atomically with link(2) from a complete
 * temp file (never empty); a holder that is gone is taken over; an empty file is retried. That
 * fallback is weaker (documented in the README). It is also the lock of stigmer-server's store
 * (`takeFileLock`), which must be taken synchronously and without a helper process.
 */
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError, EXIT } from '../util/errors.js';
import { describeFsError, fsExitCode } from '../util/fs-error.js';
import { readProcStat, readCmdline, hasExited, isAlive } from '../process/identity.js';
import { INSTANCE_VAR, STACK_VAR } from '../process/sweep.js';

/** The lock file cannot be created or written (read-only or full disk, not ours): one line, path and errno. */
export class LockUnwritable extends UserError {
  constructor(path: string, err: unknown) {
    super(`stigmer: cannot take the lock ${describeFsError(err, path)}`, fsExitCode(err));
    this.name = 'LockUnwritable';
  }
}

export interface Lock {
  /** synchronous: also called from the second Ctrl-C */
  release(): void;
  /** settles once the helper holding it exited (after `release`); a process leaving for good awaits it */
  readonly gone: Promise<void>;
}

/** Who holds a lock, as its file says (for messages, and to tell a stale lock). */
export interface Holder {
  pid: number;
  startTime: number;
  command?: string;
}

/** The lock is held by another live process (`holder`, when its file could be read). */
export class LockHeld extends Error {
  constructor(
    readonly path: string,
    readonly holder: Holder | undefined,
  ) {
    super(`${path} is held${holder ? ` by pid ${holder.pid}` : ''}`);
    this.name = 'LockHeld';
  }
}

const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((p) => existsSync(p));
/** Test hook: a delay (ms) between taking the lock and writing the holder, the window races used to hit. */
const DELAY_MS = Number(process.env['STIGMER_FAULT_LOCK_DELAY_MS'] ?? 0);
const BUSY = 75;

function readHolder(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder> & { start?: unknown };
    // An older stigmer-server wrote its start time as a string, `start`.
    const startTime = typeof h.startTime === 'number' ? h.startTime : typeof h.start === 'string' ? Number(h.start) : undefined;
    return typeof h.pid === 'number' && startTime !== undefined ? { ...h, pid: h.pid, startTime } : undefined;
  } catch {
    return undefined; // empty (being written) or not ours
  }
}

/** Who holds the lock at `path`, as its file says, while that process is alive. */
export function liveHolder(path: string): Holder | undefined {
  const h = readHolder(path);
  return h && isAlive(h) ? h : undefined;
}

/** What the supervisor daemon writes as its command in the lock it holds while it runs a stack. */
export const SUPERVISOR_HOLDER = 'stigmer supervisor';

const me = (what: string): Holder => ({ pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0, command: what });

/** The refusal of a run while `holder` (when known) holds the lock at `path`. */
export function lockBusy(path: string, holder: Holder | undefined): UserError {
  if (holder?.command === SUPERVISOR_HOLDER) {
    // The stack's supervisor is its one writer while it runs: a command that did not go through it is refused.
    return new UserError(
      `stigmer: the supervisor of this stack (pid ${holder.pid}) runs ${dirname(path)}, and only it may change the stack while it runs.\n` +
        '`stigmer up`, `run`, `restart` and `down` go through it (it was busy or could not be reached: run the command again); ' +
        '`up --foreground` attaches to it; `stigmer logs -f` and `stigmer events` follow it.',
      EXIT.taskFailed,
    );
  }
  const who = holder ? `pid ${holder.pid}${(readCmdline(holder.pid) ?? holder.command) ? `: ${readCmdline(holder.pid) ?? holder.command}` : ''}` : 'its holder is starting';
  return new UserError(
    `stigmer: another stigmer run (${who}) is using ${dirname(path)}.\n` +
      `Wait for it to finish${holder ? `, or stop it (kill ${holder.pid})` : ''}; use --data-dir to run a separate stack.`,
    EXIT.taskFailed,
  );
}

export async function acquireLock(path: string, what: string): Promise<Lock> {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new LockUnwritable(path, err);
  }
  if (FLOCK) return kernelLock(path, me(what), FLOCK);
  try {
    return onceOnly(takeFileLock(path, what));
  } catch (err) {
    if (err instanceof LockHeld) throw lockBusy(path, err.holder);
    throw new LockUnwritable(path, err);
  }
}

/**
 * The helper: exit 75 when another process holds the lock; `locked` once it holds it (whether the
 * path still names the locked file is checked from here, see `stillNamed`: two `stat` programs
 * fewer to start on every lock).
 */
function lockHelper(path: string, flock: string): ChildProcess {
  const script = `exec 3>>"$1" || exit 1; "$2" -n -E ${BUSY} 3 || exit $?; echo locked; exec cat >/dev/null`;
  const env = { ...process.env };
  delete env[STACK_VAR];
  delete env[INSTANCE_VAR];
  return spawn('/bin/sh', ['-c', script, 'stigmer-lock', path, flock], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
}

async function kernelLock(path: string, me: Holder, flock: string): Promise<Lock> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const helper = lockHelper(path, flock);
    let stderr = '';
    helper.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const outcome = await new Promise<'locked' | number>((resolve) => {
      helper.stdout!.once('data', () => resolve('locked'));
      helper.once('exit', (code) => resolve(code ?? 1));
      helper.once('error', () => resolve(1));
    });
    if (outcome === BUSY) {
      const holder = readHolder(path);
      throw lockBusy(path, holder && isAlive(holder) ? holder : undefined);
    }
    if (outcome === 'locked' && !stillNamed(path, helper.pid)) {
      // The holder before us removed the file while we waited: we locked a file nobody else will.
      helper.kill('SIGKILL');
      awaitGone(helper.pid);
      continue;
    }
    if (outcome !== 'locked') {
      // The shell could not open the file: a read-only or full data dir, or not ours.
      try {
        closeSync(openSync(path, 'a', 0o600));
      } catch (err) {
        throw new LockUnwritable(path, err);
      }
      throw new UserError(`stigmer: cannot take the lock ${path}: ${stderr.trim() || `the lock helper exited with ${outcome}`}`, EXIT.taskFailed);
    }
    const exited = new Promise<void>((res) => helper.once('exit', () => res()));
    // Held. The helper must not keep this process alive, and dies when it exits.
    helper.stdout!.destroy();
    helper.stderr!.destroy();
    (helper.stdin as unknown as { unref?: () => void })?.unref?.();
    helper.unref();
    const release = (): void => {
      // Remove the file while still holding it: a waiter that then locks it sees it moved.
      rmSync(path, { force: true });
      helper.kill('SIGKILL');
      awaitGone(helper.pid);
    };
    const previous = readHolder(path);
    if (previous && previous.pid !== me.pid && isAlive(previous)) {
      // An older stigmer holding the lock without flock: respect it.
      helper.kill('SIGKILL');
      throw lockBusy(path, previous);
    }
    if (DELAY_MS > 0) await sleep(DELAY_MS);
    try {
      writeFileSync(path, JSON.stringify(me), { mode: 0o600 });
    } catch (err) {
      release();
      throw new LockUnwritable(path, err);
    }
    return onceOnly(release, exited);
  }
  throw new UserError(`stigmer: could not take the lock ${path}: it kept being replaced`, EXIT.taskFailed);
}

/** The helper's descriptor 3 (the file it locked) is the file `path` names now (same device and inode). */
function stillNamed(path: string, pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const [held, named] = [statSync(`/proc/${pid}/fd/3`), statSync(path)];
    return held.dev === named.dev && held.ino === named.ino;
  } catch {
    return false; // the path is gone (removed by its last holder), or the helper is
  }
}

/**
 * Wait (bounded, synchronously: release runs from the second Ctrl-C too) until the killed helper
 * is dead, so nothing of this run outlives the command that took the lock, not even for the few
 * milliseconds the kernel takes to deliver the SIGKILL on a busy machine.
 */
function awaitGone(pid: number | undefined): void {
  if (!pid) return;
  const tick = new Int32Array(new SharedArrayBuffer(4));
  // Looked at every 0.1 ms (a read of one small /proc file), 5000 times at most (>= 0.5 s): a
  // helper killed with SIGKILL is gone in well under 1 ms, and every release waited a whole 1 ms.
  for (let i = 0; i < 5000; i++) {
    const stat = readProcStat(pid);
    if (!stat || hasExited(stat)) return;
    Atomics.wait(tick, 0, 0, 0.1);
  }
}

function onceOnly(release: () => void, gone: Promise<void> = Promise.resolve()): Lock {
  let released = false;
  return {
    gone,
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}

/**
 * The lock without flock(1), taken synchronously: atomic create by link(2) from a complete temp
 * file, so it is never seen empty. A holder that is gone (or is this very process: a store opened
 * again after a simulated crash) is taken over; a file that cannot be read yet is retried, never
 * taken over. Returns the release; throws LockHeld, or the fs error when the file cannot be made.
 */
export function takeFileLock(path: string, what: string): () => void {
  const mine = me(what);
  const tmp = `${path}.${process.pid}`;
  const pause = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(mine));
    } finally {
      closeSync(fd);
    }
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        if (DELAY_MS > 0) pause(DELAY_MS);
        linkSync(tmp, path);
        return () => {
          if (readHolder(path)?.pid === mine.pid) rmSync(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(path);
      if (holder && holder.pid !== mine.pid && isAlive(holder)) throw new LockHeld(path, holder);
      if (!holder) {
        // Empty or unreadable: someone may be writing it. Retry, never take it over.
        pause(20);
        continue;
      }
      rmSync(path, { force: true }); // its holder is gone
    }
    throw new LockHeld(path, undefined);
  } finally {
    rmSync(tmp, { force: true });
  }
}
