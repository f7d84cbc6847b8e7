/**
 * One claimed execution, run against the LLM provider with its output forwarded to the server.
 *
 *   claimed -> streaming --(end)--------> drain chunks -> complete -> succeeded
 *                        --(LLM error)--> drain chunks -> fail     -> failed
 *                        --(server 409 cancelled / lease lost)-----> stop the LLM call, report nothing
 *                        --(release(): shutdown grace over)-------> stop the LLM call -> release
 *
 * Chunks go out one request at a time, in order: the first token the moment it arrives, and what
 * arrives while a request is in flight is joined into the next one. Between chunks, heartbeats keep
 * the lease.
 */
import type { Dispatcher } from 'undici';
import { formatMs } from '../../util/format.js';
import { mask } from '../../util/mask.js';
import { describeRetry, isLlmError, streamChat } from '../llm/index.js';
import type { RunnerConfig } from './env.js';
import { ApiError, describeApiError, type Claim, type StigmerClient } from '../client/index.js';

/** Why an execution stopped before it could be completed or failed by this runner. */
export type StopReason =
  /** the server says it was cancelled: stop, report nothing */
  | 'cancelled'
  /** the server gave it to someone else (our lease expired) */
  | 'lease-lost'
  /** shutdown: handed back to the queue */
  | 'released'
  /** the server could not be told about progress; its lease will expire and re-queue it */
  | 'server-unreachable';

export type Outcome = 'succeeded' | 'failed' | StopReason;

export interface ExecutionDeps {
  api: StigmerClient;
  config: RunnerConfig;
  log(line: string): void;
  /** connection pool for the LLM calls */
  llmDispatcher?: Dispatcher;
}

