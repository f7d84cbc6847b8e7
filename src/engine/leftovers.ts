/**
 * Leftovers: live processes carrying this stack's marker that no record in the state explains. A
 * run killed between a spawn and its state write, an `exec` child running at a `kill -9`, and a
 * grandchild that left its group all end up here; `down` and the next `up` stop them (under the
 * lock, so a concurrent run's fresh, not yet recorded processes are never taken for leftovers).
 */
import type { TaskRecord } from '../model/kind.js';
import { existsSync } from 'node:fs';
import { findMarked, stopProcesses, type MarkedProcess, type SweepResult } from '../process/sweep.js';
import { hasCgroups, stopLeftoverCgroups } from '../process/cgroup.js';
import { dataPaths } from '../util/paths.js';
import { describeProcs } from './undo.js';

function claimedInstances(records: readonly TaskRecord[]): Set<string> {
  const out = new Set<string>();
  for (const rec of records) for (const u of rec.undo) if (u.type === 'stop-process' && typeof u.instance === 'string') out.add(u.instance);
  return out;
}

/** What the records still claim: their spawn instances and process groups. */
function claimedBy(records: readonly TaskRecord[]): (p: MarkedProcess) => boolean {
  const instances = new Set<string>();
  const groups = new Set<number>();
  for (const rec of records) {
    for (const u of rec.undo) {
      if (u.type !== 'stop-process') continue;
      if (typeof u.instance === 'string') instances.add(u.instance);
      if (typeof u.pgid === 'number') groups.add(u.pgid);
    }
  }
  return (p) => (p.instance !== undefined && instances.has(p.instance)) || groups.has(p.pgid);
}

/** The spawns a whole `down` undid, whose escapees its one sweep tells as theirs (UndoContext.sweepAfter). */
export interface Undone {
  task: string;
  signal: NodeJS.Signals;
  graceMs: number;
}

/**
 * Stop every leftover of the stack in `dataDir`; `say` gets one line per outcome. Returns what
 * was found, and what survived SIGKILL (an error for the caller). `undone`: the instances a down
 * just stopped, by instance; a process of one that left its group is stopped with its signal and
 * grace and told as that task's (`sayEscaped`), as its own undo used to sweep for it.
 */
export async function stopLeftovers(
  dataDir: string,
  records: readonly TaskRecord[],
  say: (line: string) => void,
  opts: { force?: boolean; undone?: ReadonlyMap<string, Undone>; sayEscaped?: (task: string, line: string) => void } = {},
): Promise<SweepResult & { found: Pick<MarkedProcess, 'pid' | 'command'>[] }> {
  // The stack's cgroups no record claims first (they reach a process that cleared its environment).
  const cgroups = await stopLeftoverCgroups(dataDir, claimedInstances(records), opts);
  if (cgroups.length) say(`stopped ${describeProcs(cgroups)}: it was in a cgroup of this stack but no record named it (left by a run that was killed)`);
  const found = findMarked(dataDir).filter((p) => !claimedBy(records)(p));
  const of = (p: MarkedProcess): Undone | undefined => (p.instance !== undefined ? opts.undone?.get(p.instance) : undefined);
  const escaped = new Map<string, MarkedProcess[]>();
  for (const p of found) if (of(p)) escaped.set(p.instance!, [...(escaped.get(p.instance!) ?? []), p]);
  const force = opts.force ? { signal: 'SIGKILL' as const, graceMs: 0 } : {};
  const [res, ...escapes] = await Promise.all([
    stopProcesses(found.filter((p) => !of(p)), force),
    ...[...escaped.values()].map((procs) => stopProcesses(procs, opts.force ? force : { signal: of(procs[0]!)!.signal, graceMs: Math.min(of(procs[0]!)!.graceMs, 10_000) })),
  ]);
  const done = [...res!.stopped, ...res!.killed];
  if (done.length) say(`stopped ${describeProcs(done)}: it carried this stack's marker but no record named it (left by a run that was killed, or it left its process group)`);
  if (res!.survived.length) say(`could not stop ${describeProcs(res!.survived)}: still running after SIGKILL`);
  const survived = [...res!.survived];
  [...escaped.values()].forEach((procs, i) => {
    const r = escapes[i]!;
    const task = of(procs[0]!)!.task;
    const line = (text: string): void => (opts.sayEscaped ? opts.sayEscaped(task, text) : say(`${task}: ${text}`));
    if (r.stopped.length + r.killed.length) line(`also stopped ${describeProcs([...r.stopped, ...r.killed])} that left its process group`);
    if (r.survived.length) line(`could not stop ${describeProcs(r.survived)} that left its process group: still running after SIGKILL`);
    survived.push(...r.survived);
  });
  return { stopped: [...res!.stopped, ...escapes.flatMap((r) => r.stopped)], killed: [...res!.killed, ...escapes.flatMap((r) => r.killed)], survived, found: [...cgroups, ...found] };
}

/** No state and nothing carrying the stack's marker (no process, no cgroup): a down has nothing to do, and takes no lock. */
export function nothingToStop(dataDir: string): boolean {
  return !existsSync(dataPaths(dataDir).state) && findMarked(dataDir).length === 0 && !hasCgroups(dataDir);
}

/** What a down with nothing to stop says (on stderr). */
export const nothingToStopLine = (dataDir: string): string => `stigmer: nothing to stop (no state in ${dataPaths(dataDir).root}; \`stigmer ls\` lists every stack)`;
