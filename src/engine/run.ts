/**
 * The scheduler: runs a graph with true maximum concurrency (a task starts the moment its needs
 * are done or ready, bounded by `concurrency`), and stops everything on the first failure or
 * interrupt. `resolveTask` turns a node into a `Target`, `runTask` runs one; this file decides
 * when, and what each outcome means for the tasks that need it.
 *
 *   pending --needs settled--> waiting --slot--> running --> ready | done (satisfied: true when reused)
 *      |                          |                 |--> failed (a non-optional failure stops the run)
 *      |                          |                 |--> cancelled (the run stopped while it ran)
 *      |                          |                 '--> skipped (if: false; --no-deps used its recorded outputs)
 *      '--------------------------'--> skipped (a need failed or was skipped; the run stopped first)
 *
 * Nothing here renders: it emits events. Undo lives in src/engine/rollback.ts.
 */
import { mkdirSync } from 'node:fs';
import { evaluate, type Scope } from './expressions.js';
import { describeFailure, fail, type Failure } from '../model/failure.js';
import type { EngineEvent, EventInput } from '../model/event.js';
import type { Graph } from './graph.js';
import { maskDeep } from '../util/mask.js';
import type { StateStore } from './state.js';
import type { KindRegistry, PromptOptions, RunningInstance, TaskKind, TaskStatus } from '../model/kind.js';
import type { TaskNode } from '../model/task.js';
import { resolveTask } from './resolve-task.js';
import { runTask, stopPrevious, TaskAbort, type TaskOutcome } from './run-task.js';

export interface RunOptions {
  graph: Graph;
  /** where the graph's `uses:` names are loaded from */
  kinds: KindRegistry;
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
  /** the user said --no-input */
  noInput?: boolean;
  prompt?: (task: string, options: PromptOptions) => Promise<string>;
  emit: (ev: EngineEvent) => void;
  /** the caller stays and supervises the services (the supervisor daemon): see RunOutcome.services */
  supervised?: boolean;
}

/**
 * A service this run started or adopted, for the supervisor: its instance, and how to run its
 * task again (same resolved inputs; its needs are not run again; a new undo record is written
 * before its readiness probe runs; its ready record is left for the caller to write, which the
 * watch loop does at once). `state`: the store that records it (default: this run's; the
 * supervisor daemon passes the one in use when it restarts the service, a later request's).
 */
export interface ServiceRun {
  running: RunningInstance;
  rerun(signal: AbortSignal, emit: (ev: EventInput) => void, state?: StateStore): Promise<TaskOutcome>;
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
  /** with `supervised`: every service that is ready, by task */
  services: Map<string, ServiceRun>;
}

/**
 * How many tasks one drain starts before it lets them take a step. Thousands of in-process tasks
 * ready at once (the roots of a big graph) then run in waves, not all interleaved: what each holds
 * while it is in flight dies young instead of filling the old generation. A wave follows the one
 * before within the same turn of the event loop (a microtask later).
 */
const WAVE = 256;

export async function runGraph(o: RunOptions): Promise<RunOutcome> {
  return new Scheduler(o).run();
}

/** The state of one run of a graph, and the transitions between task states. */
class Scheduler {
  private readonly status = new Map<string, TaskStatus>();
  private readonly outputs = new Map<string, Record<string, unknown>>();
  private readonly services = new Map<string, ServiceRun>();
  /** task -> why it cannot run (a need failed, was cancelled or skipped for that reason) */
  private readonly blocked = new Map<string, string>();
  /** task -> how many of its needs have not settled yet */
  private readonly unsettled = new Map<string, number>();
  private readonly failed: string[] = [];
  private readonly warnings: string[] = [];
  private readonly changed: string[] = [];
  /** free concurrency slots */
  private free: number;
  /** tasks whose needs settled, waiting for a slot, in the order they became ready */
  private readonly ready: string[] = [];
  private readyAt = 0;
  private draining = false;
  private drainQueued = false;
  // The abort controllers of the tasks in flight, aborted by `halt` (an abort listener per task
  // on one shared signal made starting tasks quadratic on large graphs).
  private readonly inflight = new Set<TaskAbort>();
  // Log directories already created this run (one mkdir per task showed up at scale).
  private readonly logDirs = new Set<string>();
  /** kinds loaded so far, by `uses` (a task whose kind is loaded starts without a turn of the event loop) */
  private readonly kindsLoaded = new Map<string, TaskKind<any>>();
  /** kinds still loading -> the tasks ready meanwhile, which wait for it here (still 'waiting') */
  private readonly kindsLoading = new Map<string, string[]>();
  /** tasks started and not yet through their bookkeeping (slot given back, controller dropped) */
  private active = 0;
  private idle: (() => void) | undefined;
  private readonly useRecorded: Set<string>;
  /** `${{ tasks.X.outputs.Y }}` reads the outputs so far through this view: copying them into a
   * scope for every task made large graphs quadratic. */
  private readonly taskOutputs: Scope['tasks'];
  private stopReason: string | undefined;
  private remaining: number;
  private finish!: () => void;
  private readonly finished = new Promise<void>((r) => (this.finish = r));

