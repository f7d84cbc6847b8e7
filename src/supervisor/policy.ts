/**
 * Restart policies, pure: what to do when a supervised service exited (or was found unhealthy)
 * after it was ready. No clock of its own, no timers: the watch loop passes the time in and acts on
 * the decision, so the same inputs always give the same answer (and tests need no waiting).
 *
 *   with:
 *     restart: { policy: on-failure, backoff: 1s, max_backoff: 30s, max_restarts: 5, window: 5m }
 *     log: { max_size: 10MB, keep: 3 }
 *
 * - policy `no` (the default for user tasks files): never restarted; `on-failure`: restarted after
 *   a non-zero exit, a signal, an exit it could not see (an instance adopted from an earlier run),
 *   or failed liveness checks; `always`: after any exit.
 * - The n-th restart in a row waits `backoff x 2^(n-1)`, at most `max_backoff`.
 * - A service that stayed up for `window` since it was last ready starts over: backoff and count.
 * - More than `max_restarts` restarts within `window`: `crash-loop`, no more restarts.
 */
import { parseDuration } from '../util/duration.js';

export type RestartMode = 'no' | 'on-failure' | 'always';

export interface RestartPolicy {
  policy: RestartMode;
  backoffMs: number;
  maxBackoffMs: number;
  maxRestarts: number;
  windowMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = { policy: 'no', backoffMs: 1000, maxBackoffMs: 30_000, maxRestarts: 5, windowMs: 5 * 60_000 };

export interface LogPolicy {
  maxSize: number;
  keep: number;
}

export const DEFAULT_LOG: LogPolicy = { maxSize: 10 * 1024 * 1024, keep: 3 };

/** How a service ended: its exit (code or signal; both null when it could not be seen), or failed liveness checks. */
export interface Ending {
  code: number | null;
  signal: string | null;
  reason: 'exited' | 'unhealthy';
}

export type Decision =
  /** restart after `delayMs`; this is restart `attempt` of at most `max` within the window */
  | { action: 'restart'; delayMs: number; attempt: number; max: number }
  /** too many restarts within the window: give up */
  | { action: 'crash-loop'; restarts: number; windowMs: number }
  /** the policy does not restart this ending */
  | { action: 'none' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(value: unknown, fallback: number, what: string): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`Expected ${what} to be a whole number (0 or more), got ${JSON.stringify(value)}`);
  return n;
}

function duration(value: unknown, fallback: number, what: string): number {
  return value === undefined || value === null ? fallback : parseDuration(value, what);
}

/** `with.restart` of a process task; throws an Error with a readable message on a bad value. */
export function parseRestart(value: unknown, what = 'with.restart', defaults: RestartPolicy = DEFAULT_RESTART): RestartPolicy {
  if (value === undefined || value === null) return { ...defaults };
  if (typeof value === 'string') value = { policy: value };
  if (!isObject(value)) throw new Error(`Expected ${what} to be a mapping like { policy: on-failure }, got ${JSON.stringify(value)}`);
  const known = new Set(['policy', 'backoff', 'max_backoff', 'max_restarts', 'window']);
  for (const k of Object.keys(value)) if (!known.has(k)) throw new Error(`${what}.${k} is not a restart setting (policy, backoff, max_backoff, max_restarts, window)`);
  // YAML 1.1 readers turn a bare `no` into false.
  const raw = value['policy'] === false ? 'no' : value['policy'];
  const policy = raw === undefined || raw === null ? defaults.policy : raw;
  if (policy !== 'no' && policy !== 'on-failure' && policy !== 'always') {
    throw new Error(`Expected ${what}.policy to be no, on-failure or always, got ${JSON.stringify(raw)}`);
  }
  const backoffMs = duration(value['backoff'], defaults.backoffMs, `${what}.backoff`);
  const maxBackoffMs = duration(value['max_backoff'], Math.max(defaults.maxBackoffMs, backoffMs), `${what}.max_backoff`);
  if (maxBackoffMs < backoffMs) throw new Error(`${what}.max_backoff (${maxBackoffMs} ms) is shorter than ${what}.backoff (${backoffMs} ms)`);
  const windowMs = duration(value['window'], defaults.windowMs, `${what}.window`);
  if (windowMs <= 0) throw new Error(`Expected ${what}.window to be longer than 0`);
  return { policy, backoffMs, maxBackoffMs, maxRestarts: count(value['max_restarts'], defaults.maxRestarts, `${what}.max_restarts`), windowMs };
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

/** "10MB", "512KB", "1GB", or a number of bytes (units are binary: 1MB = 1 MiB). */
export function parseSize(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(value.trim());
    if (m) {
      const unit = (m[2] ?? 'b').toLowerCase().replace('i', '');
      const n = Math.round(Number(m[1]) * SIZE_UNITS[unit]!);
      if (n > 0) return n;
    }
  }
  throw new Error(`Expected ${what} to be a size like "10MB", "512KB" or a number of bytes, got ${JSON.stringify(value)}`);
}

