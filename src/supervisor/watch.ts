/**
 * The watch loop: after the graph is ready, the process that ran the engine (the host: the
 * supervisor daemon, also under `up --foreground`) keeps its services up.
 *
 *   const sup = superviseServices({ dataDir, services: outcome.services, record, stopTask, logFile });
 *   sup.on((ev) => print(ev));
 *   await sup.restart('server');     // `stigmer restart server`: stop (signal, grace), start now
 *   await sup.stop();                 // before down: no restart is pending or in flight after this
 *
 * Per service:
 *
 *   ready --exit--> (policy.ts) --restart--> restarting --backoff--> rerun --ready--> ready
 *     |                  |                                             '--failed--> (counts as an exit)
 *     |                  |--crash-loop--> crash-loop (no more restarts)
 *     |                  '--none--------> exited, left down (policy no; on-failure after exit 0)
 *     '--health: `failures` failed checks--> unhealthy --stop--> (policy: as an exit, reason unhealthy)
 *
 * - A restart reruns the task (same resolved inputs): its readiness probe runs again and the new
 *   instance's undo record replaces the old one before the probe starts. Dependents are not
 *   restarted.
 * - Before the backoff the old instance's group is stopped (what it left, or the hung service
 *   with its stop signal and grace) and its undo forgotten: nothing is recorded during a backoff.
 *   Meanwhile the next spawn is prepared (`prepareRestart`: its launcher parked in its cgroup);
 *   a restart that will not happen drops it (`dropRestart`).
 * - `stop()` cancels every pending restart and waits for one in flight to settle (its new
 *   instance is recorded, so the host's undo stops it): down never races a restart.
 * - `pause()` holds still the same way while another writer has the state (a request of the
 *   supervisor daemon); `resume()` picks up where it left: an exit seen meanwhile is handled then,
 *   a cancelled backoff goes on for what was left of it, a service the request started again is
 *   watched as its new instance (restart count carried over), one it stopped is let go.
 * - Every transition is an event in `<data-dir>/events.jsonl` (events.ts), a `--- ...` line in the
 *   task's log, and fields of its state record (service, restarts, lastExit, health,
 *   nextRestartAt, readyAt).
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExitSeen, RunningInstance, TaskRecord } from '../model/kind.js';
import type { Failure } from '../model/failure.js';
import { Stamp } from '../process/log-line.js';
import { tailLines } from '../process/log-file.js';
import { isAlive } from '../process/proc.js';
import { appendEvent, type NewEvent, type SupervisorEvent } from './events.js';
import { describeEnding, restartsOn, RestartTracker, type Ending } from './policy.js';
import { startHealth, type HealthLoop } from './health.js';

/** What a rerun of a task came to (the engine's TaskOutcome, as far as the supervisor reads it). */
export type RerunOutcome =
  | { status: 'ready' | 'done'; running?: RunningInstance }
  | { status: 'cancelled' }
  | { status: 'failed'; failure: Failure };

/** A line a rerun shows (the engine's `output` events); others are ignored. */
export interface RerunEvent {
  type: string;
  line?: string;
}

export interface ServiceToWatch {
  running: RunningInstance;
  rerun(signal: AbortSignal, emit: (ev: RerunEvent) => void): Promise<RerunOutcome>;
}

export type ServiceFields = Pick<TaskRecord, 'service' | 'restarts' | 'lastExit' | 'health' | 'nextRestartAt' | 'readyAt'>;

export interface SuperviseOptions {
  dataDir: string;
  services: ReadonlyMap<string, ServiceToWatch>;
  /** write fields of a task's state record (flush: on disk before returning) */
  record(task: string, fields: ServiceFields, flush: boolean): void;
  /** stop the task's recorded instance (its stop signal, then SIGKILL after its grace) and forget its undo */
  stopTask(task: string): Promise<void>;
  /** a restart of the task is due: get its next spawn ready meanwhile (proc.ts prepareRespawn) */
  prepareRestart?(task: string): void;
  /** the restart prepared for is not going to happen (proc.ts discardRespawn) */
  dropRestart?(task: string): Promise<void>;
  /** `<data-dir>/logs/<task>.log` */
  logFile(task: string): string;
  /** whether the state still records this instance of the task (on resume: one a request stopped is let go) */
  recorded?(task: string, instance: RunningInstance): boolean;
  /** how often an instance adopted from an earlier run (no exit to wait on) is checked (default 500 ms) */
  pollMs?: number;
}

