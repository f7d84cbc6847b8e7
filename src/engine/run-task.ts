/**
 * One task's run: build the kind's context, race the kind against the task's abort signal and
 * timeout, and record the outcome in the state file. The scheduler (run.ts) decides when a task
 * runs and what its outcome means for the rest of the graph.
 */
import { dirname } from 'node:path';
import { fail, type Failure } from '../model/failure.js';
import type { EventInput } from '../model/event.js';
import { TaskError, type Progress, type PromptOptions, type RunningInstance, type TaskContext, type TaskKind, type TaskRecord, type TaskResult, type UndoDescriptor } from '../model/kind.js';
import type { Target } from '../model/task.js';
import { mask, maskDeep, registerSecret } from '../util/mask.js';
import { logFileFor } from '../util/paths.js';
import { errnoText, isFsError } from '../util/fs-error.js';
import type { StateStore } from './state.js';
import { executeUndo } from './undo.js';

/** How a task's run ended; `changed` says whether it changed the world (started, installed...). */
export type TaskOutcome =
  | { status: 'ready' | 'done'; outputs: Record<string, unknown>; changed: boolean; running?: RunningInstance }
  | { status: 'cancelled'; changed: boolean }
  | { status: 'failed'; failure: Failure; changed: boolean };

export interface TaskRun {
  target: Target;
  kind: TaskKind<any>;
  state: StateStore;
  baseDir: string;
  dataDir: string;
  /** what an earlier run recorded for this task (already undone when forced) */
  previous: TaskRecord | undefined;
  force: boolean;
  /** aborted by the scheduler when the run stops; runTask aborts it with 'timeout' */
  abort: TaskAbort;
  canPrompt: boolean;
  noInput?: boolean;
  prompt: ((task: string, options: PromptOptions) => Promise<string>) | undefined;
  /** the engine's process stays and supervises (TaskContext.supervised) */
  supervised?: boolean;
  /**
   * A service's ready record is written by the caller at once (the supervisor's rerun: its
   * `ready` state write follows in the same turn): not flushed here. The undo record is on disk
   * before the probe either way.
   */
  callerWritesReady?: boolean;
  /** `performance.now()` when the scheduler picked the task up */
  t0: number;
  /** false once the scheduler settled the task: late output is dropped */
  live(): boolean;
  /** creates a log directory once per run */
  ensureDir(dir: string): void;
  emit(ev: EventInput): void;
}

/** `run <task>`: stop the previous instance before starting a new one. */
export async function stopPrevious(task: string, previous: TaskRecord, state: StateStore, emit: TaskRun['emit']): Promise<Failure | undefined> {
  for (const u of [...previous.undo].reverse()) {
    try {
      emit({ type: 'output', task, line: await executeUndo(u, { dataDir: dirname(state.path) }) });
    } catch (err) {
      return fail.rollbackFailed((err as Error).message, 'stop its previous instance');
    }
  }
  state.update(task, { status: 'undone', undo: [] }, true);
  return undefined;
}

/**
 * A task's abort controller whose `AbortSignal` is made only when something asks for it (a kind
 * that spawns, waits or fetches): an in-process task never does, and a signal per task was a large
 * part of what a big graph of such tasks allocated. `abort` aborts the signal if there is one,
 * then tells `runTask`, which races the kind against it without a listener.
 */
export class TaskAbort {
  aborted = false;
  reason: unknown = undefined;
  /** runTask's: reject the race */
  onAbort: (() => void) | undefined = undefined;
  private controller: AbortController | undefined = undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    if (reason === undefined) {
      // AbortController's own reason (an AbortError DOMException)
      const signal = this.signal;
      this.controller!.abort();
      this.reason = signal.reason;
    } else {
      this.reason = reason;
      this.controller?.abort(reason);
    }
    this.onAbort?.();
  }
}

/** The kind's view of its run: one object, its methods on the prototype (no closures per task). */
class Context implements TaskContext<any> {
  readonly task: string;
  readonly with: any;
  readonly env: Record<string, string>;
  // declared, not defined: absent unless set, as in the object literal this replaces
  declare readonly timeoutMs?: number;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  declare readonly previous?: TaskRecord;
  readonly specHash: string;
  readonly force: boolean;
  readonly canPrompt: boolean;
  declare readonly supervised?: boolean;
  declare readonly noInput?: boolean;
  // Plain fields, not #private: a kind may pass the context on as the prototype of another
  // (wait-port: Object.create(ctx, { with })), and #private fields are not found through one.
  private readonly r: TaskRun;
  private readonly recorded: UndoDescriptor[];
  private last = 0;

  constructor(r: TaskRun, logFile: string, recorded: UndoDescriptor[]) {
    const target = r.target;
    this.r = r;
    this.recorded = recorded;
    this.task = target.name;
    this.with = target.with;
    this.env = target.env;
    if (target.timeoutMs) (this as { timeoutMs?: number }).timeoutMs = target.timeoutMs;
    this.baseDir = r.baseDir;
    this.dataDir = r.dataDir;
    this.logFile = logFile;
    if (r.previous) (this as { previous?: TaskRecord }).previous = r.previous;
    this.specHash = target.specHash;
    this.force = r.force;
    this.canPrompt = r.canPrompt && !!r.prompt;
    if (r.supervised) (this as { supervised?: boolean }).supervised = true;
    if (r.noInput) (this as { noInput?: boolean }).noInput = true;
  }

  get signal(): AbortSignal {
    return this.r.abort.signal;
  }

  output(line: string): void {
    if (this.r.live()) this.r.emit({ type: 'output', task: this.task, line: mask(line) });
  }