  constructor(private readonly o: RunOptions) {
    this.free = Math.max(1, o.concurrency ?? Infinity);
    this.remaining = o.graph.nodes.size;
    this.useRecorded = o.useRecorded ?? new Set<string>();
    const outputs = this.outputs;
    this.taskOutputs = new Proxy({} as Scope['tasks'], {
      get: (_target, task) => {
        const out = typeof task === 'string' ? outputs.get(task) : undefined;
        return out && { outputs: out };
      },
    });
  }

  async run(): Promise<RunOutcome> {
    const { graph, signal } = this.o;
    const onAbort = (): void => this.halt(`interrupted by ${String(signal.reason ?? 'signal')}`);
    signal.addEventListener('abort', onAbort, { once: true });
    // Start: everything is queued; roots run at once.
    for (const name of graph.order) {
      const node = this.node(name);
      this.status.set(name, 'pending');
      this.unsettled.set(name, node.needs.length);
      this.emit({ type: 'queued', task: name, needs: node.needs });
    }
    if (signal.aborted) onAbort();
    if (graph.nodes.size === 0) this.finish();
    // Load every kind the graph uses now, while the first tasks run, not when each is first needed.
    for (const uses of new Set([...graph.nodes.values()].map((n) => n.spec.uses))) {
      this.kindsLoading.set(uses, []);
      const loaded = (): void => {
        // What waited for it goes back in line (a failed load fails them in start()).
        const parked = this.kindsLoading.get(uses) ?? [];
        this.kindsLoading.delete(uses);
        for (const name of parked) this.ready.push(name);
        this.drain();
      };
      this.o.kinds.load(uses).then(
        (kind) => {
          this.kindsLoaded.set(uses, kind);
          loaded();
        },
        loaded,
      );
    }
    const roots = graph.order.filter((name) => this.status.get(name) === 'pending' && this.unsettled.get(name) === 0);
    for (const name of roots.sort((a, b) => this.node(b).height - this.node(a).height)) this.schedule(name);
    await this.finished;
    if (this.active > 0) await new Promise<void>((r) => (this.idle = r));
    signal.removeEventListener('abort', onAbort);
    this.o.state.save();
    return {
      ok: this.failed.length === 0 && !signal.aborted,
      failed: this.failed,
      warnings: this.warnings,
      ...(signal.aborted ? { interrupted: signal.reason } : {}),
      changed: this.changed,
      status: this.status,
      outputs: this.outputs,
      services: this.services,
    };
  }

  private node(name: string): TaskNode {
    return this.o.graph.nodes.get(name)!;
  }

  /** Stamps the event in place (each is a fresh object from its emitter): \`time\` comes last, as a copy would put it. */
  private emit(ev: EventInput): void {
    (ev as EngineEvent).time = Date.now();
    this.o.emit(ev as EngineEvent);
  }

  private readonly emitBound = (ev: EventInput): void => this.emit(ev);

  /** Stop the run: abort what is in flight, skip what has not started. */
  private halt(why: string): void {
    if (this.stopReason) return;
    this.stopReason = why;
    for (const c of this.inflight) c.abort(why);
    for (const name of this.o.graph.order) {
      const s = this.status.get(name);
      if (s === 'pending' || s === 'waiting') this.settle(name, 'skipped', `not started: ${why}`);
    }
  }