export interface Supervisor {
  /** every event, as written to events.jsonl */
  on(listener: (ev: SupervisorEvent) => void): void;
  /** Stop and start one service now (dependents untouched); resolves once it is ready again, or failed. */
  restart(task: string): Promise<RerunOutcome>;
  /** No more restarts: cancel pending ones, end health checks, wait for one in flight. */
  stop(): Promise<void>;
  /** After the host stopped them on purpose (down, Ctrl-C): a `stopped` event and state for each. */
  stopped(): void;
  /**
   * Hold still while another writer has the state: pending restarts are cancelled (resumed
   * later), health checks end, a restart in flight is cancelled and awaited. Nothing is written.
   */
  pause(): Promise<void>;
  /**
   * Watch again after `pause`. `services`: what the request that ran meanwhile started or reused;
   * `touched`: the tasks it ran (a watched one it did not leave in `services` is let go).
   */
  resume(services: ReadonlyMap<string, ServiceToWatch>, touched: ReadonlySet<string>): void;
  /** Something is up or between restarts (a service given up on, crash-loop or policy no, is not). */
  readonly active: boolean;
  /** The tasks being watched. */
  readonly tasks: readonly string[];
}

export function superviseServices(o: SuperviseOptions): Supervisor {
  return new Watch(o);
}

const DEFAULT_POLL_MS = 500;
const stamp = new Stamp();

class Watch implements Supervisor {
  private readonly listeners: ((ev: SupervisorEvent) => void)[] = [];
  private readonly watched = new Map<string, Watched>();
  private stopping = false;

  /** The services' own handles do not hold the host's event loop: this does, until stop(). */
  private readonly keepAlive: NodeJS.Timeout;

  constructor(readonly o: SuperviseOptions) {
    this.keepAlive = setInterval(() => {}, 1 << 30);
    for (const [task, svc] of o.services) this.watched.set(task, new Watched(this, task, svc));
    for (const w of this.watched.values()) w.begin();
  }

  get tasks(): readonly string[] {
    return [...this.watched.keys()];
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  get active(): boolean {
    return [...this.watched.values()].some((w) => w.phase !== 'down');
  }

  async pause(): Promise<void> {
    await Promise.all([...this.watched.values()].map((w) => w.pause()));
  }

  resume(services: ReadonlyMap<string, ServiceToWatch>, touched: ReadonlySet<string>): void {
    if (this.stopping) return;
    const begin: Watched[] = [];
    for (const [task, w] of [...this.watched]) {
      const svc = services.get(task);
      if (svc && w.holds(svc.running)) continue; // reused by the request: the same instance
      if (svc || touched.has(task)) this.watched.delete(task);
      if (svc) {
        // started again by the request: its new instance, the count of restarts carried over
        const next = new Watched(this, task, svc, w.restartCount + 1);
        this.watched.set(task, next);
        begin.push(next);
      }
    }
    for (const [task, svc] of services) {
      if (this.watched.has(task)) continue;
      const w = new Watched(this, task, svc);
      this.watched.set(task, w);
      begin.push(w);
    }
    for (const w of this.watched.values()) if (!begin.includes(w)) w.resume();
    for (const w of begin) w.begin();
  }

  on(listener: (ev: SupervisorEvent) => void): void {
    this.listeners.push(listener);
  }

  event(ev: NewEvent): void {
    const full: SupervisorEvent = { ...ev, at: ev.at ?? new Date().toISOString() } as SupervisorEvent;
    appendEvent(this.o.dataDir, full);
    for (const l of this.listeners) {
      try {
        l(full);
      } catch {
        // a listener's trouble is not the service's
      }
    }
  }

  /** One of stigmer's own lines in the task's log: `<ts> --- <text>`. */
  logLine(task: string, text: string): void {
    try {
      appendFileSync(this.o.logFile(task), `${stamp.prefix(Date.now(), '---')}${text}\n`, { mode: 0o600 });
    } catch {
      // a full disk loses the line; the event and the state still say it
    }
  }

  async restart(task: string): Promise<RerunOutcome> {
    const w = this.watched.get(task);
    if (!w) throw new Error(`${task} is not a supervised service (supervised: ${this.tasks.join(', ') || 'none'})`);
    return w.manualRestart();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.watched.values()].map((w) => w.halt()));
    clearInterval(this.keepAlive);
  }

  stopped(): void {
    for (const task of this.watched.keys()) {
      this.event({ task, type: 'stopped' });
      this.o.record(task, { service: 'stopped', nextRestartAt: null }, false);
    }
  }
}