  progress(p: Progress): void {
    const now = performance.now();
    if (!this.r.live() || (now - this.last < 100 && p.done !== p.total)) return;
    this.last = now;
    this.r.emit({ type: 'progress', task: this.task, progress: p });
  }

  recordUndo(u: UndoDescriptor): void {
    const { state, target } = this.r;
    this.recorded.push(u);
    state.update(this.task, { kind: target.spec.uses, status: 'running', needs: target.needs, specHash: target.specHash, startedAt: new Date().toISOString() });
    state.addUndo(this.task, u);
    // Not on disk: a kill -9 now would orphan it. Fail the task; the rollback stops it from memory.
    if (state.writeError) throw new TaskError(fail.writeFailed('record it in', state.path, errnoText(state.writeError.cause)));
  }

  forgetUndo(u: UndoDescriptor): void {
    const key = JSON.stringify(u);
    const at = this.recorded.findIndex((x) => JSON.stringify(x) === key);
    if (at >= 0) this.recorded.splice(at, 1);
    this.r.state.forgetUndo(this.task, u);
  }

  secret(v: string): void {
    registerSecret(v);
  }

  async prompt(opts: PromptOptions): Promise<string> {
    const r = this.r;
    if (!r.canPrompt || !r.prompt) throw new TaskError(fail.missingSecret('input', 'no terminal to ask on'));
    return r.prompt(this.task, opts);
  }
}

export async function runTask(r: TaskRun): Promise<TaskOutcome> {
  const { target, kind, state, abort } = r;
  const name = target.name;
  const prev = r.previous;
  let timer: NodeJS.Timeout | undefined;
  if (target.timeoutMs) timer = setTimeout(() => abort.abort('timeout'), target.timeoutMs);

  const logFile = logFileFor(r.dataDir, name);
  r.ensureDir(dirname(logFile));
  const recorded: UndoDescriptor[] = [];
  const ctx = new Context(r, logFile, recorded);

  try {
    // The kind's run raced against the task's abort: one promise, settled by whichever is first.
    const result = await new Promise<TaskResult>((res, rej) => {
      const run = kind.run(ctx);
      if (abort.aborted) rej(abort.reason);
      else abort.onAbort = () => rej(abort.reason);
      run.then(res, rej);
    });
    const satisfied = result.satisfied === true;
    const undo = satisfied ? (prev?.undo ?? []) : recorded.length === 0 && !result.undo?.length ? [] : dedupe([...recorded, ...(result.undo ?? [])]);
    const out = result.outputs ?? {};
    const status = kind.mode === 'service' ? 'ready' : 'done';
    state.update(
      name,
      {
        kind: target.spec.uses,
        status,
        specHash: target.specHash,
        outputs: kind.pure ? maskDeep(out) : out,
        undo,
        needs: target.needs,
        seq: state.nextSeq(),
        startedAt: satisfied ? (prev?.startedAt ?? isoAt(Date.now(), lastStart)) : (state.record(name)?.startedAt ?? isoAt(Math.trunc(Date.now() - (performance.now() - r.t0)), lastStart)),
        finishedAt: isoAt(Date.now(), lastFinish),
        durationMs: Math.round(performance.now() - r.t0),
        error: undefined,
        lastProbe: result.lastProbe,
      },
      undo.length > 0 && !satisfied && !(r.callerWritesReady && status === 'ready'),
    );
    const changed = !satisfied && (undo.length > 0 || !kind.pure);
    if (undo.length > 0 && !satisfied && state.writeError) {
      return { status: 'failed', failure: fail.writeFailed('record it in', state.path, errnoText(state.writeError.cause)), changed: true };
    }
    r.emit({ type: status, task: name, durationMs: performance.now() - r.t0, satisfied, ...(result.summary ? { summary: mask(result.summary) } : {}), mode: kind.mode });
    return { status, outputs: out, changed, ...(result.running ? { running: result.running } : {}) };
  } catch (err) {
    const changed = recorded.length > 0;
    if (err instanceof TaskError) return { status: 'failed', failure: err.failure, changed };
    if (abort.aborted && abort.reason === 'timeout') return { status: 'failed', failure: fail.timeout(target.timeoutMs ?? 0), changed };
    if (abort.aborted) {
      state.update(name, { status: 'cancelled' }, changed);
      r.emit({ type: 'cancelled', task: name, why: String(abort.reason), durationMs: performance.now() - r.t0 });
      return { status: 'cancelled', changed };
    }
    // A file the kind could not write (its log on a full disk): the path and errno, not a stack.
    if (isFsError(err) && err.path) return { status: 'failed', failure: fail.writeFailed('write', err.path, errnoText(err)), changed };
    return { status: 'failed', failure: fail.internalError(target.spec.uses, err), changed };
  } finally {
    if (timer) clearTimeout(timer);
    abort.onAbort = undefined;
  }
}

/** The last start and finish times, apart (one cache for both missed at every call): tasks finish in bursts within one millisecond. */
const lastStart = { ms: NaN, text: '' };
const lastFinish = { ms: NaN, text: '' };

/** `new Date(ms).toISOString()` for an integer `ms`, from `last` when it is the same (records then share the string). */
function isoAt(ms: number, last: { ms: number; text: string }): string {
  if (ms !== last.ms) {
    last.text = new Date(ms).toISOString();
    last.ms = ms;
  }
  return last.text;
}

function dedupe(undo: UndoDescriptor[]): UndoDescriptor[] {
  const seen = new Set<string>();
  return undo.filter((u) => {
    const k = JSON.stringify(u);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
