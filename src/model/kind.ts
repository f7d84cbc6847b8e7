/**
 * The contract between the engine and the task kinds in `tasks/`.
 *
 * A kind is one file exporting a default `TaskKind`. The engine resolves the task's `with`
 * (expressions evaluated), hands it to `run`, and records what `run` returns: its outputs for
 * dependents and its undo descriptors (plain data) in the state file, so that a later process can
 * undo what this one did even after a `kill -9`.
 */
import { describeFailure, type Failure } from './failure.js';

/** Lifecycle of one task in one run. */
export type TaskStatus =
  /** declared, not yet looked at */
  | 'pending'
  /** waiting for its needs to be done */
  | 'waiting'
  /** its kind's `run` is in progress */
  | 'running'
  /** a service whose readiness probe passed (it keeps running) */
  | 'ready'
  /** a one-shot task that finished */
  | 'done'
  /**
   * not run: `if` was false, a need failed or was skipped, the run stopped first, or `--no-deps`
   * took its recorded outputs. (A task whose world already matched is `ready`/`done` with
   * `satisfied: true`, not skipped.)
   */
  | 'skipped'
  /** `run` failed */
  | 'failed'
  /** its undo ran */
  | 'undone'
  /** aborted while running (signal, or another task failed) */
  | 'cancelled';

/**
 * What `stigmer status` shows for a recorded task: its last status, or `dead` when the state says
 * ready (or running) but the process it started is gone.
 */
export type RecordedState = TaskStatus | 'dead';

/**
 * Data that says how to undo what a task did. Never a closure: it is written to the state file
 * before the engine moves on, and executed by `src/engine/undo.ts`, possibly by another process.
 */
export type UndoDescriptor =
  | {
      /** stop process group `pgid` whose leader is `pid` started at `startTime` */
      type: 'stop-process';
      pid: number;
      pgid: number;
      /** field 22 of /proc/<pid>/stat (clock ticks since boot): tells a reused pid apart */
      startTime: number;
      /** the command line, for messages */
      command: string;
      signal: NodeJS.Signals;
      graceMs: number;
      /** ISO time the process was started */
      startedAt: string;
      /** the spawn's STIGMER_INSTANCE: its descendants that left the group are stopped with it */
      instance?: string;
      /** ports the task declared: one still held after the stop is reported with its holder */
      ports?: number[];
    }
  | {
      /** remove a file or directory this task created */
      type: 'remove-path';
      path: string;
    };

/** What a kind's `run` returns. */
export interface TaskResult {
  /** values dependents may reference as `${{ tasks.NAME.outputs.KEY }}` */
  outputs: Record<string, unknown>;
  /** how to undo what this run changed; omitted when nothing was changed */
  undo?: UndoDescriptor[];
  /** true when nothing was changed because the world already matched (reused service, install) */
  satisfied?: boolean;
  /** one line for the renderers, e.g. "ready on 127.0.0.1:7233 after 1.2 s" */
  summary?: string;
  /** the readiness probe's latest result, kept for `stigmer status` */
  lastProbe?: string;
  /**
   * A service's running instance, for the supervisor (never written to the state): what to watch
   * after ready. Kinds return it only when `ctx.supervised`.
   */
  running?: RunningInstance;
}

/** How a supervised instance exited: a code, or the signal that ended it (both null: not seen). */
export interface ExitSeen {
  code: number | null;
  signal: string | null;
}

/** A service instance as the supervisor watches it (src/supervisor/watch.ts). */
export interface RunningInstance {
  pid: number;
  pgid: number;
  startTime: number;
  /** settles when it exits; absent for an instance adopted from an earlier run (its exit is polled) */
  exited?: Promise<ExitSeen>;
  /** settles once its captured output is all in its log (both pipes ended, the writer flushed) */
  logged?: Promise<void>;
  /** `with.restart`, `with.health` and `with.stop` as the kind read them (plain data, validated) */
  supervision: SupervisionSpec;
}