class Watched {
  private readonly tracker: RestartTracker;
  private instance: RunningInstance;
  /** aborted to cancel a pending backoff or a rerun in flight */
  private cancel = new AbortController();
  /** the restart in progress (backoff + rerun), if any */
  private pending: Promise<void> | undefined;
  private health: HealthLoop | undefined;
  /** bumps with each instance: a late exit of an older one is ignored */
  private generation = 0;
  private manual = false;
  /** up (its exit and health watched), restarting (backoff or rerun), down (given up on) */
  phase: 'up' | 'restarting' | 'down' = 'up';
  /** the restart a pause cancelled: when it was due, the log line it says */
  private due: { at: number; line: string } | undefined;
  /** an instance a rerun brought up while a pause cancelled it: watched on resume */
  private parked: RunningInstance | undefined;

  constructor(
    private readonly sup: Watch,
    readonly task: string,
    private readonly svc: ServiceToWatch,
    private restarts = 0,
  ) {
    this.tracker = new RestartTracker(svc.running.supervision.restart);
    this.instance = svc.running;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** Whether `running` is the instance this one watches (or brought up during a pause). */
  holds(running: RunningInstance): boolean {
    const mine = this.parked ?? this.instance;
    return this.phase !== 'down' && mine.pid === running.pid && mine.startTime === running.startTime;
  }

  private get o(): SuperviseOptions {
    return this.sup.o;
  }

  begin(): void {
    this.onReady(this.instance, false);
  }

  private onReady(instance: RunningInstance, announce: boolean): void {
    this.instance = instance;
    this.phase = 'up';
    const now = Date.now();
    this.tracker.ready(now);
    // The state first: a reader who saw the event finds the state saying so.
    this.o.record(this.task, { service: 'ready', readyAt: new Date(now).toISOString(), nextRestartAt: null, restarts: this.restarts }, true);
    if (announce) this.sup.event({ task: this.task, type: 'ready', pid: instance.pid });
    this.arm(instance);
  }

  /** Watch the instance's exit and run its liveness checks. */
  private arm(instance: RunningInstance): void {
    const gen = ++this.generation;
    void this.waitExit(instance).then((exit) => {
      if (gen !== this.generation || this.sup.isStopping || this.manual) return;
      this.ended({ ...exit, reason: 'exited' });
    });
    this.health?.stop();
    this.health = undefined;
    const spec = instance.supervision.health;
    if (spec) {
      this.health = startHealth(spec, instance.supervision, {
        onResult: (r) => {
          if (gen !== this.generation || this.sup.isStopping) return;
          this.o.record(this.task, { health: { ok: r.ok, at: new Date().toISOString(), detail: r.detail, failures: r.failures } }, false);
          if (r.changed && r.ok) {
            this.sup.event({ task: this.task, type: 'healthy', detail: r.detail });
            this.sup.logLine(this.task, `healthy again: ${r.detail}`);
          }
        },
        onUnhealthy: (r) => {
          if (gen !== this.generation || this.sup.isStopping) return;
          // Restarted: the exit of the stop that follows is not another failure. Not restarted
          // (policy no): a later exit of it is still seen.
          if (restartsOn(this.tracker.policy.policy, { code: null, signal: null, reason: 'unhealthy' })) this.generation++;
          this.health?.stop();
          this.health = undefined;
          this.o.record(this.task, { service: 'unhealthy', health: { ok: false, at: new Date().toISOString(), detail: r.detail, failures: r.failures } }, true);
          this.sup.event({ task: this.task, type: 'unhealthy', detail: r.detail });
          this.sup.logLine(this.task, `unhealthy after ${r.failures} failed liveness checks: ${r.detail}`);
          this.ended({ code: null, signal: null, reason: 'unhealthy' }, `unhealthy: ${r.detail}`);
        },
      });
    }
  }

  /** The instance's exit: its child's exit event, or (adopted from an earlier run) polled. */
  private async waitExit(instance: RunningInstance): Promise<ExitSeen> {
    if (instance.exited) return instance.exited;
    const pollMs = this.o.pollMs ?? DEFAULT_POLL_MS;
    for (;;) {
      await new Promise((r) => setTimeout(r, pollMs).unref());
      if (!isAlive(instance)) return { code: null, signal: null };
    }
  }

  /** It stopped on its own (or failed its checks): record, then restart, give up, or leave it. */
  private ended(ending: Ending, why?: string): void {
    const now = Date.now();
    const at = new Date(now).toISOString();
    const what = describeEnding(ending);
    const decision = this.tracker.ended(now, ending);
    // One state write for the exit and what follows it (the restart path pays each write), before
    // the events that report them.
    const lastExit: ServiceFields = ending.reason === 'exited' ? { lastExit: { code: ending.code, signal: ending.signal, at } } : {};
    const next: ServiceFields =
      decision.action === 'crash-loop'
        ? { service: 'crash-loop', nextRestartAt: null }
        : decision.action === 'restart'
          ? { service: 'restarting', restarts: this.restarts + 1, nextRestartAt: new Date(now + decision.delayMs).toISOString() }
          : {};
    if (ending.reason === 'exited' || decision.action !== 'none') this.o.record(this.task, { ...lastExit, ...next }, true);
    if (ending.reason === 'exited') this.sup.event({ at, task: this.task, type: 'exited', code: ending.code, signal: ending.signal, pid: this.instance.pid });
    switch (decision.action) {
      case 'none': {
        const policy = this.tracker.policy.policy;
        if (ending.reason === 'unhealthy') {
          // Left running, marked unhealthy: `stigmer restart` (or a policy) would restart it.
          this.sup.logLine(this.task, `not restarted (restart policy ${policy}); it stays unhealthy`);
          return;
        }
        this.sup.logLine(this.task, `exited after ${what}; not restarted (restart policy ${policy})`);
        this.phase = 'down';
        // Left as it is: `status` tells a dead instance by its identity; what it left is stopped.
        this.pending = Promise.all([this.o.stopTask(this.task).catch(() => {}), this.o.dropRestart?.(this.task)]).then(() => {});
        return;
      }
      case 'crash-loop': {
        this.phase = 'down';
        // Its last words may still be in its pipes when the exit is seen: they reach the log first
        // (bounded: a process it left behind may hold the pipes open).
        const logged = ending.reason === 'exited' ? this.instance.logged : undefined;
        this.pending = Promise.race([logged, sleep(LAST_WORDS_MS)])
          .then(() => {
            const last = lastServiceLine(this.o.logFile(this.task));
            const detail = `more than ${this.tracker.policy.maxRestarts} restarts within ${formatWindow(decision.windowMs)}; last: ${why ?? what}${last ? `; last log line: ${last}` : ''}`;
            this.sup.event({ task: this.task, type: 'crash-loop', code: ending.code, signal: ending.signal, max: this.tracker.policy.maxRestarts, detail });
            this.sup.logLine(this.task, `crash loop: ${detail}; not restarting (stigmer restart ${this.task} tries again)`);
            return Promise.all([this.o.stopTask(this.task).catch(() => {}), this.o.dropRestart?.(this.task)]);
          })
          .then(() => {});
        return;
      }
      case 'restart': {
        const due = now + decision.delayMs;
        this.phase = 'restarting';
        this.restarts++;
        this.sup.event({ at, task: this.task, type: 'restarting', attempt: decision.attempt, max: decision.max, delay_ms: decision.delayMs, detail: why ?? exitDetail(ending) });
        this.sup.logLine(this.task, `${why ?? exitDetail(ending)}; restarting in ${formatWindow(decision.delayMs)} (${decision.attempt}/${decision.max})`);
        this.due = { at: due, line: `restarted after ${what} (${decision.attempt}/${decision.max})` };
        this.pending = this.restartAfter(due, this.due.line);
        return;
      }
    }
  }

  /**
   * Stop what is left of the old instance and wait the backoff, side by side (the backoff counts
   * from the exit: it ends at `dueAt`, whatever the writes since took; the new instance starts only
   * once both are over), then run the task again.
   */
  private async restartAfter(dueAt: number, line: string): Promise<void> {
    const signal = this.cancel.signal;
    const backoff = new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(true), Math.max(0, dueAt - Date.now()));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const stopped = this.o.stopTask(this.task);
    // The next spawn gets ready meanwhile (its launcher moves into its cgroup, the slow part).
    this.o.prepareRestart?.(this.task);
    try {
      await stopped;
    } catch {
      // what could not be stopped stays recorded: down tries again
    }
    const waited = await backoff;
    if (!waited || signal.aborted || this.sup.isStopping) return;
    this.sup.logLine(this.task, line);
    const outcome = await this.rerun(signal);
    if (this.sup.isStopping || signal.aborted) return;
    if (outcome.status === 'failed') {
      const f = outcome.failure as Failure & { exitCode?: number | null; signal?: string | null };
      const ending: Ending = { code: f.reason === 'exited-before-ready' ? (f.exitCode ?? null) : null, signal: f.reason === 'exited-before-ready' ? (f.signal ?? null) : null, reason: 'exited' };
      // Not ready again: that counts as another failure (backoff grows, the window counts it).
      this.sup.logLine(this.task, `restart failed: ${failureLine(outcome.failure)}`);
      this.ended(ending, `restart failed: ${failureLine(outcome.failure)}`);
    }
  }

