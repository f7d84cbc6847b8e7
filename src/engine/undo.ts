/**
 * Executes undo descriptors: the plain data a task recorded in the state file about what it
 * changed. Runs in whichever process undoes (the run that failed, a later `down`, the next `up`
 * after a `kill -9`), so it relies on nothing but the descriptor.
 */
import { lstat, realpath, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { UndoDescriptor } from '../model/kind.js';
import { formatMs } from '../util/format.js';
import { killForegroundGroups } from '../process/command.js';
import { inspectPort, killGroupNow, portProvenFree, shortCommand, stopGroup, type StopProcess } from '../process/proc.js';
import { sweep, type MarkedProcess } from '../process/sweep.js';
import { killCgroupNow, stopCgroup } from '../process/cgroup.js';
import { dataPaths, stigmerHome } from '../util/paths.js';

export interface UndoContext {
  /** skip the grace period (SIGKILL) */
  force?: boolean;
  /** the data dir the state belongs to: a `remove-path` may only remove what lies inside it (or inside STIGMER_HOME) */
  dataDir?: string;
  /**
   * A whole `down`: a stopped instance's escapees are left to the one marker sweep of the stack
   * that follows every undo (src/engine/leftovers.ts, which tells them as the instance's), not
   * swept for one by one (a read of every process's environment per stopped service).
   */
  sweepAfter?: boolean;
}

/**
 * Undo one step and say in one line what happened. `force` skips the grace period (SIGKILL).
 * Throws on a real failure; the caller reports it and carries on with the other steps.
 */
export async function executeUndo(desc: UndoDescriptor, opts: UndoContext = {}): Promise<string> {
  switch (desc.type) {
    case 'stop-process': {
      const line = await stopRecorded(desc, opts);
      return line + (await escapees(desc, opts)) + (await heldPorts(desc));
    }
    case 'remove-path': {
      const path = await removablePath(desc.path, opts.dataDir);
      const existed = await lstat(path).then(
        () => true,
        () => false,
      );
      await rm(path, { recursive: true, force: true });
      return existed ? `removed ${path}` : `${path} was already gone`;
    }
    default:
      return assertNever(desc);
  }
}

/**
 * SIGKILL, synchronously, every process group these steps name that is still ours, and every
 * foreground command still running (the second Ctrl-C: no grace periods, no awaiting).
 */
export function forceKillAll(descs: readonly UndoDescriptor[]): void {
  for (const desc of descs) {
    if (desc.type !== 'stop-process') continue;
    killGroupNow(desc);
    if (typeof desc.instance === 'string') killCgroupNow(desc.instance);
  }
  killForegroundGroups();
}

async function stopRecorded(desc: StopProcess, opts: UndoContext): Promise<string> {
  const who = `pid ${desc.pid} (${shortCommand(desc.command)})`;
  const result = await stopGroup(desc, opts);
  switch (result) {
    case 'stopped':
      return `stopped ${who}`;
    case 'killed':
      return opts.force || desc.signal === 'SIGKILL' ? `killed ${who}` : `killed ${who}: it did not stop within ${formatMs(desc.graceMs)} of ${desc.signal}`;
    case 'not-running':
      return `pid ${desc.pid} was no longer running`;
    case 'pid-reused':
      return `pid ${desc.pid} now belongs to another program; not signalled`;
    default:
      return assertNever(result);
  }
}

/** Descendants of the instance that left its group (double fork, setsid): found by its marker. */
async function escapees(desc: StopProcess, opts: UndoContext): Promise<string> {
  if (!desc.instance || !opts.dataDir) return '';
  // Its cgroup first, where it has one: cgroup.kill reaches even a descendant that cleared its environment.
  const cg = await stopCgroup(opts.dataDir, desc.instance, {
    signal: opts.force ? 'SIGKILL' : desc.signal,
    graceMs: opts.force ? 0 : Math.min(desc.graceMs, 10_000),
    ...(opts.force ? { force: true } : {}),
  });
  if (opts.sweepAfter) return cg.found.length ? `; also stopped ${describeProcs(cg.found)} that left its process group${cg.killed ? ' (cgroup.kill)' : ''}` : '';
  const swept = await sweep(opts.dataDir, {
    instance: desc.instance,
    // Its descendants started after it (start time 0: not known, look at every process).
    ...(desc.startTime > 0 ? { bornSince: desc.startTime } : {}),
    signal: opts.force ? 'SIGKILL' : desc.signal,
    graceMs: opts.force ? 0 : Math.min(desc.graceMs, 10_000),
  });
  if (swept.survived.length) throw new Error(`${describeProcs(swept.survived)} of ${desc.command} still running after SIGKILL`);
  const all = [...cg.found, ...swept.found];
  if (all.length === 0) return '';
  return `; also stopped ${describeProcs(all)} that left its process group${cg.killed ? ' (cgroup.kill)' : ''}`;
}

/** A declared port something still listens on, with its holder: a free one is told by a bind (cheap), the rest by the socket tables. */
async function heldPorts(desc: StopProcess): Promise<string> {
  const ports = desc.ports ?? [];
  const free = await Promise.all(ports.map(portProvenFree));
  const held = ports.flatMap((port, i) => {
    if (free[i]) return [];
    const p = inspectPort(port);
    return p.listening ? [`port ${port} is still held${p.holder ? ` by pid ${p.holder.pid} (${shortCommand(p.holder.command, 80)})` : ''}`] : [];
  });
  return held.length ? `; ${held.join('; ')}` : '';
}

/** "pid 12 (sleep 60)" or "3 processes: pid 12 (sleep 60), ..." */
export function describeProcs(procs: readonly Pick<MarkedProcess, 'pid' | 'command'>[]): string {
  const each = procs.map((p) => `pid ${p.pid} (${shortCommand(p.command, 60)})`);
  return procs.length === 1 ? each[0]! : `${procs.length} processes: ${each.join(', ')}`;
}

/** `dir`'s real path, or `dir` itself when it does not exist (nothing to escape through then). */
const real = (dir: string): Promise<string> => realpath(dir).catch(() => resolve(dir));

/** True when `path` lies strictly inside `root`. */
function inside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * The path a `remove-path` step may remove, or a thrown refusal. The state file is data anyone
 * can edit (an empty path once deleted the working directory), so only a non-empty absolute path
 * strictly inside the data dir or STIGMER_HOME (where stigmer installs what it manages) is
 * removed, never the state or lock themselves, and never through a symlinked parent that leads
 * elsewhere.
 */
async function removablePath(path: unknown, dataDir: string | undefined): Promise<string> {
  const refuse = (why: string): never => {
    throw new Error(`refused to remove ${JSON.stringify(path)}: ${why}`);
  };
  if (typeof path !== 'string' || path === '' || !isAbsolute(path)) return refuse('not an absolute path');
  const target = resolve(path);
  const roots = [...new Set([...(dataDir ? [resolve(dataDir)] : []), stigmerHome()])];
  const realRoots = await Promise.all(roots.map(real));
  // The parent is resolved (a symlinked parent may point anywhere); the last component is removed
  // as itself (rm on a symlink removes the link, not what it points to).
  const realTarget = join(await real(dirname(target)), basename(target));
  if (!realRoots.some((r) => inside(realTarget, r)) || !roots.some((r) => inside(target, r))) {
    return refuse(`stigmer only removes what it created inside ${roots.join(' or ')}`);
  }
  if (dataDir) {
    const own = dataPaths(dataDir);
    if ([own.state, own.lock, own.logs].includes(target)) refuse('it is part of the data dir itself');
  }
  return target;
}

function assertNever(value: never): never {
  throw new Error(`Internal error: unknown undo step ${JSON.stringify(value)}`);
}
