/**
 * The engine: runs a graph with true maximum concurrency (a task starts the moment its needs are
 * done or ready, bounded by `concurrency`), records every undo step in the state file before
 * moving on, and stops everything on the first failure or interrupt.
 *
 *   pending --needs settled--> waiting --slot--> running --> ready | done
 *      |                                            |--> failed (a non-optional failure aborts the run)
 *      |--> skipped (if: false, a need failed, run stopped, already satisfied)
 *                                                   |--> cancelled (run aborted while running)
 *
 * Nothing here renders: it emits events. Undo lives in src/engine/rollback.ts.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { durationOr } from '../util/duration.js';
import { evaluate, truthy, EvalError, type Scope } from './expressions.js';
import { fail, type Failure } from '../model/failure.js';
import type { Graph } from './graph.js';
import { mask, maskDeep, registerSecret } from '../util/mask.js';
import { logFileFor } from '../util/paths.js';
import type { StateStore } from './state.js';
import { TaskError, type Progress, type PromptOptions, type TaskContext, type TaskKind, type TaskRecord, type TaskStatus, type UndoDescriptor } from '../model/kind.js';
import { loadKind } from '../../tasks/index.js';
import { executeUndo } from './undo.js';

export type EngineEventType =
  | 'queued'
  | 'waiting'
  | 'started'
  | 'output'
  | 'progress'
  | 'ready'
  | 'done'
  | 'skipped'
  | 'failed'
  | 'cancelled'
  | 'undo-started'
  | 'undone'
  | 'undo-failed';

export interface EngineEvent {
  type: EngineEventType;
  task: string;
  /** epoch ms */
  time: number;
  durationMs?: number;
  /** why it was skipped / cancelled */
  reason?: string;
  failure?: Failure;
  line?: string;
  progress?: Progress;
  summary?: string;
  /** for `waiting`/`queued`: the needs not yet settled */
  needs?: string[];
  /** for ready/done: nothing changed, an existing service/install was reused */
  satisfied?: boolean;
  /** for failed: the task is optional, the failure is only a warning */
  optional?: boolean;
  mode?: 'oneshot' | 'service';
}

export interface RunOptions {
  graph: Graph;
  /** directory relative paths resolve against */
  baseDir: string;
  dataDir: string;
  state: StateStore;
  config: unknown;
  env: Record<string, string | undefined>;
  concurrency?: number;
  signal: AbortSignal;
  /** rerun these even when satisfied (`stigmer run <task>`); their previous instance is undone first */
  force?: Set<string>;
  /** `run --no-deps`: take these tasks' outputs from the state instead of running them (pure kinds still run) */
  useRecorded?: Set<string>;
  canPrompt: boolean;
  prompt?: (task: string, options: PromptOptions) => Promise<string>;
  emit: (ev: EngineEvent) => void;
}

export interface RunOutcome {
  ok: boolean;
  /** non-optional tasks that failed */
  failed: string[];
  /** optional tasks that failed (warnings) */
  warnings: string[];
  /** set when the run was aborted by the caller's signal */
  interrupted?: unknown;
  /** tasks this run changed the world for (started a process, installed...), in completion order */
  changed: string[];
  status: Map<string, TaskStatus>;
  outputs: Map<string, Record<string, unknown>>;
}

class Semaphore {
  private free: number;
  private queue: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.queue.push(r));
  }
  give(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}

export function specHash(uses: string, w: unknown, env: unknown): string {
  return createHash('sha256').update(JSON.stringify({ uses, with: w, env })).digest('hex').slice(0, 16);
}

/** A need is settled-ok when dependents may use it. */
const OK: ReadonlySet<TaskStatus> = new Set(['ready', 'done', 'skipped']);