  /** Rerun the task; on ready, watch the new instance. */
  private async rerun(signal: AbortSignal): Promise<RerunOutcome> {
    this.o.record(this.task, { service: 'starting', nextRestartAt: null }, false);
    const outcome = await this.svc.rerun(signal, (ev) => {
      const m = ev.type === 'output' && ev.line ? /^started pid (\d+)/.exec(ev.line) : null;
      if (m) this.sup.event({ task: this.task, type: 'started', pid: Number(m[1]) });
    });
    if (outcome.status === 'ready' && outcome.running) {
      if (!signal.aborted && !this.sup.isStopping) this.onReady(outcome.running, true);
      else this.parked = outcome.running; // a pause cancelled it too late: its instance is recorded and up
    }
    return outcome;
  }

  async manualRestart(): Promise<RerunOutcome> {
    if (this.sup.isStopping) return { status: 'cancelled' };
    // Cancel a pending restart, wait for one in flight; then this one is the restart.
    this.cancel.abort('restart requested');
    await this.pending;
    this.cancel = new AbortController();
    this.manual = true;
    this.phase = 'down';
    this.generation++;
    this.health?.stop();
    this.health = undefined;
    try {
      this.sup.event({ task: this.task, type: 'stopped', pid: this.instance.pid, detail: 'restart requested' });
      this.sup.logLine(this.task, 'restarting: requested (stigmer restart)');
      const stopped = this.o.stopTask(this.task);
      this.o.prepareRestart?.(this.task);
      await stopped;
      this.tracker.reset();
      this.restarts++;
      this.o.record(this.task, { restarts: this.restarts }, false);
      const p = this.rerun(this.cancel.signal);
      this.pending = p.then(() => {});
      return await p;
    } finally {
      this.manual = false;
    }
  }

