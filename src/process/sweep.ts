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
 * Without /proc (macOS) the environments come from `ps -E` instead (see EnvironSource): weaker, as
 * ps prints the words joined by spaces, and identity there is the pid alone.
 *
 * Identity is checked before every signal (pid + start time), and the signal gate of identity.ts
 * applies. Limits: a process that rewrites or clears its environment (`env -i`) is not found
 * (cgroup.ts covers it where cgroups work).
 */
import { execFileSync } from 'node:child_process';
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

/**
 * Where the sweep learns the environments: `proc` reads /proc/<pid>/environ (Linux, exact: the
 * variables as the kernel keeps them); `ps` asks `ps` to print each process's environment after
 * its command (macOS `ps -E`, procps `ps e`), the fallback without /proc.
 */
export type EnvironSource = 'proc' | 'ps';

/** The source a sweep uses here: /proc where it exists, else `ps`. */
export const defaultSource = (): EnvironSource => (HAS_PROC ? 'proc' : 'ps');

/** What a source found: the processes carrying the stack's marker, and the parent of any pid it saw. */
interface Candidates {
  marked: MarkedProcess[];
  ppidOf: (pid: number) => number | undefined;
}

function fromProc(stack: string, bornSince?: number): Candidates {
  // latin1 keeps bytes as they are: a non-ASCII data dir still matches byte for byte.
  const needle = `\0${STACK_VAR}=${Buffer.from(stack).toString('latin1')}\0`;
  // Searched for in the bytes first: most processes do not carry it, and decoding every
  // environment to a string cost more than the search (only a match is decoded).
  const bytes = Buffer.from(needle.slice(1), 'latin1');
  const marked: MarkedProcess[] = [];
  for (const pid of listPids()) {
    // Older than the instance's first process: not one of its descendants. Its stat is cheaper to
    // read than its environment (that read waits on the target's memory map lock: slow on a busy process).
    if (bornSince !== undefined && (readProcStat(pid)?.startTime ?? 0) < bornSince) continue;
    let raw: Buffer;
    try {
      raw = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // another user's, or gone
    }
    // (the first variable has no NUL before it: a hit must start the environment or follow a NUL)
    let hit = raw.indexOf(bytes);
    while (hit > 0 && raw[hit - 1] !== 0) hit = raw.indexOf(bytes, hit + 1);
    if (hit < 0) continue;
    const environ = '\0' + raw.toString('latin1');
    if (!environ.includes(needle)) continue;
    const at = environ.indexOf(`\0${INSTANCE_VAR}=`);
    const end = at < 0 ? -1 : environ.indexOf('\0', at + 1);
    const own = at < 0 ? undefined : environ.slice(at + INSTANCE_VAR.length + 2, end < 0 ? undefined : end);
    const stat = readProcStat(pid);
    if (!stat || hasExited(stat)) continue;
    marked.push({ pid, pgid: stat.pgid, startTime: stat.startTime, ...(own ? { instance: own } : {}), command: readCmdline(pid) ?? stat.comm });
  }
  return { marked, ppidOf: (pid) => readProcStat(pid)?.ppid };
}

/** The arguments that make this platform's `ps` print pid, ppid, pgid, then command and environment. */
export function psEnvironArgs(platform: NodeJS.Platform = process.platform): string[] {
  // macOS (BSD ps): -E appends the environment; procps (Linux) spells it as the BSD flag `e`.
  return [...(platform === 'darwin' ? ['-A', '-E', '-ww'] : ['-A', 'eww']), '-o', 'pid=,ppid=,pgid=,command='];
}

export interface PsEntry {
  pid: number;
  ppid: number;
  pgid: number;
  /** the command and its arguments, then the environment, space-separated as ps prints them */
  text: string;
}

/** Parse the output of `ps` run with psEnvironArgs: one entry a line, malformed lines left out. */
export function parsePsEnviron(output: string): PsEntry[] {
  const out: PsEntry[] = [];
  for (const line of output.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+) (.*)$/.exec(line);
    if (m) out.push({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), text: m[4]!.trimEnd() });
  }
  return out;
}

/**
 * Whether a ps entry carries the marker of `stack`, and its instance. ps joins the words with
 * spaces, so this is weaker than /proc: the marker must stand as words of their own (a data dir
 * holding spaces still matches whole), and an argument that spells the marker out reads as one.
 */
export function psMarker(entry: PsEntry, stack: string): { instance?: string } | undefined {
  const text = ` ${entry.text} `;
  if (!text.includes(` ${STACK_VAR}=${stack} `)) return undefined;
  const inst = new RegExp(` ${INSTANCE_VAR}=([0-9a-f]+)(?= )`).exec(text);
  return inst ? { instance: inst[1]! } : {};
}

/** The command of a ps entry: its words up to the first that looks like a variable (display only). */
function psCommand(text: string): string {
  const env = / [A-Za-z_][A-Za-z0-9_]*=/.exec(text);
  return (env ? text.slice(0, env.index) : text).trim() || text;
}

function fromPs(stack: string): Candidates {
  let output: string;
  try {
    output = execFileSync('ps', psEnvironArgs(), { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return { marked: [], ppidOf: () => undefined }; // no ps: nothing can be found
  }
  const entries = parsePsEnviron(output);
  const parents = new Map(entries.map((e) => [e.pid, e.ppid]));
  const marked: MarkedProcess[] = [];
  for (const e of entries) {
    const mark = psMarker(e, stack);
    if (!mark) continue;
    // Identity: the start time where /proc gives one (Linux), else the pid alone, as identity.ts does.
    let startTime = 0;
    if (HAS_PROC) {
      const stat = readProcStat(e.pid);
      if (!stat || hasExited(stat)) continue; // gone since, or a zombie (ps itself, exited)
      startTime = stat.startTime;
    }
    marked.push({ pid: e.pid, pgid: e.pgid, startTime, ...(mark.instance ? { instance: mark.instance } : {}), command: psCommand(e.text) });
  }
  return { marked, ppidOf: (pid) => parents.get(pid) ?? (HAS_PROC ? readProcStat(pid)?.ppid : undefined) };
}

/**
 * Live processes carrying this stack's marker (and `instance`, when given), stigmer and the
 * processes above it excluded. `source` picks how environments are read (see EnvironSource).
 * `bornSince`: the start time (/proc clock ticks) of the instance's first process, where known:
 * what started before it cannot descend from it and is not looked at (/proc only).
 */
export function findMarked(dataDir: string, instance?: string, source: EnvironSource = defaultSource(), bornSince?: number): MarkedProcess[] {
  const { marked, ppidOf } = source === 'proc' ? fromProc(stackId(dataDir), instance === undefined ? undefined : bornSince) : fromPs(stackId(dataDir));
  // A stigmer run by a stack's own task never sweeps itself or what runs it.
  const skip = selfAndAncestors(ppidOf);
  return marked.filter((p) => !skip.has(p.pid) && (instance === undefined || p.instance === instance));
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
  opts: { instance?: string; bornSince?: number; keep?: (p: MarkedProcess) => boolean; signal?: NodeJS.Signals; graceMs?: number; source?: EnvironSource } = {},
): Promise<SweepResult & { found: MarkedProcess[] }> {
  const found = findMarked(dataDir, opts.instance, opts.source, opts.bornSince).filter((p) => !opts.keep?.(p));
  return { found, ...(await stopProcesses(found, opts)) };
}