  /** A task reached a final state: release its dependents, or skip them when it failed. */
  private settle(name: string, s: TaskStatus, why = ''): void {
    const prev = this.status.get(name);
    if (prev && prev !== 'pending' && prev !== 'waiting' && prev !== 'running') return;
    this.status.set(name, s);
    if (s === 'skipped') this.emit({ type: 'skipped', task: name, why });
    this.remaining--;
    const node = this.node(name);
    const bad =
      s === 'failed' && !node.spec.optional
        ? `needs ${name}, which failed`
        : s === 'cancelled'
          ? `needs ${name}, which was cancelled`
          : this.blocked.has(name)
            ? `needs ${name}, which was skipped`
            : undefined;
    for (const d of node.dependents) {
      if (this.status.get(d) !== 'pending') continue;
      if (bad) {
        this.blocked.set(d, bad);
        this.settle(d, 'skipped', bad);
        continue;
      }
      const left = this.unsettled.get(d)! - 1;
      this.unsettled.set(d, left);
      if (left === 0) this.schedule(d);
    }
    if (this.remaining === 0) this.finish();
  }

  /** Its needs settled: wait for a slot, then run it (unless the run stopped meanwhile). */
  private schedule(name: string): void {
    if (this.stopReason) return this.settle(name, 'skipped', `not started: ${this.stopReason}`);
    this.status.set(name, 'waiting');
    this.ready.push(name);
    this.drain();
  }

  /**
   * Start waiting tasks while slots are free, in the order they became ready. A loop, not a
   * recursion: a task that settles at once (skipped by \`if:\`) schedules its dependents here
   * without growing the stack, and a task start costs no promise of its own.
   */
  private drain(): void {
    if (this.draining || this.drainQueued) return;
    this.draining = true;
    try {
      let started = 0;
      while (this.free > 0 && this.readyAt < this.ready.length) {
        if (started === WAVE) {
          // The rest after what just started has taken its next step (a microtask later).
          this.drainQueued = true;
          queueMicrotask(this.drainLater);
          break;
        }
        const name = this.ready[this.readyAt++]!;
        if (this.status.get(name) !== 'waiting') continue; // skipped meanwhile
        const parked = this.kindsLoading.get(this.node(name).spec.uses);
        if (parked) {
          parked.push(name);
          continue;
        }
        this.free--;
        this.active++;
        started++;
        this.status.set(name, 'running');
        void this.start(name).then(this.released, this.releasedFailed);
      }
      if (this.readyAt === this.ready.length) {
        this.ready.length = 0;
        this.readyAt = 0;
      }
    } finally {
      this.draining = false;
    }
  }

  private readonly drainLater = (): void => {
    this.drainQueued = false;
    this.drain();
  };

  private readonly released = (): void => this.release();
  /** start() does not throw; if it did, the rejection stays unhandled, as it would without this. */
  private readonly releasedFailed = (err: unknown): never => {
    this.release();
    throw err;
  };

  /** A started task is through: give its slot to the next waiting task. */
  private release(): void {
    this.free++;
    this.active--;
    this.drain();
    if (this.active === 0 && this.idle) this.idle();
  }

