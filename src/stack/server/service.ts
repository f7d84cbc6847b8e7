/**
 * What the server does, without HTTP: agents, executions, the queue runners claim from (long
 * poll), leases, and the per-execution event feed behind the SSE stream. Every change goes
 * through the store and resolves only once it is durable.
 *
 * Leases: a claim gives the runner the execution for `leaseMs`; each chunk or heartbeat renews
 * it. A sweep re-queues executions whose lease ran out (their output reset, so the next attempt
 * starts clean); after MAX_ATTEMPTS claims the execution fails instead, so an execution that
 * kills every runner that takes it does not loop forever.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from './store.js';
import {
  isFinished,
  type Agent,
  type Claim,
  type Execution,
  type ExecutionEvent,
  type ExecutionStatus,
  type StoredExecution,
} from './model.js';

export const MAX_ATTEMPTS = 5;

/** An expected error, turned into an HTTP error response by the HTTP layer. */
export class ServiceError extends Error {
  constructor(
    readonly status: 400 | 404 | 405 | 409 | 413 | 503,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export interface ServiceOptions {
  leaseMs: number;
  log?: (line: string) => void;
  now?: () => number;
}

interface Lease {
  runnerId: string;
  expiresAt: number;
}

interface Waiter {
  runnerId: string;
  resolve: (claim: Claim | null) => void;
  cleanup: () => void;
}

type Listener = (event: ExecutionEvent) => void;

/** The API view of a stored execution (the runner holding it is internal). */
export function publicExecution(e: StoredExecution): Execution {
  const { runner_id: _runner, ...rest } = e;
  return rest;
}

export class Service {
  private readonly queue = new Set<string>();
  private readonly leases = new Map<string, Lease>();
  private readonly waiters: Waiter[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly leaseMs: number;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly store: Store,
    opts: ServiceOptions,
  ) {
    this.leaseMs = opts.leaseMs;
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? Date.now;
    // After a restart: queued executions wait again; running ones keep their runner, which gets
    // a fresh lease to come back with a chunk or heartbeat before it is presumed dead.
    for (const e of store.executions.values()) {
      if (e.status === 'queued') this.queue.add(e.id);
      else if (e.status === 'running') this.leases.set(e.id, { runnerId: e.runner_id ?? '', expiresAt: this.now() + this.leaseMs });
    }
    const every = Math.max(20, Math.min(1000, Math.floor(this.leaseMs / 5)));
    this.sweepTimer = setInterval(() => this.sweepLeases(), every);
    this.sweepTimer.unref();
  }

  private stamp(): string {
    return new Date(this.now()).toISOString();
  }

  // ---- agents --------------------------------------------------------------------------------

  listAgents(): Agent[] {
    return [...this.store.agents.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  getAgent(name: string): Agent {
    const agent = this.store.agents.get(name);
    if (!agent) throw new ServiceError(404, 'not-found', `agent "${name}" not found`);
    return agent;
  }

  async putAgent(name: string, instructions: string, model: string | null): Promise<{ agent: Agent; created: boolean }> {
    const before = this.store.agents.get(name);
    const at = this.stamp();
    const agent: Agent = { name, instructions, model, created_at: before?.created_at ?? at, updated_at: at };
    await this.store.putAgent(agent);
    return { agent, created: !before };
  }

  async deleteAgent(name: string): Promise<void> {
    this.getAgent(name);
    await this.store.deleteAgent(name);
  }

  // ---- executions ----------------------------------------------------------------------------

  async createExecution(agentName: string, message: string): Promise<Execution> {
    const agent = this.store.agents.get(agentName);
    if (!agent) throw new ServiceError(404, 'not-found', `agent "${agentName}" not found`, 'agent');
    const at = this.stamp();
    const exec: StoredExecution = {
      id: randomUUID(),
      agent: agent.name,
      message,
      model: agent.model,
      status: 'queued',
      output: '',
      error: null,
      created_at: at,
      updated_at: at,
      attempts: 0,
      runner_id: null,
    };
    const durable = this.store.saveExecution(exec, true);
    this.queue.add(exec.id);
    // A waiting runner may take it now: its claim is logged after this record, so the claim's
    // own commit covers both.
    this.dispatch();
    await durable;
    return publicExecution(exec);
  }

  private find(id: string): StoredExecution {
    const exec = this.store.executions.get(id);
    if (!exec) throw new ServiceError(404, 'not-found', `execution "${id}" not found`);
    return exec;
  }

  getExecution(id: string): Execution {
    return publicExecution(this.find(id));
  }

  /** Newest first. */
  listExecutions(filter: { agent?: string; status?: ExecutionStatus; limit: number }): Execution[] {
    const all = [...this.store.executions.values()];
    const out: Execution[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < filter.limit; i--) {
      const e = all[i]!;
      if (filter.agent !== undefined && e.agent !== filter.agent) continue;
      if (filter.status !== undefined && e.status !== filter.status) continue;
      out.push(publicExecution(e));
    }
    return out;
  }

  /** Cancel a queued or running execution; a finished one is returned as it is. */
  async cancelExecution(id: string): Promise<Execution> {
    const exec = this.find(id);
    if (isFinished(exec.status)) return publicExecution(exec);
    await this.finish(exec, 'cancelled', null);
    return publicExecution(exec);
  }

  private async finish(exec: StoredExecution, status: 'succeeded' | 'failed' | 'cancelled', error: string | null): Promise<void> {
    exec.status = status;
    exec.error = error;
    exec.updated_at = this.stamp();
    this.queue.delete(exec.id);
    this.leases.delete(exec.id);
    const durable = this.store.saveExecution(exec, true);
    this.emit(exec.id, { type: 'done', status, error, ...(exec.warning !== undefined ? { warning: exec.warning } : {}) });
    await durable;
  }

  private requeue(exec: StoredExecution): Promise<void> {
    exec.status = 'queued';
    exec.output = '';
    delete exec.warning;
    exec.runner_id = null;
    exec.updated_at = this.stamp();
    this.leases.delete(exec.id);
    const durable = this.store.saveExecution(exec, true);
    this.queue.add(exec.id);
    this.emit(exec.id, { type: 'status', status: 'queued', attempt: exec.attempts });
    this.dispatch();
    return durable;
  }

  // ---- events --------------------------------------------------------------------------------

  /**
   * What a new stream starts with: the current status, the output so far as one chunk, and the
   * final event when the execution is finished. Then, if not finished, `listener` gets what
   * follows until `done`. Call the returned function to stop listening.
   */
  watch(id: string, listener: Listener): { replay: ExecutionEvent[]; finished: boolean; stop: () => void } {
    const exec = this.find(id);
    const replay: ExecutionEvent[] = [{ type: 'status', status: exec.status, attempt: exec.attempts }];
    if (exec.output) replay.push({ type: 'chunk', text: exec.output });
    if (isFinished(exec.status)) {
      replay.push({ type: 'done', status: exec.status, error: exec.error, ...(exec.warning !== undefined ? { warning: exec.warning } : {}) });
      return { replay, finished: true, stop: () => {} };
    }
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return {
      replay,
      finished: false,
      stop: () => {
        const s = this.listeners.get(id);
        s?.delete(listener);
        if (s?.size === 0) this.listeners.delete(id);
      },
    };
  }

  private emit(id: string, event: ExecutionEvent): void {
    const set = this.listeners.get(id);
    if (!set) return;
    for (const l of [...set]) l(event);
    if (event.type === 'done') this.listeners.delete(id);
  }

  // ---- runner side ---------------------------------------------------------------------------

  /**
   * Claim the oldest queued execution, waiting up to `waitMs` for one. Resolves null when nothing
   * came, when `signal` aborts (the runner hung up) or when the server stops.
   */
  async claim(runnerId: string, waitMs: number, signal: AbortSignal): Promise<Claim | null> {
    const now = this.takeNext(runnerId);
    if (now) {
      await now.durable;
      return now.claim;
    }
    if (waitMs <= 0 || this.stopping || signal.aborted) return null;
    return new Promise<Claim | null>((resolve) => {
      const timer = setTimeout(() => done(null), waitMs);
      const onAbort = (): void => done(null);
      signal.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter = {
        runnerId,
        resolve: (c) => done(c),
        cleanup: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        },
      };
      const done = (c: Claim | null): void => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        waiter.cleanup();
        resolve(c);
      };
      this.waiters.push(waiter);
    });
  }

  /** Hand queued executions to waiting runners. */
  private dispatch(): void {
    while (this.waiters.length > 0 && this.queue.size > 0) {
      const waiter = this.waiters[0]!;
      const next = this.takeNext(waiter.runnerId);
      if (!next) return;
      this.waiters.shift();
      waiter.cleanup();
      next.durable.then(
        () => waiter.resolve(next.claim),
        () => waiter.resolve(null),
      );
    }
  }

  private takeNext(runnerId: string): { claim: Claim; durable: Promise<void> } | undefined {
    for (const id of this.queue) {
      this.queue.delete(id);
      const exec = this.store.executions.get(id);
      if (!exec || exec.status !== 'queued') continue;
      const agent = this.store.agents.get(exec.agent);
      if (!agent) {
        void this.finish(exec, 'failed', `agent "${exec.agent}" was deleted before the execution started`).catch(() => {});
        continue;
      }
      exec.status = 'running';
      exec.attempts += 1;
      exec.runner_id = runnerId;
      exec.output = '';
      exec.updated_at = this.stamp();
      this.leases.set(id, { runnerId, expiresAt: this.now() + this.leaseMs });
      const durable = this.store.saveExecution(exec, true);
      this.emit(id, { type: 'status', status: 'running', attempt: exec.attempts });
      return { claim: { execution: publicExecution(exec), agent, lease_ms: this.leaseMs }, durable };
    }
    return undefined;
  }

  /** The execution, if `runnerId` holds its lease; 409 `cancelled` or `lease-lost` otherwise. */
  private held(id: string, runnerId: string): StoredExecution {
    const exec = this.find(id);
    if (exec.status === 'cancelled') throw new ServiceError(409, 'cancelled', `execution "${id}" was cancelled; stop running it`);
    if (exec.status !== 'running' || exec.runner_id !== runnerId) {
      throw new ServiceError(409, 'lease-lost', `runner "${runnerId}" does not hold execution "${id}" (its status is ${exec.status})`);
    }
    this.leases.set(id, { runnerId, expiresAt: this.now() + this.leaseMs });
    return exec;
  }

  appendChunk(id: string, runnerId: string, text: string): void {
    const exec = this.held(id, runnerId);
    if (text === '') return;
    this.store.appendOutput(exec, text);
    this.emit(id, { type: 'chunk', text });
  }

  heartbeat(id: string, runnerId: string): void {
    this.held(id, runnerId);
  }

  async complete(id: string, runnerId: string, warning?: string): Promise<Execution> {
    const exec = this.held(id, runnerId);
    if (warning !== undefined) exec.warning = warning;
    await this.finish(exec, 'succeeded', null);
    return publicExecution(exec);
  }

  async fail(id: string, runnerId: string, error: string): Promise<Execution> {
    const exec = this.held(id, runnerId);
    await this.finish(exec, 'failed', error);
    return publicExecution(exec);
  }

  async release(id: string, runnerId: string): Promise<Execution> {
    const exec = this.held(id, runnerId);
    await this.requeue(exec);
    return publicExecution(exec);
  }

  /** Re-queue (or give up on) executions whose runner stopped renewing the lease. */
  sweepLeases(): void {
    const now = this.now();
    for (const [id, lease] of this.leases) {
      if (lease.expiresAt > now) continue;
      const exec = this.store.executions.get(id);
      this.leases.delete(id);
      if (!exec || exec.status !== 'running') continue;
      if (exec.attempts >= MAX_ATTEMPTS) {
        this.log(`execution ${id}: lease of runner "${lease.runnerId}" expired on attempt ${exec.attempts}; giving up`);
        void this.finish(exec, 'failed', `the runner stopped responding on each of ${exec.attempts} attempts (lease expired)`).catch(() => {});
      } else {
        this.log(`execution ${id}: lease of runner "${lease.runnerId}" expired; re-queued`);
        void this.requeue(exec).catch(() => {});
      }
    }
  }

  /** Stop: waiting claims get nothing, streams are told to end (by the HTTP layer), no more sweeps. */
  stop(): void {
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const w of this.waiters.splice(0)) {
      w.cleanup();
      w.resolve(null);
    }
  }
}
