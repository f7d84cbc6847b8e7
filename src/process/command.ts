/**
 * Foreground commands (the exec kind, exec probes): run to completion in their own process group,
 * so an abort stops grandchildren too (a grandchild holding the output pipe would keep the wait
 * hanging). node's own spawn, not execa: nothing here needs more than a group, two pipes and the
 * exit, and execa cost ~20 ms to import on the first exec of a run and ~1 ms a command after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stripAnsi } from './log-file.js';
import { describeSpawnError, groupGone, groupMembers, HAS_PROC, isAlive, processIdentity, readProcStat, type ProcessIdentity } from './proc.js';
import { markEnv, newInstance } from './sweep.js';

export interface CommandSpec {
  command: string;
  args: readonly string[];
  cwd: string;
  /** the complete environment of the command */
  env: NodeJS.ProcessEnv;
  /** aborting kills the command's whole process group */
  signal?: AbortSignal;
  /** each line of stdout and stderr, ANSI stripped, as it arrives */
  onLine?(line: string, stream: 'stdout' | 'stderr'): void;
  /** SIGTERM to SIGKILL, on abort and for leftovers (default 2 s) */
  graceMs?: number;
  /** the data dir of the stack it belongs to: the command and its descendants carry its marker (sweep.ts) */
  stack?: string;
  /** called once it runs, with its identity (e.g. to record it while it is in flight) */
  onSpawn?(started: ProcessIdentity & { instance?: string }): void;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** stdout, ANSI stripped, the first 64 KiB */
  stdout: string;
  /** the last 20 lines of stdout and stderr together, ANSI stripped */
  tail: string[];
  /** the signal aborted it */
  aborted: boolean;
  /** set when the command could not be started at all */
  spawnError?: string;
}

const STDOUT_CAP = 64 * 1024;
const TAIL_LINES = 20;

/** Process groups of foreground commands still running: the second Ctrl-C kills them. */
const foreground = new Set<number>();
let exitHookInstalled = false;

/** SIGKILL every foreground command's group now (synchronous). Also runs when the CLI exits. */
export function killForegroundGroups(): void {
  for (const pgid of foreground) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  foreground.clear();
}

/**
 * Stop a group: SIGTERM now, SIGKILL after `graceMs` if one of the members seen at SIGTERM time is
 * still alive (then the group id is still this group's: it cannot have been handed out again).
 */
function terminateGroup(pgid: number, graceMs: number): void {
  if (groupGone(pgid)) return;
  const members = HAS_PROC ? groupMembers(pgid).flatMap((pid) => processIdentity(pid) ?? []) : [];
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  setTimeout(() => {
    const stillOurs = HAS_PROC ? members.some((m) => isAlive(m) && readProcStat(m.pid)?.pgid === pgid) : !groupGone(pgid);
    if (!stillOurs) return;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }, graceMs).unref();
}

function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; end(): void } {
  let carry = '';
  return {
    push(chunk) {
      const parts = (carry + chunk).split(/\r\n|\n|\r/);
      carry = parts.pop() ?? '';
      for (const p of parts) emit(p);
    },
    end() {
      if (carry) emit(carry);
      carry = '';
    },
  };
}

/**
 * Run a command to completion (no shell) in its own process group. On abort the whole group gets
 * SIGTERM, then SIGKILL after the grace period; members still running when the command itself
 * exits are stopped the same way (an exec task owns its group: nothing it leaves is tracked).
 * Never throws for the command's own failures: they are in the result.
 */
export async function runCommand(spec: CommandSpec): Promise<CommandResult> {
  const graceMs = spec.graceMs ?? 2000;
  const tail: string[] = [];
  let stdout = '';
  let aborted = false;
  const instance = spec.stack === undefined ? undefined : newInstance();
  let sub: ChildProcess;
  try {
    sub = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.stack === undefined || instance === undefined ? spec.env : markEnv(spec.env, spec.stack, instance),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
  } catch (err) {
    // arguments node refuses before spawning (a NUL byte in one)
    return { exitCode: null, signal: null, stdout: '', tail, aborted: false, spawnError: describeSpawnError(err) };
  }
  // Settles once the command exited and its output pipes closed, or when it could not start.
  const settled = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: unknown }>((res) => {
    // after a spawn, an error is a failed kill of a process that is gone: nothing to report
    sub.on('error', (error) => {
      if (sub.pid === undefined) res({ error });
    });
    sub.once('close', (code, signal) => res({ code, signal }));
  });
  const pgid = sub.pid;
  const onAbort = (): void => {
    aborted = true;
    if (pgid !== undefined) terminateGroup(pgid, graceMs);
  };
  if (pgid !== undefined) {
    if (!exitHookInstalled) {
      process.once('exit', killForegroundGroups);
      exitHookInstalled = true;
    }
    foreground.add(pgid);
    if (spec.onSpawn) {
      const id = processIdentity(pgid);
      if (id) spec.onSpawn({ ...id, ...(instance ? { instance } : {}) });
    }
    sub.once('exit', () => terminateGroup(pgid, graceMs));
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener('abort', onAbort, { once: true });
  }
  const collect = (stream: 'stdout' | 'stderr') => (line: string): void => {
    const clean = stripAnsi(line);
    tail.push(clean);
    if (tail.length > TAIL_LINES) tail.shift();
    spec.onLine?.(clean, stream);
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    const readable = sub[stream];
    if (!readable) continue;
    readable.setEncoding('utf8');
    const split = lineSplitter(collect(stream));
    readable.on('data', (chunk: string) => {
      // A little over the cap, so escape codes cut at the edge can still be stripped whole.
      if (stream === 'stdout' && stdout.length < STDOUT_CAP + 64) stdout += chunk.slice(0, STDOUT_CAP + 64 - stdout.length);
      split.push(chunk);
    });
    readable.on('end', () => split.end());
  }
  try {
    const r = await settled;
    if ('error' in r) return { exitCode: null, signal: null, stdout: '', tail, aborted: false, spawnError: describeSpawnError(r.error) };
    const out = stripAnsi(stdout).slice(0, STDOUT_CAP);
    return { exitCode: r.code, signal: r.signal, stdout: out, tail, aborted };
  } finally {
    spec.signal?.removeEventListener('abort', onAbort);
    if (pgid !== undefined) foreground.delete(pgid);
  }
}