export async function runGraph(o: RunOptions): Promise<RunOutcome> {
  const { graph, state } = o;
  const status = new Map<string, TaskStatus>();
  const blocked = new Map<string, string>(); // task -> why it cannot run
  const outputs = new Map<string, Record<string, unknown>>();
  const failed: string[] = [];
  const warnings: string[] = [];
  const changed: string[] = [];
  const unsettled = new Map<string, number>();
  const sem = new Semaphore(Math.max(1, o.concurrency ?? Infinity));
  // The abort controllers of the tasks in flight, aborted by `halt` (an abort listener per task
  // on one shared signal made starting tasks quadratic on large graphs).
  const inflight = new Set<AbortController>();
  // Log directories already created this run (one mkdir per task showed up at scale).
  const logDirs = new Set<string>();
  let stopReason: string | undefined;
  let remaining = graph.nodes.size;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const running = new Set<Promise<void>>();
  const useRecorded = o.useRecorded ?? new Set<string>();

  // `${{ tasks.X.outputs.Y }}` reads the outputs so far through this view: copying them into a
  // scope for every task made large graphs quadratic.
  const taskOutputs = new Proxy({} as Scope['tasks'], {
    get: (_target, task) => {
      const out = typeof task === 'string' ? outputs.get(task) : undefined;
      return out && { outputs: out };
    },
  });

  const emit = (ev: Omit<EngineEvent, 'time'>): void => o.emit({ ...ev, time: Date.now() });
  const onAbort = (): void => halt(`interrupted by ${String(o.signal.reason ?? 'signal')}`);
  o.signal.addEventListener('abort', onAbort, { once: true });

  function halt(why: string): void {
    if (stopReason) return;
    stopReason = why;
    for (const c of inflight) c.abort(why);
    // Everything not yet running will never run.
    for (const name of graph.order) if (status.get(name) === 'pending' || status.get(name) === 'waiting') settle(name, 'skipped', `not started: ${why}`);
  }

  function settle(name: string, s: TaskStatus, reason?: string, ev?: Partial<EngineEvent>): void {
    const prev = status.get(name);
    if (prev && prev !== 'pending' && prev !== 'waiting' && prev !== 'running') return;
    status.set(name, s);
    if (s === 'skipped') emit({ type: 'skipped', task: name, ...(reason ? { reason } : {}), ...ev });
    remaining--;
    const node = graph.nodes.get(name)!;
    const bad = s === 'failed' && !node.spec.optional ? `needs ${name}, which failed` : s === 'cancelled' ? `needs ${name}, which was cancelled` : blocked.has(name) ? `needs ${name}, which was skipped` : undefined;
    for (const d of node.dependents) {
      if (status.get(d) !== 'pending') continue;
      if (bad) {
        blocked.set(d, bad);
        settle(d, 'skipped', bad);
        continue;
      }
      const left = unsettled.get(d)! - 1;
      unsettled.set(d, left);
      if (left === 0) schedule(d);
    }
    if (remaining === 0) finish();
  }

  function schedule(name: string): void {
    if (stopReason) return settle(name, 'skipped', `not started: ${stopReason}`);
    status.set(name, 'waiting');
    const p = (async () => {
      await sem.take();
      try {
        if (status.get(name) !== 'waiting') return; // skipped meanwhile
        status.set(name, 'running');
        await runOne(name);
      } finally {
        sem.give();
      }
    })();
    running.add(p);
    void p.finally(() => running.delete(p));
  }

  async function runOne(name: string): Promise<void> {
    const node = graph.nodes.get(name)!;
    const spec = node.spec;
    const t0 = performance.now();
    const scope: Scope = { config: o.config, env: o.env, tasks: taskOutputs };
    const previous: TaskRecord | undefined = state.record(name);

    let kind: TaskKind<any>;
    try {
      kind = await loadKind(spec.uses);
    } catch (err) {
      return onFailure(name, fail.taskError(`cannot load task kind ${spec.uses}: ${(err as Error).message}`), t0, 'oneshot');
    }

    // --no-deps: a need's recorded outputs stand in for running it (pure kinds are cheap: run them).
    if (useRecorded.has(name) && !kind.pure) {
      outputs.set(name, previous?.outputs ?? {});
      settle(name, 'skipped', 'using its recorded outputs (--no-deps)');
      return;
    }

    let resolved: { with: Record<string, unknown>; env: Record<string, string>; timeoutMs?: number };
    try {
      if (spec.if !== undefined && !truthy(evaluate(spec.if, scope))) {
        outputs.set(name, {});
        settle(name, 'skipped', `if: ${typeof spec.if === 'string' ? spec.if : JSON.stringify(spec.if)} is false`);
        return;
      }
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(evaluate(spec.env, scope) as Record<string, unknown>)) env[k] = typeof v === 'string' ? v : JSON.stringify(v);
      const timeout = spec.timeout === undefined ? undefined : durationOr(evaluate(spec.timeout, scope), 0, `tasks.${name}.timeout`);
      resolved = { with: evaluate(spec.with, scope) as Record<string, unknown>, env, ...(timeout ? { timeoutMs: timeout } : {}) };
    } catch (err) {
      emit({ type: 'started', task: name, mode: kind.mode });
      const msg = err instanceof EvalError || err instanceof Error ? err.message : String(err);
      return onFailure(name, fail.invalidInput(msg), t0, kind.mode);
    }

    emit({ type: 'started', task: name, mode: kind.mode });
    const force = o.force?.has(name) ?? false;
    const hash = specHash(spec.uses, resolved.with, resolved.env);
    let prev = previous;
    if (force && prev?.undo.length) {
      // `run <task>`: stop the previous instance before starting a new one.
      for (const u of [...prev.undo].reverse()) {
        try {
          emit({ type: 'output', task: name, line: await executeUndo(u, {}) });
        } catch (err) {
          return onFailure(name, fail.rollbackFailed(`could not stop its previous instance: ${(err as Error).message}`), t0, kind.mode);
        }
      }
      state.update(name, { status: 'undone', undo: [] }, true);
      prev = undefined;
    }

    const taskAbort = new AbortController();
    inflight.add(taskAbort);
    let timer: NodeJS.Timeout | undefined;
    if (resolved.timeoutMs) timer = setTimeout(() => taskAbort.abort('timeout'), resolved.timeoutMs);

    const recorded: UndoDescriptor[] = [];
    const logFile = logFileFor(o.dataDir, name);
    if (!logDirs.has(dirname(logFile))) {
      mkdirSync(dirname(logFile), { recursive: true });
      logDirs.add(dirname(logFile));
    }
    let last = 0;
    const ctx: TaskContext<any> = {
      task: name,
      with: resolved.with,
      env: resolved.env,
      ...(resolved.timeoutMs ? { timeoutMs: resolved.timeoutMs } : {}),
      baseDir: o.baseDir,
      dataDir: o.dataDir,
      logFile,
      signal: taskAbort.signal,
      ...(prev ? { previous: prev } : {}),
      specHash: hash,
      force,
      canPrompt: o.canPrompt && !!o.prompt,
      output: (line) => {
        if (status.get(name) === 'running') emit({ type: 'output', task: name, line: mask(line) });
      },
      progress: (p) => {
        const now = performance.now();
        if (status.get(name) !== 'running' || (now - last < 100 && p.done !== p.total)) return;
        last = now;
        emit({ type: 'progress', task: name, progress: p });
      },
      recordUndo: (u) => {
        recorded.push(u);
        state.update(name, { kind: spec.uses, status: 'running', needs: node.needs, specHash: hash, startedAt: new Date().toISOString() });
        state.addUndo(name, u);
      },
      secret: (v) => registerSecret(v),
      prompt: async (opts) => {
        if (!o.canPrompt || !o.prompt) throw new TaskError(fail.missingSecret('input', 'no terminal to ask on'));
        return o.prompt(name, opts);
      },
    };

    const aborted = new Promise<never>((_, rej) => {
      if (taskAbort.signal.aborted) rej(taskAbort.signal.reason);
      taskAbort.signal.addEventListener('abort', () => rej(taskAbort.signal.reason), { once: true });
    });
    aborted.catch(() => {});
    try {
      const result = await Promise.race([kind.run(ctx), aborted]);
      const satisfied = result.satisfied === true;
      const undo = satisfied ? (prev?.undo ?? []) : dedupe([...recorded, ...(result.undo ?? [])]);
      const out = result.outputs ?? {};
      outputs.set(name, out);
      const s: TaskStatus = kind.mode === 'service' ? 'ready' : 'done';
      state.update(
        name,
        {
          kind: spec.uses,
          status: s,
          specHash: hash,
          outputs: kind.pure ? maskDeep(out) : out,
          undo,
          needs: node.needs,
          seq: state.nextSeq(),
          startedAt: satisfied ? (prev?.startedAt ?? new Date().toISOString()) : (state.record(name)?.startedAt ?? new Date(Date.now() - (performance.now() - t0)).toISOString()),
          finishedAt: new Date().toISOString(),
          durationMs: Math.round(performance.now() - t0),
          error: undefined,
          lastProbe: result.lastProbe,
        },
        undo.length > 0 && !satisfied,
      );
      if (!satisfied && (undo.length > 0 || !kind.pure)) changed.push(name);
      emit({ type: s, task: name, durationMs: performance.now() - t0, satisfied, ...(result.summary ? { summary: mask(result.summary) } : {}), mode: kind.mode });
      settle(name, s);
    } catch (err) {
      let failure: Failure;
      if (err instanceof TaskError) failure = err.failure;
      else if (taskAbort.signal.aborted && taskAbort.signal.reason === 'timeout') failure = fail.timeout(resolved.timeoutMs ?? 0);
      else if (taskAbort.signal.aborted) {
        if (recorded.length) changed.push(name);
        state.update(name, { status: 'cancelled' }, recorded.length > 0);
        emit({ type: 'cancelled', task: name, reason: String(taskAbort.signal.reason), durationMs: performance.now() - t0 });
        settle(name, 'cancelled');
        return;
      } else failure = fail.taskError(`internal error in task kind ${spec.uses}: ${(err as Error)?.stack ?? String(err)}`);
      if (recorded.length) changed.push(name);
      onFailure(name, failure, t0, kind.mode);
    } finally {
      if (timer) clearTimeout(timer);
      inflight.delete(taskAbort);
    }
  }

  function onFailure(name: string, failure: Failure, t0: number, mode: 'oneshot' | 'service'): void {
    const node = graph.nodes.get(name)!;
    const hint = node.spec.hints?.[failure.reason];
    if (hint !== undefined) {
      try {
        failure = { ...failure, hint: String(evaluate(hint, { config: o.config, env: o.env, tasks: taskOutputs })) };
      } catch {
        failure = { ...failure, hint };
      }
    }
    const masked = maskDeep(failure);
    state.update(name, { kind: node.spec.uses, status: 'failed', error: masked.message, needs: node.needs }, true);
    emit({ type: 'failed', task: name, failure: masked, durationMs: performance.now() - t0, optional: node.spec.optional, mode });
    if (node.spec.optional) {
      warnings.push(name);
      outputs.set(name, {});
    } else failed.push(name);
    settle(name, 'failed');
    if (!node.spec.optional) halt(`${name} failed`);
  }

  // Start: everything is queued; roots run at once.
  for (const name of graph.order) {
    const node = graph.nodes.get(name)!;
    status.set(name, 'pending');
    unsettled.set(name, node.needs.length);
    emit({ type: 'queued', task: name, needs: node.needs });
  }
  if (o.signal.aborted) onAbort();
  if (graph.nodes.size === 0) finish();
  // Load every kind the graph uses now, while the first tasks run, not when each is first needed.
  for (const uses of new Set([...graph.nodes.values()].map((n) => n.spec.uses))) loadKind(uses).catch(() => {});
  const roots = graph.order.filter((name) => status.get(name) === 'pending' && unsettled.get(name) === 0);
  for (const name of roots.sort((a, b) => graph.nodes.get(b)!.height - graph.nodes.get(a)!.height)) schedule(name);
  await finished;
  await Promise.allSettled([...running]);
  o.signal.removeEventListener('abort', onAbort);
  state.save();
  return {
    ok: failed.length === 0 && !o.signal.aborted,
    failed,
    warnings,
    ...(o.signal.aborted ? { interrupted: o.signal.reason } : {}),
    changed,
    status,
    outputs,
  };
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