/** `with.log` of a process task. */
export function parseLog(value: unknown, what = 'with.log'): LogPolicy {
  if (value === undefined || value === null) return { ...DEFAULT_LOG };
  if (!isObject(value)) throw new Error(`Expected ${what} to be a mapping like { max_size: 10MB, keep: 3 }, got ${JSON.stringify(value)}`);
  for (const k of Object.keys(value)) if (k !== 'max_size' && k !== 'keep') throw new Error(`${what}.${k} is not a log setting (max_size, keep)`);
  return {
    maxSize: value['max_size'] === undefined ? DEFAULT_LOG.maxSize : parseSize(value['max_size'], `${what}.max_size`),
    keep: count(value['keep'], DEFAULT_LOG.keep, `${what}.keep`),
  };
}

/** Whether the policy restarts this ending at all (before backoff and crash-loop limits). */
export function restartsOn(policy: RestartMode, ending: Ending): boolean {
  if (policy === 'no') return false;
  if (policy === 'always') return true;
  return ending.reason === 'unhealthy' || ending.code !== 0 || ending.signal !== null;
}

/**
 * The restart history of one service. Feed it `ready(at)` each time the service is ready and
 * `ended(at, ending)` each time it stops on its own; it says what to do.
 */
export class RestartTracker {
  /** times of the restarts decided within the current window */
  private restarts: number[] = [];
  private readyAt: number | undefined;

  constructor(readonly policy: RestartPolicy) {}

  /** Restarts decided within the window ending at `at`. */
  recent(at: number): number {
    return this.restarts.filter((t) => at - t < this.policy.windowMs).length;
  }

  ready(at: number): void {
    this.readyAt = at;
  }

  /** A manual restart (`stigmer restart`) starts over: it is not a failure. */
  reset(): void {
    this.restarts = [];
  }

  ended(at: number, ending: Ending): Decision {
    const p = this.policy;
    if (!restartsOn(p.policy, ending)) return { action: 'none' };
    // Up for a whole window since it was last ready: what happened before no longer counts.
    if (this.readyAt !== undefined && at - this.readyAt >= p.windowMs) this.restarts = [];
    this.restarts = this.restarts.filter((t) => at - t < p.windowMs);
    if (this.restarts.length >= p.maxRestarts) return { action: 'crash-loop', restarts: this.restarts.length, windowMs: p.windowMs };
    this.restarts.push(at);
    const attempt = this.restarts.length;
    const delayMs = Math.min(p.maxBackoffMs, p.backoffMs * 2 ** (attempt - 1));
    return { action: 'restart', delayMs, attempt, max: p.maxRestarts };
  }
}

/** "exit code 1", "signal SIGKILL", "an exit it could not see", "failed liveness checks" */
export function describeEnding(e: Ending): string {
  if (e.reason === 'unhealthy') return 'failed liveness checks';
  if (e.signal) return `signal ${e.signal}`;
  if (e.code !== null) return `exit code ${e.code}`;
  return 'an exit (code unknown)';
}
