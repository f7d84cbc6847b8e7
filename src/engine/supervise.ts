/**
 * The host's side of supervision: after `runGraph` (with `supervised: true`) is ready, the process
 * that ran it watches its services (src/supervisor/watch.ts) with the state file as the record.
 * The supervisor daemon calls it (src/daemon/daemon.ts; `up --foreground` attaches to it).
 *
 *   const sup = superviseRun({ dataDir, state, services: outcome.services });
 *   ...
 *   await sup.stop();              // then undo as usual: nothing restarts behind the undo
 *
 * The daemon serves requests that write the state with their own store meanwhile (one writer at a
 * time): it pauses the watch, runs the request, then resumes it on the request's store:
 *
 *   await sup.pause();   sup.state.save();   ...request...   sup.resume(itsState, itsServices, itsTasks);
 */
import type { StateStore } from './state.js';
import type { ServiceRun } from './run.js';
import { executeUndo } from './undo.js';
import { discardRespawn, prepareRespawn } from '../process/proc.js';
import { logFileFor } from '../util/paths.js';
import { superviseServices, type ServiceToWatch, type Supervisor } from '../supervisor/watch.js';

export interface SuperviseRunOptions {
  dataDir: string;
  state: StateStore;
  services: ReadonlyMap<string, ServiceRun>;
  /** how often an adopted instance (started by an earlier run) is checked for its exit */
  pollMs?: number;
}

export interface HostSupervisor extends Omit<Supervisor, 'resume'> {
  /** the store every record (and every rerun's undo) goes to */
  readonly state: StateStore;
  /** write to this store from now on (a down's, before `stopped()`) */
  writeTo(state: StateStore): void;
  /** after `pause()`: watch again, writing to `state` (see Supervisor.resume for the rest) */
  resume(state: StateStore, services: ReadonlyMap<string, ServiceRun>, touched: ReadonlySet<string>): void;
}

export function superviseRun(o: SuperviseRunOptions): HostSupervisor {
  let state = o.state;
  // A rerun records its new instance in the store in use at that moment, not in the one of the
  // request that first started the service.
  const watched = (services: ReadonlyMap<string, ServiceRun>): Map<string, ServiceToWatch> =>
    new Map([...services].map(([task, s]) => [task, { running: s.running, rerun: (signal, emit) => s.rerun(signal, emit, state) }]));
  const sup = superviseServices({
    dataDir: o.dataDir,
    services: watched(o.services),
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    record: (task, fields, flush) => {
      if (state.record(task)) state.update(task, fields, flush);
    },
    // The instance's own undo: its stop signal, SIGKILL after its grace, what it left in its group.
    stopTask: async (task) => {
      const rec = state.record(task);
      if (!rec?.undo.length) return;
      for (const u of [...rec.undo].reverse()) await executeUndo(u, { dataDir: o.dataDir });
      state.update(task, { undo: [] }, true);
    },
    prepareRestart: (task) => prepareRespawn(logFileFor(o.dataDir, task)),
    dropRestart: (task) => discardRespawn(logFileFor(o.dataDir, task)),
    recorded: (task, instance) => !!state.record(task)?.undo.some((u) => u.type === 'stop-process' && u.pid === instance.pid && u.startTime === instance.startTime),
    logFile: (task) => logFileFor(o.dataDir, task),
  });
  return {
    get state() {
      return state;
    },
    get tasks() {
      return sup.tasks;
    },
    get active() {
      return sup.active;
    },
    on: (l) => sup.on(l),
    restart: (task) => sup.restart(task),
    stop: () => sup.stop(),
    stopped: () => sup.stopped(),
    pause: () => sup.pause(),
    writeTo: (next) => void (state = next),
    resume: (next, services, touched) => {
      state = next;
      sup.resume(watched(services), touched);
    },
  };
}
