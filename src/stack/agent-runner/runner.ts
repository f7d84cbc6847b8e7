/**
 * The claim loop: keep up to `slots` executions running, long-polling the server for the next one
 * whenever a slot is free. `stop()` ends the loop (aborting the pending long poll); `drain()` then
 * lets in-flight executions finish within the grace period and releases the rest.
 */
import { formatMs } from '../../util/format.js';
import { ExecutionRun, type ExecutionDeps, type Outcome } from './execution.js';
import { describeApiError, type Claim } from '../client/index.js';

/** How long one claim waits on the server (its maximum is 30 s). */
const CLAIM_WAIT_MS = 25_000;

export class Runner {
  private readonly active = new Map<string, ExecutionRun>();
  private stopping = false;
  private claimAbort: AbortController | undefined;
  private waiters: (() => void)[] = [];
  private forceWaiters: (() => void)[] = [];
  readonly outcomes: Record<Outcome, number> = { succeeded: 0, failed: 0, cancelled: 0, 'lease-lost': 0, released: 0, 'server-unreachable': 0 };

  constructor(private readonly deps: ExecutionDeps) {}

  get inFlight(): number {
    return this.active.size;
  }

  /** Claim and run executions until `stop()`. `onClaiming` runs as the first claim goes out. */
  async run(onClaiming: () => void): Promise<void> {
    const { api, config, log } = this.deps;
    let announced = false;
    let failures = 0;
    while (!this.stopping) {
      if (this.active.size >= config.slots) {
        await this.wait();
        continue;
      }
      if (!announced) {
        announced = true;
        onClaiming();
      }
      this.claimAbort = new AbortController();
      let claim;
      try {
        claim = await api.claim(config.runnerId, CLAIM_WAIT_MS, { signal: this.claimAbort.signal });
        if (failures > 0) log(`stigmer-server at ${config.server.text} answers again; claiming`);
        failures = 0;
      } catch (e) {
        if (this.stopping) break;
        failures++;
        const delay = Math.min(250 * 2 ** (failures - 1), 5000);
        if (failures === 1 || failures % 20 === 0) {
          const why = describeApiError(e);
          log(`cannot claim from stigmer-server at ${config.server.text} (${why}); retrying every ${formatMs(delay)} or less`);
        }
        await this.wait(delay);
        continue;
      }
      if (!claim) continue;
      this.start(claim);
    }
  }

  private start(claim: Claim): void {
    const run = new ExecutionRun(claim, this.deps);
    this.active.set(run.id, run);
    void run.done
      .catch((e: unknown): Outcome => {
        // A bug, not a provider or server failure: say so, and let the lease re-queue it.
        this.deps.log(`execution ${run.id}: internal error in the agent-runner: ${(e as Error)?.stack ?? String(e)}`);
        return 'server-unreachable';
      })
      .then((outcome) => {
        this.outcomes[outcome]++;
        this.active.delete(run.id);
        this.wakeAll();
      });
  }

  /** Stop claiming; the pending long poll is abandoned. */
  stop(): void {
    this.stopping = true;
    this.claimAbort?.abort();
    this.wakeAll();
  }

  /** Let in-flight executions finish for `graceMs`, then release what is left. */
  async drain(graceMs: number): Promise<void> {
    const all = (): Promise<unknown> => Promise.all([...this.active.values()].map((r) => r.done));
    if (this.active.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((r) => (timer = setTimeout(() => r('grace-over'), graceMs)));
    const forced = new Promise<'forced'>((r) => this.forceWaiters.push(() => r('forced')));
    await Promise.race([all(), graceOver, forced]);
    clearTimeout(timer);
    this.releaseAll();
    await all();
  }

  /** Release every in-flight execution now (second signal, or grace over). */
  releaseAll(): void {
    for (const run of this.active.values()) run.release();
    for (const w of this.forceWaiters.splice(0)) w();
  }

  private wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const waiters = this.waiters;
      function done(): void {
        if (timer) clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  private wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
