/**
 * Undo: runs the recorded undo steps of tasks in reverse dependency order — a task is undone
 * only after every task that needs it — so independent tasks undo in parallel while a chain
 * undoes strictly in reverse. A failing step is reported and the rest still run; its record stays
 * in the state so the next `down` tries again.
 */
import type { EngineEvent } from '../model/event.js';
import { fail } from '../model/failure.js';
import type { StateStore } from './state.js';
import type { TaskRecord } from '../model/kind.js';
import { executeUndo } from './undo.js';
import { basename, dirname } from 'node:path';
import { SignalRefused } from '../process/identity.js';

export interface UndoOptions {
  /** undo only these tasks (default: every task in the state) */
  only?: Set<string>;
  /** SIGKILL at once instead of the grace period */
  force?: boolean;
  emit: (ev: EngineEvent) => void;
  /** a whole `down`: escapees are left to its one sweep of the stack after the undo (UndoContext.sweepAfter) */
  sweepAfter?: boolean;
}

export interface UndoOutcome {
  undone: string[];
  failed: string[];
}

export async function undoRecorded(state: StateStore, opts: UndoOptions): Promise<UndoOutcome> {
  const names = Object.keys(state.tasks).filter((n) => !opts.only || opts.only.has(n));
  const todo = new Set(names);
  const undone: string[] = [];
  const failed: string[] = [];

  const undoOne = async (name: string): Promise<void> => {
    const rec = state.record(name);
    if (!rec) return;
    if (rec.undo.length === 0) {
      state.remove(name, false);
      return;
    }
    const t0 = performance.now();
    opts.emit({ type: 'undo-started', task: name, time: Date.now() });
    const left = [];
    for (const u of [...rec.undo].reverse()) {
      try {
        const line = await executeUndo(u, { force: opts.force ?? false, dataDir: dirname(state.path), ...(opts.sweepAfter ? { sweepAfter: true } : {}) });
        opts.emit({ type: 'output', task: name, time: Date.now(), line });
      } catch (err) {
        // A refused step stays recorded, for inspection: the record names what it would have hit.
        left.unshift(u);
        const refused = err instanceof SignalRefused || /^refused to remove/.test((err as Error).message);
        const message = refused ? `${basename(state.path)}: tasks.${name}: ${(err as Error).message}` : (err as Error).message;
        opts.emit({ type: 'undo-failed', task: name, time: Date.now(), failure: fail.rollbackFailed(message) });
      }
    }
    if (left.length) {
      failed.push(name);
      state.update(name, { undo: left }, true);
    } else {
      undone.push(name);
      state.remove(name, true);
      opts.emit({ type: 'undone', task: name, time: Date.now(), durationMs: performance.now() - t0 });
    }
  };
  await inReverseOrder(todo, (n) => state.record(n), undoOne);
  state.save();
  return { undone, failed };
}

/**
 * Run `step` for every task, a task only once every task that needs it (its dependents, per the
 * recorded needs) is done; independent ones run in parallel. Recorded needs are data: when they
 * form a cycle, nothing is ready while nothing runs, so the latest of the remaining tasks (highest
 * seq) goes next, breaking the cycle instead of waiting forever.
 */
async function inReverseOrder(names: ReadonlySet<string>, record: (n: string) => TaskRecord | undefined, step: (n: string) => Promise<void>): Promise<void> {
  const remaining = new Set(names);
  const inFlight = new Map<string, Promise<string>>();
  const needs = (n: string): readonly string[] => {
    const list = record(n)?.needs;
    return Array.isArray(list) ? list : [];
  };
  const seq = (n: string): number => record(n)?.seq ?? Number.MAX_SAFE_INTEGER;
  const blocked = (n: string): boolean => [...remaining].some((d) => d !== n && needs(d).includes(n));
  while (remaining.size > 0) {
    let ready = [...remaining].filter((n) => !inFlight.has(n) && !blocked(n));
    if (ready.length === 0 && inFlight.size === 0) ready = [[...remaining].reduce((a, b) => (seq(b) > seq(a) ? b : a))];
    // Latest first, so the recorded events read in reverse completion order.
    for (const n of ready.sort((a, b) => seq(b) - seq(a))) inFlight.set(n, step(n).then(() => n));
    const finished = await Promise.race(inFlight.values());
    inFlight.delete(finished);
    remaining.delete(finished);
  }
}