const SEND_ATTEMPTS = 5;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ExecutionRun {
  readonly id: string;
  readonly done: Promise<Outcome>;
  private readonly llmAbort = new AbortController();
  private stop: StopReason | undefined;
  private pending = '';
  private inflight: Promise<void> | undefined;
  private lastContact = Date.now();
  private heartbeatBusy = false;

  constructor(
    private readonly claim: Claim,
    private readonly deps: ExecutionDeps,
  ) {
    this.id = claim.execution.id;
    this.done = this.run();
  }

  /** Shutdown grace is over: stop the LLM call and give the execution back to the queue. */
  release(): void {
    this.halt('released');
  }

  private halt(reason: StopReason): void {
    if (this.stop) return;
    this.stop = reason;
    this.llmAbort.abort(reason);
  }

  private log(line: string): void {
    this.deps.log(`execution ${this.id}: ${line}`);
  }

  private async run(): Promise<Outcome> {
    const { execution, agent } = this.claim;
    const { config } = this.deps;
    const model = execution.model ?? agent.model ?? config.llm.model;
    const started = Date.now();
    this.log(`claimed (agent ${agent.name}, ${config.llm.provider} ${model}, attempt ${execution.attempts})`);
    const every = Math.min(Math.max(Math.floor((this.claim.lease_ms || 15_000) / 3), 50), 5000);
    const heartbeat = setInterval(() => void this.heartbeat(every), every);
    let chunks = 0;
    let failure: string | undefined;
    let warning: string | undefined;
    try {
      try {
        for await (const text of streamChat({
          provider: config.llm.provider,
          model,
          baseUrl: config.llm.baseUrl,
          ...(config.llm.apiKey ? { apiKey: config.llm.apiKey } : {}),
          system: agent.instructions,
          messages: [{ role: 'user', content: execution.message }],
          signal: this.llmAbort.signal,
          timeoutMs: config.llmTimeoutMs,
          ...(this.deps.llmDispatcher ? { dispatcher: this.deps.llmDispatcher } : {}),
          onRetry: (info) => this.log(describeRetry(info)),
          onEnd: (end) => {
            if (end.truncated) warning = `the answer was cut at the model's length limit (${config.llm.provider} stop reason "${end.stopReason ?? 'length'}")`;
          },
        })) {
          if (this.stop) break;
          chunks++;
          this.push(text);
        }
      } catch (e) {
        if (!this.stop) {
          failure = isLlmError(e) ? `${e.message}${e.hint ? ` — ${e.hint}` : ''}` : `internal error in the agent-runner: ${(e as Error)?.message ?? String(e)}`;
        }
      }
      await this.drain();

      if (this.stop === 'released') {
        await this.settle('release', async () => void (await this.deps.api.release(this.id, this.deps.config.runnerId)));
        this.log('released (the runner is stopping)');
        return 'released';
      }
      if (this.stop) {
        this.log(this.stopText(this.stop));
        return this.stop;
      }
      if (failure !== undefined) {
        const message = mask(failure);
        const outcome = await this.settle('fail', async () => void (await this.deps.api.fail(this.id, this.deps.config.runnerId, message)));
        this.log(outcome ? this.stopText(outcome) : `failed after ${formatMs(Date.now() - started)}: ${message}`);
        return outcome ?? 'failed';
      }
      if (warning) this.log(`warning: ${warning}`);
      const outcome = await this.settle('complete', async () => void (await this.deps.api.complete(this.id, this.deps.config.runnerId, warning ? { warning } : {})));
      this.log(outcome ? this.stopText(outcome) : `succeeded (${chunks} chunk${chunks === 1 ? '' : 's'} in ${formatMs(Date.now() - started)})`);
      return outcome ?? 'succeeded';
    } finally {
      clearInterval(heartbeat);
    }
  }

  private stopText(reason: StopReason): string {
    switch (reason) {
      case 'cancelled':
        return 'cancelled on the server; stopped the LLM call';
      case 'lease-lost':
        return 'the server no longer lets this runner hold it (lease lost); stopped';
      case 'released':
        return 'released';
      case 'server-unreachable':
        return 'the server could not be reached; stopped (it will be re-queued when its lease expires)';
      default: {
        const never: never = reason;
        return never;
      }
    }
  }

  /** A server answer that means "stop": 409 cancelled, or any other refusal (lease lost). */
  private refusal(e: unknown): StopReason | undefined {
    if (!(e instanceof ApiError) || e.status >= 500) return undefined;
    return e.code === 'cancelled' ? 'cancelled' : 'lease-lost';
  }

  /**
   * Tell the server how it ended, retrying through a short outage. Returns undefined when the
   * server took it, or the reason it refused.
   */
  private async settle(what: string, call: () => Promise<void>): Promise<StopReason | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        return undefined;
      } catch (e) {
        const refused = this.refusal(e);
        if (refused) return refused;
        if (attempt >= SEND_ATTEMPTS) {
          this.log(`could not ${what} on the server: ${describeApiError(e)}`);
          return 'server-unreachable';
        }
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  private push(text: string): void {
    this.pending += text;
    if (!this.inflight) this.flush();
  }

  private flush(): void {
    const text = this.pending;
    this.pending = '';
    this.inflight = this.send(text).finally(() => {
      this.inflight = undefined;
      if (this.pending && !this.stop) this.flush();
    });
  }

  private async send(text: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.stop) return;
      try {
        await this.deps.api.appendChunk(this.id, this.deps.config.runnerId, text);
        this.lastContact = Date.now();
        return;
      } catch (e) {
        const refused = this.refusal(e);
        if (refused) return this.halt(refused);
        if (attempt >= SEND_ATTEMPTS) {
          this.log(`could not forward output to the server: ${describeApiError(e)}`);
          return this.halt('server-unreachable');
        }
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  /** Wait until every chunk received so far was forwarded (or forwarding stopped). */
  private async drain(): Promise<void> {
    while (this.inflight) await this.inflight;
  }

  private async heartbeat(every: number): Promise<void> {
    if (this.stop || this.inflight || this.heartbeatBusy || Date.now() - this.lastContact < every * 0.9) return;
    this.heartbeatBusy = true;
    try {
      await this.deps.api.heartbeat(this.id, this.deps.config.runnerId);
      this.lastContact = Date.now();
    } catch (e) {
      const refused = this.refusal(e);
      if (refused) this.halt(refused);
      // a failed heartbeat is retried at the next tick; the lease allows for a few misses
    } finally {
      this.heartbeatBusy = false;
    }
  }
}