  async halt(): Promise<void> {
    await this.pause();
    this.o.record(this.task, { nextRestartAt: null }, false);
  }

  async pause(): Promise<void> {
    this.cancel.abort('stopping');
    this.health?.stop();
    this.health = undefined;
    this.generation++;
    await this.pending;
    await this.o.dropRestart?.(this.task);
  }

  /** After `pause`: watch the instance again, or go on with the restart the pause cancelled. */
  resume(): void {
    this.cancel = new AbortController();
    if (this.parked) {
      const instance = this.parked;
      this.parked = undefined;
      return this.onReady(instance, true);
    }
    if (this.phase === 'up') {
      // One the request stopped is the request's: let it go. Else its exit meanwhile is seen now.
      if (this.o.recorded && !this.o.recorded(this.task, this.instance)) return void (this.phase = 'down');
      return this.arm(this.instance);
    }
    if (this.phase === 'restarting' && this.due) this.pending = this.restartAfter(this.due.at, this.due.line);
  }
}

/** "exited with code 1", "killed by SIGKILL", "exited (code unknown)": why a restart is due. */
function exitDetail(e: Ending): string {
  if (e.signal) return `killed by ${e.signal}`;
  if (e.code !== null) return `exited with code ${e.code}`;
  return 'exited (code unknown)';
}

/** The last line the service itself printed (not one of stigmer's `---` lines). */
/** How long a crash loop's report waits for the last instance's output to reach its log. */
const LAST_WORDS_MS = 500;

function lastServiceLine(file: string): string | undefined {
  return tailLines(file, 30).reverse().find((l) => !l.startsWith('--- ') && l.trim() !== '')?.trim().slice(0, 200);
}

function failureLine(f: Failure): string {
  const r = f as Failure & { exitCode?: number | null; signal?: string | null };
  if (f.reason === 'exited-before-ready') return r.signal ? `killed by ${r.signal} before it was ready` : `exited with code ${r.exitCode} before it was ready`;
  return f.reason;
}

/** 50ms, 2s, 1.5s, 5m */
function formatWindow(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(1))}s`;
  return `${ms}ms`;
}