/** What the supervisor needs of a service's `with` (parsed by the kind; interpreted by src/supervisor). */
export interface SupervisionSpec {
  restart: { policy: 'no' | 'on-failure' | 'always'; backoffMs: number; maxBackoffMs: number; maxRestarts: number; windowMs: number };
  /** the liveness check's raw `with.health` (probe fields resolved), when it has one */
  health?: Record<string, unknown>;
  /** where its probes run */
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** Progress of a long step, e.g. a download. */
export interface Progress {
  done: number;
  total?: number;
  unit: 'bytes' | 'items';
  /** units per second over the last seconds, when known (the bar shows speed and time left) */
  rate?: number;
}

/** What the state file remembers of a task (see src/engine/state.ts). */
export interface TaskRecord {
  kind: string;
  status: TaskStatus;
  /** hash of the resolved `with` and `env`: a change means the task must run again */
  specHash?: string;
  /** outputs with secret values masked */
  outputs?: Record<string, unknown>;
  undo: UndoDescriptor[];
  startedAt?: string;
  finishedAt?: string;
  /** one line: the latest readiness probe result */
  lastProbe?: string | undefined;
  /** the failure message of the last run, if it failed (`undefined` clears it on update) */
  error?: string | undefined;
  /** the task's needs when it ran: `down` undoes dependents first without the tasks file */
  needs?: string[];
  /** completion order within the state: undo runs in reverse */
  seq?: number;
  /** how long it took, in ms (for the critical path) */
  durationMs?: number;
  // Written by the supervisor after the graph is ready (a service of a supervised stack):
  /** what the supervisor says of the service now */
  service?: ServiceState;
  /** restarts since it was first ready */
  restarts?: number;
  /** how it last exited */
  lastExit?: ExitRecord;
  /** the latest liveness check */
  health?: HealthRecord;
  /** when a scheduled restart is due (null: none pending) */
  nextRestartAt?: string | null;
  /** ISO time the running instance became ready (its first readiness or after its latest restart) */
  readyAt?: string;
}

/**
 * A supervised service, as its supervisor records it (state.json `service`):
 *   starting    spawned, readiness probe not passed yet (a restart in progress)
 *   ready       up, and (with `health`) passing its liveness checks
 *   restarting  exited or unhealthy; a restart is scheduled (`nextRestartAt`)
 *   unhealthy   `failures` consecutive liveness checks failed; being stopped for a restart
 *   crash-loop  restarted too often within the window: no more restarts
 *   stopped     stopped on purpose (down); one that exited by itself is `dead` to status
 */
export type ServiceState = 'starting' | 'ready' | 'restarting' | 'unhealthy' | 'crash-loop' | 'stopped';

/** How a process ended: its exit code, or the signal that ended it. */
export interface ExitRecord {
  code: number | null;
  signal: string | null;
  /** ISO time */
  at: string;
}

/** The latest liveness check of a service. */
export interface HealthRecord {
  ok: boolean;
  /** ISO time of the check */
  at: string;
  /** one line: what the check saw ("HTTP 200", "connect ECONNREFUSED 127.0.0.1:8080") */
  detail?: string;
  /** consecutive failed checks so far */
  failures: number;
}

export interface PromptOptions {
  message: string;
  /** mask the typed characters */
  mask?: boolean;
}

/** Everything a kind gets to do its work. */
export interface TaskContext<W = Record<string, unknown>> {
  /** the task's name in the tasks file */
  task: string;
  /** the kind's parameters, expressions already evaluated */
  with: W;
  /** the task-level `env` of the tasks file, resolved; kinds that start processes add it on top of process.env */
  env: Record<string, string>;
  /** the task's `timeout` in ms, if any (the engine also aborts `signal` when it passes) */
  timeoutMs?: number;
  /** directory of the tasks file: relative paths in `with` resolve against it */
  baseDir: string;
  /** stigmer's data dir (state, logs, locks live here) */
  dataDir: string;
  /** `<dataDir>/logs/<task>.log`; its directory exists */
  logFile: string;
  /** aborted when the run is interrupted, another task failed, or this task's timeout passed */
  signal: AbortSignal;
  /** what the state file recorded for this task in an earlier run, if anything */
  previous?: TaskRecord;
  /** hash of the resolved `with` + `env` (compare with `previous.specHash`) */
  specHash: string;
  /** true when the user asked to rerun this task (`stigmer run <task>`): do not reuse */
  force: boolean;
  /** show a line of output (the renderers display the latest) */
  output(line: string): void;
  /** report progress of a long step */
  progress(p: Progress): void;
  /** persist an undo step now, before continuing (e.g. right after spawning a process) */
  recordUndo(undo: UndoDescriptor): void;
  /** drop a step recorded with `recordUndo` that no longer applies (a command that finished) */
  forgetUndo(undo: UndoDescriptor): void;
  /** register a secret value: it is masked in every output, log line, event and state write */
  secret(value: string): void;
  /** ask the user (only where a TTY and input are allowed); throws TaskError missing-input otherwise */
  prompt(options: PromptOptions): Promise<string>;
  /** whether prompting is possible at all (TTY on stdin/stdout, no --no-input, no CI) */
  canPrompt: boolean;
  /**
   * The process running the engine stays and supervises what starts (the supervisor daemon,
   * also under `up --foreground`): a service's output may be piped to it, and its instance is returned in
   * `TaskResult.running`.
   */
  supervised?: boolean;
  /** the user said --no-input (for the message that says why nothing was asked) */
  noInput?: boolean;
}

/** A task kind: one file in `tasks/`. */
export interface TaskKind<W = Record<string, unknown>> {
  /** the `uses:` name */
  name: string;
  /** one-shot: done when it finishes; service: done when ready, keeps running */
  mode: 'oneshot' | 'service';
  /**
   * No side effects and cheap: always runs again (even under `run --no-deps`), since its outputs
   * may hold secrets that the state file never keeps.
   */
  pure?: boolean;
  run(ctx: TaskContext<W>): Promise<TaskResult>;
}

/** Imports a kind's module on first use, so a command loads only the kinds its graph uses. */
export type KindLoader = () => Promise<{ default: TaskKind<any> }>;

/**
 * The kinds a run may use, by `uses:` name. The engine knows no kind itself: src/commands/
 * assembles the registry and passes it in (as lage's runner picker gets its runners).
 */
export interface KindRegistry {
  /** every `uses:` name, for the loader's "unknown task kind" check */
  readonly names: readonly string[];
  /** the kind, imported on first use; throws for a name the registry does not have */
  load(name: string): Promise<TaskKind<any>>;
}

export function kindRegistry(loaders: Readonly<Record<string, KindLoader>>): KindRegistry {
  return {
    names: Object.keys(loaders),
    load: async (name) => {
      const loader = Object.hasOwn(loaders, name) ? loaders[name] : undefined;
      if (!loader) throw new Error(`Internal error: unknown task kind "${name}" passed validation`);
      return (await loader()).default;
    },
  };
}

/** The error a kind throws for an expected failure. */
export class TaskError extends Error {
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(describeFailure(failure).message);
    this.name = 'TaskError';
    this.failure = failure;
  }
}
