/**
 * Liveness checks of a supervised service (`with.health`), run only after it is ready:
 *
 *   health: { http: { url: "http://127.0.0.1:8080/healthz" }, interval: 5s, timeout: 2s, failures: 3 }
 *
 * One of `tcp`, `http`, `exec` or `grpc` (the probes of probes.ts; a `log` pattern is a readiness
 * probe only: a line once printed says nothing about now). Every `interval` one check, given
 * `timeout` to answer; `failures` consecutive failed checks make the service unhealthy (the watch
 * loop then restarts it per its policy). A hung service (port open, no answer) fails by timeout.
 * Checks start every `interval` (a fixed cadence, measured from the previous check's start), so a
 * service that hangs is noticed within about `interval x failures` (+ the last check's `timeout`
 * at worst), not `failures x (interval + timeout)`.
 */
import { describeProbe, disposeProbe, parseProbe, probeOnce, type Probe, type ProbeSpec } from '../process/probes.js';
import { err, type Result } from '../model/result.js';
import { parseDuration } from '../util/duration.js';

export interface HealthSpec {
  probe: Probe;
  intervalMs: number;
  timeoutMs: number;
  failures: number;
}

export const DEFAULT_HEALTH = { intervalMs: 5000, timeoutMs: 2000, failures: 3 };

const PROBES = ['tcp', 'http', 'exec', 'grpc'] as const;

/** `with.health`; throws an Error with a readable message on a bad value. */
export function parseHealth(raw: unknown, where: { cwd: string; env: NodeJS.ProcessEnv }, what = 'with.health'): HealthSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`Expected ${what} to be a mapping like { http: { url: ... }, interval: 5s }, got ${JSON.stringify(raw)}`);
  const h = raw as Record<string, unknown>;
  if ('log' in h) throw new Error(`${what}.log: a log pattern is a readiness probe only; check liveness with tcp, http, exec or grpc`);
  const known = new Set<string>([...PROBES, 'interval', 'timeout', 'failures']);
  for (const k of Object.keys(h)) if (!known.has(k)) throw new Error(`${what}.${k} is not a health setting (tcp, http, exec, grpc, interval, timeout, failures)`);
  const given = PROBES.filter((p) => h[p] !== undefined && h[p] !== null);
  if (given.length !== 1) throw new Error(`Expected ${what} to have exactly one of tcp, http, exec or grpc${given.length ? `, got ${given.join(' and ')}` : ''}`);
  const spec: ProbeSpec = { [given[0]!]: h[given[0]!] } as ProbeSpec;
  let probe: Probe;
  try {
    probe = parseProbe(spec, { logFile: '', logOffset: 0, cwd: where.cwd, env: where.env }, what).probe;
  } catch (err) {
    throw new Error((err as Error).message);
  }
  const dur = (k: string, d: number): number => (h[k] === undefined || h[k] === null ? d : parseDuration(h[k], `${what}.${k}`));
  const intervalMs = dur('interval', DEFAULT_HEALTH.intervalMs);
  const timeoutMs = dur('timeout', DEFAULT_HEALTH.timeoutMs);
  if (intervalMs <= 0) throw new Error(`Expected ${what}.interval to be longer than 0`);
  if (timeoutMs <= 0) throw new Error(`Expected ${what}.timeout to be longer than 0`);
  const f = h['failures'] === undefined || h['failures'] === null ? DEFAULT_HEALTH.failures : Number(h['failures']);
  if (!Number.isInteger(f) || f < 1) throw new Error(`Expected ${what}.failures to be a whole number (1 or more), got ${JSON.stringify(h['failures'])}`);
  return { probe, intervalMs, timeoutMs, failures: f };
}

export interface HealthResult {
  ok: boolean;
  detail: string;
  /** consecutive failed checks so far (0 after a pass) */
  failures: number;
  /** the result differs from the one before (the first result counts as changed only when failed) */
  changed: boolean;
}

export interface HealthLoop {
  stop(): void;
  /** what is checked, for messages */
  readonly describe: string;
}

/** One check, bounded by `timeoutMs`. */
export async function checkOnce(spec: HealthSpec, signal: AbortSignal): Promise<Result<string, string>> {
  const deadline = AbortSignal.timeout(spec.timeoutMs);
  const r = await probeOnce(spec.probe, AbortSignal.any([signal, deadline]));
  if (r.ok) return r;
  return err(deadline.aborted && !signal.aborted ? `no answer within ${spec.timeoutMs} ms (${describeProbe(spec.probe)})` : r.error.detail);
}

/** Check every interval until stopped; `onUnhealthy` once, after `failures` failed checks in a row (then it stops itself). */
export function startHealth(
  raw: Record<string, unknown>,
  where: { cwd: string; env: NodeJS.ProcessEnv },
  on: { onResult(r: HealthResult): void; onUnhealthy(r: HealthResult): void },
): HealthLoop {
  const spec = parseHealth(raw, where);
  const stop = new AbortController();
  let failures = 0;
  let last: boolean | undefined;
  // A fixed cadence: a check is due every `interval` from the one before's start, not from its
  // end (a hung service's failed checks each take `timeout`: an interval counted from their end
  // would add a `timeout` per failed check to the time to notice it). A check still running when
  // the next is due delays that one (checks never overlap); one that ran past a whole interval is
  // followed at once.
  const loop = async (): Promise<void> => {
    let due = performance.now() + spec.intervalMs;
    try {
      while (!stop.signal.aborted) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            stop.signal.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, due - performance.now()));
          stop.signal.addEventListener('abort', done, { once: true });
        });
        if (stop.signal.aborted) return;
        const r = await checkOnce(spec, stop.signal);
        if (stop.signal.aborted) return;
        due = Math.max(due + spec.intervalMs, performance.now());
        failures = r.ok ? 0 : failures + 1;
        const changed = last === undefined ? !r.ok : last !== r.ok;
        last = r.ok;
        const result: HealthResult = { ok: r.ok, detail: r.ok ? r.value : r.error, failures, changed };
        on.onResult(result);
        if (failures >= spec.failures) {
          stop.abort();
          on.onUnhealthy(result);
          return;
        }
      }
    } finally {
      disposeProbe(spec.probe);
    }
  };
  void loop();
  return { stop: () => stop.abort(), describe: describeProbe(spec.probe) };
}
