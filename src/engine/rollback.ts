/**
 * Undo: runs the recorded undo steps of tasks in reverse dependency order — a task is undone
 * only after every task that needs it — so independent tasks undo in parallel while a chain
 * undoes strictly in reverse. A failing step is reported and the rest still run; its record stays
 * in the state so the next `down` tries again.
 */
import type { EngineEvent } from '../model/event.js';
import { fail } from '../model/failure.js';
import type { StateStore } from './state.js';
import { executeUndo } from './undo.js';
import { basename, dirname } from 'node:path';
import { SignalRefused } from '../process/identity.js';

export interface UndoOptions {
  /** undo only these tasks (default: every task in the state) */
  only?: Set<string>;
  /** SIGKILL at once instead of the grace period */
  force?: boolean;
  emit: (ev: EngineEvent) => void;
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
  const done = new Map<string, Promise<void>>();

  const undoOne = async (name: string): Promise<void> => {
    // Wait for every dependent in the set (they were started after it and rely on it).
    const dependents = [...todo].filter((d) => d !== name && (state.record(d)?.needs ?? []).includes(name));
    await Promise.all(dependents.map((d) => run(d)));
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
        const line = await executeUndo(u, { force: opts.force ?? false, dataDir: dirname(state.path) });
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
  const run = (name: string): Promise<void> => {
    let p = done.get(name);
    if (!p) {
      p = undoOne(name);
      done.set(name, p);
    }
    return p;
  };
  // Latest first, so the recorded events read in reverse completion order.
  const bySeq = [...todo].sort((a, b) => (state.record(b)?.seq ?? Infinity) - (state.record(a)?.seq ?? Infinity));
  await Promise.all(bySeq.map((n) => run(n)));
  state.save();
  return { undone, failed };
}
