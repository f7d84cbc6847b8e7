/**
 * Leftovers: live processes carrying this stack's marker that no record in the state explains. A
 * run killed between a spawn and its state write, an `exec` child running at a `kill -9`, and a
 * grandchild that left its group all end up here; `down` and the next `up` stop them (under the
 * lock, so a concurrent run's fresh, not yet recorded processes are never taken for leftovers).
 */
import type { TaskRecord } from '../model/kind.js';
import { existsSync } from 'node:fs';
import { findMarked, sweep, type MarkedProcess, type SweepResult } from '../process/sweep.js';
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

/**
 * Stop every leftover of the stack in `dataDir`; `say` gets one line per outcome. Returns what
 * was found, and what survived SIGKILL (an error for the caller).
 */
export async function stopLeftovers(
  dataDir: string,
  records: readonly TaskRecord[],
  say: (line: string) => void,
  opts: { force?: boolean } = {},
): Promise<SweepResult & { found: Pick<MarkedProcess, 'pid' | 'command'>[] }> {
  // The stack's cgroups no record claims first (they reach a process that cleared its environment).
  const cgroups = await stopLeftoverCgroups(dataDir, claimedInstances(records), opts);
  if (cgroups.length) say(`stopped ${describeProcs(cgroups)}: it was in a cgroup of this stack but no record named it (left by a run that was killed)`);
  const res = await sweep(dataDir, { keep: claimedBy(records), ...(opts.force ? { signal: 'SIGKILL' as const, graceMs: 0 } : {}) });
  const done = [...res.stopped, ...res.killed];
  if (done.length) say(`stopped ${describeProcs(done)}: it carried this stack's marker but no record named it (left by a run that was killed, or it left its process group)`);
  if (res.survived.length) say(`could not stop ${describeProcs(res.survived)}: still running after SIGKILL`);
  return { ...res, found: [...cgroups, ...res.found] };
}

/** No state and nothing carrying the stack's marker (no process, no cgroup): a down has nothing to do, and takes no lock. */
export function nothingToStop(dataDir: string): boolean {
  return !existsSync(dataPaths(dataDir).state) && findMarked(dataDir).length === 0 && !hasCgroups(dataDir);
}

/** What a down with nothing to stop says (on stderr). */
export const nothingToStopLine = (dataDir: string): string => `stigmer: nothing to stop (no state in ${dataPaths(dataDir).root}; \`stigmer ls\` lists every stack)`;
