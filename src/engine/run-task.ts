/**
 * One task's run: build the kind's context, race the kind against the task's abort signal and
 * timeout, and record the outcome in the state file. The scheduler (run.ts) decides when a task
 * runs and what its outcome means for the rest of the graph.
 */
import { dirname } from 'node:path';
import { fail, type Failure } from '../model/failure.js';
import type { EventInput } from '../model/event.js';
import { TaskError, type PromptOptions, type RunningInstance, type TaskContext, type TaskKind, type TaskRecord, type UndoDescriptor } from '../model/kind.js';
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
  abort: AbortController;
  canPrompt: boolean;
  noInput?: boolean;
  prompt: ((task: string, options: PromptOptions) => Promise<string>) | undefined;
  /** the engine's process stays and supervises (TaskContext.supervised) */
  supervised?: boolean;
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

export async function runTask(r: TaskRun): Promise<TaskOutcome> {
  const { target, kind, state, abort } = r;
  const name = target.name;
  const prev = r.previous;
  let timer: NodeJS.Timeout | undefined;
  if (target.timeoutMs) timer = setTimeout(() => abort.abort('timeout'), target.timeoutMs);

  const recorded: UndoDescriptor[] = [];
  const logFile = logFileFor(r.dataDir, name);
  r.ensureDir(dirname(logFile));
  let last = 0;
  const ctx: TaskContext<any> = {
    task: name,
    with: target.with,
    env: target.env,
    ...(target.timeoutMs ? { timeoutMs: target.timeoutMs } : {}),
    baseDir: r.baseDir,
    dataDir: r.dataDir,
    logFile,
    signal: abort.signal,
    ...(prev ? { previous: prev } : {}),
    specHash: target.specHash,
    force: r.force,
    canPrompt: r.canPrompt && !!r.prompt,
    ...(r.supervised ? { supervised: true } : {}),
    ...(r.noInput ? { noInput: true } : {}),
    output: (line) => {
      if (r.live()) r.emit({ type: 'output', task: name, line: mask(line) });
    },
    progress: (p) => {
      const now = performance.now();
      if (!r.live() || (now - last < 100 && p.done !== p.total)) return;
      last = now;
      r.emit({ type: 'progress', task: name, progress: p });
    },
    recordUndo: (u) => {
      recorded.push(u);
      state.update(name, { kind: target.spec.uses, status: 'running', needs: target.needs, specHash: target.specHash, startedAt: new Date().toISOString() });
      state.addUndo(name, u);
      // Not on disk: a kill -9 now would orphan it. Fail the task; the rollback stops it from memory.
      if (state.writeError) throw new TaskError(fail.writeFailed('record it in', state.path, errnoText(state.writeError.cause)));
    },
    forgetUndo: (u) => {
      const key = JSON.stringify(u);
      const at = recorded.findIndex((x) => JSON.stringify(x) === key);
      if (at >= 0) recorded.splice(at, 1);
      state.forgetUndo(name, u);
    },
    secret: (v) => registerSecret(v),
    prompt: async (opts) => {
      if (!r.canPrompt || !r.prompt) throw new TaskError(fail.missingSecret('input', 'no terminal to ask on'));
      return r.prompt(name, opts);
    },
  };

  const aborted = new Promise<never>((_, rej) => {
    if (abort.signal.aborted) rej(abort.signal.reason);
    abort.signal.addEventListener('abort', () => rej(abort.signal.reason), { once: true });
  });
  aborted.catch(() => {});
  try {
    const result = await Promise.race([kind.run(ctx), aborted]);
    const satisfied = result.satisfied === true;
    const undo = satisfied ? (prev?.undo ?? []) : dedupe([...recorded, ...(result.undo ?? [])]);
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
        startedAt: satisfied ? (prev?.startedAt ?? new Date().toISOString()) : (state.record(name)?.startedAt ?? new Date(Date.now() - (performance.now() - r.t0)).toISOString()),
        finishedAt: new Date().toISOString(),
        durationMs: Math.round(performance.now() - r.t0),
        error: undefined,
        lastProbe: result.lastProbe,
      },
      undo.length > 0 && !satisfied,
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
    if (abort.signal.aborted && abort.signal.reason === 'timeout') return { status: 'failed', failure: fail.timeout(target.timeoutMs ?? 0), changed };
    if (abort.signal.aborted) {
      state.update(name, { status: 'cancelled' }, changed);
      r.emit({ type: 'cancelled', task: name, why: String(abort.signal.reason), durationMs: performance.now() - r.t0 });
      return { status: 'cancelled', changed };
    }
    // A file the kind could not write (its log on a full disk): the path and errno, not a stack.
    if (isFsError(err) && err.path) return { status: 'failed', failure: fail.writeFailed('write', err.path, errnoText(err)), changed };
    return { status: 'failed', failure: fail.internalError(target.spec.uses, err), changed };
  } finally {
    if (timer) clearTimeout(timer);
  }
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
