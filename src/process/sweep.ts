/**
 * The stack marker and the sweep: nothing a stack started escapes `down`.
 *
 * Every process a stack starts (services, exec one-shots, exec probes) carries two variables in
 * its environment, inherited by every descendant, double-forked or `setsid` ones included:
 *   STIGMER_STACK=<absolute data dir>   which stack it belongs to
 *   STIGMER_INSTANCE=<random id>        which spawn it came from (recorded in its undo step)
 * A sweep reads /proc/<pid>/environ of every process this user can see and stops the ones that
 * carry a stack's marker: after `down` undid the records (what is left escaped its group), before
 * `up` runs (what a killed run never recorded), and after one instance is stopped (its escapees).
 *
 * Identity is checked before every signal (pid + start time), and the signal gate of identity.ts
 * applies. Limits: a process that rewrites or clears its environment (`env -i`) is not found
 * (cgroup.ts covers it where cgroups work); without /proc (macOS) there is no sweep.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HAS_PROC, hasExited, isAlive, listPids, readCmdline, readProcStat, selfAndAncestors, signalRefusal, type ProcessIdentity } from './identity.js';

export const STACK_VAR = 'STIGMER_STACK';
export const INSTANCE_VAR = 'STIGMER_INSTANCE';

/** What a stack's processes carry to say which stack they belong to: its data dir, absolute. */
export const stackId = (dataDir: string): string => resolve(dataDir);

/** A fresh id for one spawn. */
export const newInstance = (): string => randomBytes(6).toString('hex');

/** `env` with the stack's marker (and the spawn's instance) set, over anything the task said. */
export function markEnv(env: NodeJS.ProcessEnv, dataDir: string, instance: string): NodeJS.ProcessEnv {
  return { ...env, [STACK_VAR]: stackId(dataDir), [INSTANCE_VAR]: instance };
}

export interface MarkedProcess extends ProcessIdentity {
  /** the spawn it came from, if it says */
  instance?: string;
  command: string;
}

function environOf(pid: number): string | undefined {
  try {
    return '\0' + readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined; // another user's, or gone
  }
}

/** Live processes carrying this stack's marker (and `instance`, when given), stigmer's own line excluded. */
export function findMarked(dataDir: string, instance?: string): MarkedProcess[] {
  if (!HAS_PROC) return [];
  // latin1 keeps bytes as they are: a non-ASCII data dir still matches byte for byte.
  const stackNeedle = `\0${STACK_VAR}=${Buffer.from(stackId(dataDir)).toString('latin1')}\0`;
  const skip = selfAndAncestors(); // a stigmer run by a stack's own task never sweeps itself
  const found: MarkedProcess[] = [];
  for (const pid of listPids()) {
    if (skip.has(pid)) continue;
    const environ = environOf(pid);
    if (!environ || !environ.includes(stackNeedle)) continue;
    const at = environ.indexOf(`\0${INSTANCE_VAR}=`);
    const end = at < 0 ? -1 : environ.indexOf('\0', at + 1);
    const own = at < 0 ? undefined : environ.slice(at + INSTANCE_VAR.length + 2, end < 0 ? undefined : end);
    if (instance !== undefined && own !== instance) continue;
    const stat = readProcStat(pid);
    if (!stat || hasExited(stat)) continue;
    found.push({ pid, pgid: stat.pgid, startTime: stat.startTime, ...(own ? { instance: own } : {}), command: readCmdline(pid) ?? stat.comm });
  }
  return found;
}

function signal(p: MarkedProcess, sig: NodeJS.Signals): void {
  // Identity first: the pid may have been handed to another program since the scan.
  if (signalRefusal(p) || !isAlive(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // gone meanwhile, or not ours to signal
  }
}

export interface SweepResult {
  /** exited after the polite signal */
  stopped: MarkedProcess[];
  /** needed SIGKILL */
  killed: MarkedProcess[];
  /** still alive after SIGKILL (another user's, or unkillable) */
  survived: MarkedProcess[];
}

/**
 * Stop these processes one by one (not by group: an escapee's group may hold others): `signal`
 * to each, up to `graceMs` for all to exit, SIGKILL to the rest, up to 5 s more.
 */
export async function stopProcesses(procs: readonly MarkedProcess[], opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<SweepResult> {
  const result: SweepResult = { stopped: [], killed: [], survived: [] };
  if (procs.length === 0) return result;
  const living = (): MarkedProcess[] => procs.filter((p) => isAlive(p));
  const waitGone = async (ms: number): Promise<MarkedProcess[]> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = living();
      if (left.length === 0 || Date.now() >= deadline) return left;
      await sleep(20);
    }
  };
  for (const p of procs) signal(p, opts.signal ?? 'SIGTERM');
  const stubborn = await waitGone(opts.graceMs ?? 3000);
  result.stopped = procs.filter((p) => !stubborn.includes(p));
  for (const p of stubborn) signal(p, 'SIGKILL');
  result.survived = await waitGone(5000);
  result.killed = stubborn.filter((p) => !result.survived.includes(p));
  return result;
}

/** Find and stop every process of the stack (or of one instance) that `keep` does not claim. */
export async function sweep(
  dataDir: string,
  opts: { instance?: string; keep?: (p: MarkedProcess) => boolean; signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<SweepResult & { found: MarkedProcess[] }> {
  const found = findMarked(dataDir, opts.instance).filter((p) => !opts.keep?.(p));
  return { found, ...(await stopProcesses(found, opts)) };
}
