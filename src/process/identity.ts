/**
 * Who a process is, through Linux's /proc, and whether stigmer may signal it.
 *
 * A process is identified by pid + start time (field 22 of /proc/<pid>/stat) + process group, so
 * a pid that the kernel handed to another program is never signalled. Darwin has no /proc:
 * identity degrades to the pid alone (start time 0). Linux is what is tested.
 *
 * `signalRefusal` is the one gate in front of every signal to a recorded group: the state file is
 * data anyone can write, and kill(-0) or kill(-1) would reach stigmer's own group or every process
 * the user may signal.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Linux: /proc is there. Elsewhere identity degrades to the pid alone. */
export const HAS_PROC = existsSync('/proc/self/stat');

export interface ProcStat {
  pid: number;
  /** the executable name, as the kernel keeps it (may hold spaces and ')') */
  comm: string;
  /** R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  ppid: number;
  pgid: number;
  /** clock ticks since boot when the process started */
  startTime: number;
  /** threads not yet released, the leader included */
  threads: number;
  /** CPU time used so far, user + system, in clock ticks */
  cpuTicks: number;
}

export interface ProcessIdentity {
  pid: number;
  pgid: number;
  startTime: number;
}

/** Parse the text of /proc/<pid>/stat. comm is cut at the LAST ')' since it may contain one. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // After ") " come fields 3 (state) onwards: field N is rest[N - 3].
  const rest = text.slice(close + 2).split(' ');
  const stat = {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '',
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    startTime: Number(rest[19]),
    threads: Number(rest[17]),
    cpuTicks: Number(rest[11]) + Number(rest[12]),
  };
  if (!stat.state || ![stat.pid, stat.ppid, stat.pgid, stat.startTime, stat.threads].every(Number.isInteger)) return undefined;
  return stat;
}

export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The command line of a process, arguments joined by spaces; undefined when unreadable or empty. */
export function readCmdline(pid: number): string | undefined {
  try {
    const parts = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (parts.at(-1) === '') parts.pop();
    const line = parts.join(' ').trim();
    return line || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A zombie is dead, except a thread-group leader whose other threads are still exiting: it shows
 * Z while they run, and the process's files (its listening sockets) close only when the last
 * thread is gone.
 */
export const hasExited = (stat: ProcStat): boolean => (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') && stat.threads <= 1;

export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function processIdentity(pid: number): ProcessIdentity | undefined {
  if (!HAS_PROC) return pidExists(pid) ? { pid, pgid: pid, startTime: 0 } : undefined;
  const stat = readProcStat(pid);
  return stat && !hasExited(stat) ? { pid, pgid: stat.pgid, startTime: stat.startTime } : undefined;
}

/** True when the process exists, is not a zombie, and is the one that started at `startTime`. */
export function isAlive(id: { pid: number; startTime: number }): boolean {
  if (!HAS_PROC) return pidExists(id.pid);
  const stat = readProcStat(id.pid);
  return !!stat && !hasExited(stat) && stat.startTime === id.startTime;
}

/** Every pid /proc lists right now. */
export function listPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) if (/^\d+$/.test(name)) pids.push(Number(name));
  return pids;
}

/** Live (non-zombie) pids whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  if (!HAS_PROC) return [];
  return listPids().filter((pid) => {
    const stat = readProcStat(pid);
    return !!stat && stat.pgid === pgid && !hasExited(stat);
  });
}

/**
 * stigmer itself and every process above it (up to 64 hops), by `ppidOf` (/proc by default): what
 * a sweep or a cgroup kill must never reach, such as a stigmer run by a stack's own task.
 */
export function selfAndAncestors(ppidOf: (pid: number) => number | undefined = (pid) => readProcStat(pid)?.ppid): Set<number> {
  const out = new Set<number>([process.pid]);
  for (let pid = process.ppid, hops = 0; pid > 1 && hops < 64 && !out.has(pid); hops++) {
    out.add(pid);
    pid = ppidOf(pid) ?? 0;
  }
  return out;
}

const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);

/**
 * Why stigmer must not signal the process (group) a record names, or undefined when it may.
 * Refused: a pid or pgid that is not an integer above 1 (kill(-0) is our own group, kill(-1)
 * every process we may signal), a start time that is not a non-negative integer, and stigmer's
 * own process or group or its parent's (the shell or script that ran it).
 */
export function signalRefusal(target: { pid: unknown; pgid: unknown; startTime: unknown }): string | undefined {
  const { pid, pgid, startTime } = target;
  const shown = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));
  if (!isId(pgid) || pgid <= 1) return `pgid ${shown(pgid)} is not a process group stigmer started`;
  if (!isId(pid) || pid <= 1) return `pid ${shown(pid)} is not a process stigmer started`;
  if (!isId(startTime) || startTime < 0) return `startTime ${shown(startTime)} is not a process start time`;
  const own = new Set([process.pid, process.ppid]);
  if (HAS_PROC) {
    for (const p of [process.pid, process.ppid]) {
      const g = readProcStat(p)?.pgid;
      if (g !== undefined) own.add(g);
    }
  }
  if (own.has(pgid)) return `pgid ${pgid} is stigmer's own process group or its caller's`;
  if (own.has(pid)) return `pid ${pid} is stigmer itself or its caller`;
  return undefined;
}

/** Thrown instead of sending a signal `signalRefusal` refused. */
export class SignalRefused extends Error {
  constructor(reason: string) {
    super(`${reason}; not signalled`);
    this.name = 'SignalRefused';
  }
}