  /** Creates a log directory once per run. */
  private readonly ensureDir = (dir: string): void => {
    if (this.logDirs.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.logDirs.add(dir);
  };

  private scope(): Scope {
    return { config: this.o.config, env: this.o.env, tasks: this.taskOutputs };
  }

  /** Load its kind, resolve its inputs, stop a forced task's previous instance, run it. */
  private async start(name: string): Promise<void> {
    const o = this.o;
    const node = this.node(name);
    const t0 = performance.now();
    let previous = o.state.record(name);

    let kind = this.kindsLoaded.get(node.spec.uses);
    if (!kind) {
      try {
        kind = await o.kinds.load(node.spec.uses);
      } catch (err) {
        return this.onFailure(name, fail.internalError(node.spec.uses, `could not load it: ${(err as Error).message}`), t0, 'oneshot');
      }
    }

    // --no-deps: a need's recorded outputs stand in for running it (pure kinds are cheap: run them).
    if (this.useRecorded.has(name) && !kind.pure) {
      this.outputs.set(name, previous?.outputs ?? {});
      // Its needs as the file says now: a stale recorded edge could close a cycle with the rerun task.
      if (previous) o.state.update(name, { needs: node.needs });
      return this.settle(name, 'skipped', 'using its recorded outputs (--no-deps)');
    }

    const resolved = resolveTask(node, this.scope());
    if (!resolved.ok) {
      this.emit({ type: 'started', task: name, mode: kind.mode });
      return this.onFailure(name, resolved.error, t0, kind.mode);
    }
    if ('skip' in resolved.value) {
      this.outputs.set(name, {});
      return this.settle(name, 'skipped', resolved.value.skip);
    }
    const target = resolved.value.run;

    this.emit({ type: 'started', task: name, mode: kind.mode });
    const force = o.force?.has(name) ?? false;
    if (force && previous?.undo.length) {
      const failure = await stopPrevious(name, previous, o.state, (ev) => this.emit(ev));
      if (failure) return this.onFailure(name, failure, t0, kind.mode);
      previous = undefined;
    }

    const abort = new TaskAbort();
    this.inflight.add(abort);
    const ensureDir = this.ensureDir;
    try {
      const outcome = await runTask({
        target,
        kind,
        state: o.state,
        baseDir: o.baseDir,
        dataDir: o.dataDir,
        previous,
        force,
        abort,
        canPrompt: o.canPrompt,
        ...(o.noInput ? { noInput: true } : {}),
        prompt: o.prompt,
        ...(o.supervised ? { supervised: true } : {}),
        t0,
        live: () => this.status.get(name) === 'running',
        ensureDir,
        emit: this.emitBound,
      });
      if (outcome.status === 'ready' && outcome.running) {
        // Run again by the supervisor: same inputs, never a prompt, its record's instance replaced.
        const rerun = (signal: AbortSignal, emit: (ev: EventInput) => void, state = o.state): Promise<TaskOutcome> => {
          const again = new TaskAbort();
          if (signal.aborted) again.abort(signal.reason);
          else signal.addEventListener('abort', () => again.abort(signal.reason), { once: true });
          return runTask({
            target,
            kind,
            state,
            baseDir: o.baseDir,
            dataDir: o.dataDir,
            previous: state.record(name),
            force: true,
            abort: again,
            canPrompt: false,
            prompt: undefined,
            supervised: true,
            callerWritesReady: true,
            t0: performance.now(),
            live: () => true,
            ensureDir,
            emit,
          });
        };
        this.services.set(name, { running: outcome.running, rerun });
      }
      this.finishTask(name, outcome, t0, kind.mode);
    } finally {
      // After settling: a failure's halt also aborts this task's own signal.
      this.inflight.delete(abort);
    }
  }

  private finishTask(name: string, outcome: TaskOutcome, t0: number, mode: TaskKind['mode']): void {
    if (outcome.changed) this.changed.push(name);
    switch (outcome.status) {
      case 'ready':
      case 'done':
        this.outputs.set(name, outcome.outputs);
        return this.settle(name, outcome.status);
      case 'cancelled':
        return this.settle(name, 'cancelled');
      case 'failed':
        return this.onFailure(name, outcome.failure, t0, mode);
    }
  }

  /** Record and report a failure; a non-optional one stops the run. */
  private onFailure(name: string, failure: Failure, t0: number, mode: TaskKind['mode']): void {
    const node = this.node(name);
    const hint = node.spec.hints?.[failure.reason];
    if (hint !== undefined) {
      try {
        failure = { ...failure, hint: String(evaluate(hint, this.scope())) };
      } catch {
        failure = { ...failure, hint };
      }
    }
    const masked = maskDeep(failure);
    this.o.state.update(name, { kind: node.spec.uses, status: 'failed', error: describeFailure(masked).message, needs: node.needs }, true);
    this.emit({ type: 'failed', task: name, failure: masked, durationMs: performance.now() - t0, optional: node.spec.optional, mode });
    if (node.spec.optional) {
      this.warnings.push(name);
      this.outputs.set(name, {});
    } else this.failed.push(name);
    this.settle(name, 'failed');
    if (!node.spec.optional) this.halt(`${name} failed`);
  }
}
