/**
 * The host's side of supervision: after `runGraph` (with `supervised: true`) is ready, the process
 * that ran it watches its services (src/supervisor/watch.ts) with the state file as the record.
 * `up --foreground` calls it; so does the supervisor daemon.
 *
 *   const sup = superviseRun({ dataDir, state, services: outcome.services });
 *   ...
 *   await sup.stop();              // then undo as usual: nothing restarts behind the undo
 */
import type { StateStore } from './state.js';
import type { ServiceRun } from './run.js';
import { executeUndo } from './undo.js';
import { logFileFor } from '../util/paths.js';
import { superviseServices, type Supervisor } from '../supervisor/watch.js';

export interface SuperviseRunOptions {
  dataDir: string;
  state: StateStore;
  services: ReadonlyMap<string, ServiceRun>;
  /** how often an adopted instance (started by an earlier run) is checked for its exit */
  pollMs?: number;
}

export function superviseRun(o: SuperviseRunOptions): Supervisor {
  return superviseServices({
    dataDir: o.dataDir,
    services: o.services,
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    record: (task, fields, flush) => {
      if (o.state.record(task)) o.state.update(task, fields, flush);
    },
    // The instance's own undo: its stop signal, SIGKILL after its grace, what it left in its group.
    stopTask: async (task) => {
      const rec = o.state.record(task);
      if (!rec?.undo.length) return;
      for (const u of [...rec.undo].reverse()) await executeUndo(u, { dataDir: o.dataDir });
      o.state.update(task, { undo: [] }, true);
    },
    logFile: (task) => logFileFor(o.dataDir, task),
  });
}
