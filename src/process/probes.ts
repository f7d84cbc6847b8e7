/**
 * Readiness probes: poll until ready, then stop polling, with a deadline.
 *
 * A wait settles with the first of: the probe passed, the deadline passed, the watched process
 * exited (reported at once, not at the deadline), or the run's signal aborted. Every attempt yields
 * a short line ("connect ECONNREFUSED 127.0.0.1:7233", "HTTP 503", "NOT_SERVING (...)") kept as
 * the last probe result for messages and status. An answer that waiting cannot change (a refused
 * API key, a TLS failure, an unknown service or namespace) ends the wait at once: `rejected`.
 */
import net from 'node:net';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { TaskError } from '../model/kind.js';
import { err, ok, type Result } from '../model/result.js';
import { fail } from '../model/failure.js';
import { durationOr } from '../util/duration.js';
import { stripAnsi } from './log-file.js';
import { serviceText } from './log-line.js';
import { runCommand } from './command.js';
import { formatCommandLine, type ExitInfo } from './proc.js';
import { formatAddress, parseAddress } from '../util/address.js';
import type { GrpcChannel, GrpcTls } from './grpc-client.js';

/** HTTP and exec probes: a request or a process per attempt. */
export const DEFAULT_INTERVAL_MS = 50;
/**
 * A TCP connect to a closed loopback port and a look at a log file's new bytes cost tens of
 * microseconds: poll every 5 ms, so the port's opening is noticed within ~2.5 ms on average (the
 * task that needs it should run within 15 ms of it).
 */
export const TCP_INTERVAL_MS = 5;
/** A gRPC health call (on a kept connection) is an answer the server has to compute: 25 ms. */
export const GRPC_INTERVAL_MS = 25;
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** One attempt may not take longer than this (a frozen service must not stall the wait). */
const ATTEMPT_TIMEOUT_MS = 5_000;
const EXEC_ATTEMPT_TIMEOUT_MS = 10_000;

/** The `ready` block as the tasks file says it (numbers may arrive as strings from expressions). */
export interface ProbeSpec {
  tcp?: { host?: string; port: number | string };
  http?: { url: string; status?: number | string };
  log?: string;
  exec?: { command: string; args?: Array<string | number | boolean>; contains?: string };
  grpc?: GrpcProbeSpec;
  interval?: unknown;
  timeout?: unknown;
}

/** `grpc:` of a probe: grpc.health.v1.Health/Check, passing only on SERVING. */
export interface GrpcProbeSpec {
  /** host:port */
  address: string;
  /** the service whose health is asked; default "" (the server as a whole) */
  service?: string;
  tls?: GrpcTls;
  /** sent as `authorization: Bearer <key>` (a secret: never printed); implies TLS */
  api_key?: string | null;
  /** how the key is named in messages, e.g. "TEMPORAL_API_KEY (environment)" */
  api_key_name?: string | null;
  /** sent with every call */
  metadata?: Record<string, string | number | boolean>;
  /** Temporal: also DescribeNamespace this namespace (alone when the server offers no health service) */
  namespace?: string | null;
}

export type Probe =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'grpc'; spec: GrpcProbeSpec; service: string; channel?: GrpcChannel }
  | { kind: 'http'; url: string; status: number }
  | { kind: 'log'; pattern: RegExp; scanner: LogScanner }
  | { kind: 'exec'; command: string; args: string[]; contains?: string; cwd: string; env: NodeJS.ProcessEnv };

/** Why one probe attempt did not pass. */
export interface ProbeFailure {
  /** one short line */
  detail: string;
  /** waiting longer cannot change this answer: the wait ends at once */
  fatal?: boolean;
  /** what to do about a fatal answer */
  hint?: string;
}

/** One probe attempt: what it saw when it passed (one short line), or why it did not. */
export type ProbeResult = Result<string, ProbeFailure>;

/** A failed attempt that waiting may still change. */
export function notYet(detail: string): { ok: false; error: ProbeFailure } {
  return err({ detail });
}

/** Where a probe of a service looks: its log (from where its own output begins), cwd and env. */
export interface ProbeTarget {
  logFile: string;
  logOffset: number;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface ParsedProbe {
  probe: Probe;
  intervalMs: number;
  timeoutMs: number;
}

function invalid(message: string): TaskError {
  return new TaskError(fail.invalidInput(message));
}

/** A TCP port from a number or a string; throws TaskError(invalid-input) otherwise. */
export function toPort(value: unknown, what: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw invalid(`Expected ${what} to be a TCP port (1-65535), got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A duration with a default; throws TaskError(invalid-input) when it is not one. */
export function toDuration(value: unknown, fallbackMs: number, what: string): number {
  try {
    return durationOr(value, fallbackMs, what);
  } catch (err) {
    throw invalid((err as Error).message);
  }
}

/** Resolve a `ready` block into a probe; throws TaskError(invalid-input) on bad values. */
export function parseProbe(spec: ProbeSpec, target: ProbeTarget, what = 'ready'): ParsedProbe {
  let probe: Probe;
  if (spec.tcp) {
    probe = { kind: 'tcp', host: spec.tcp.host || 'localhost', port: toPort(spec.tcp.port, `${what}.tcp.port`) };
  } else if (spec.http) {
    const status = spec.http.status === undefined ? 200 : Number(spec.http.status);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw invalid(`Expected ${what}.http.status to be an HTTP status (100-599), got ${JSON.stringify(spec.http.status)}`);
    }
    try {
      new URL(spec.http.url);
    } catch {
      throw invalid(`Expected ${what}.http.url to be a URL, got ${JSON.stringify(spec.http.url)}`);
    }
    probe = { kind: 'http', url: spec.http.url, status };
  } else if (typeof spec.log === 'string') {
    let pattern: RegExp;
    try {
      pattern = new RegExp(spec.log);
    } catch (err) {
      throw invalid(`Expected ${what}.log to be a regular expression: ${(err as Error).message}`);
    }
    probe = { kind: 'log', pattern, scanner: new LogScanner(target.logFile, target.logOffset) };
  } else if (spec.exec) {
    probe = {
      kind: 'exec',
      command: spec.exec.command,
      args: (spec.exec.args ?? []).map(String),
      ...(spec.exec.contains !== undefined ? { contains: spec.exec.contains } : {}),
      cwd: target.cwd,
      env: target.env,
    };
  } else if (spec.grpc) {
    probe = parseGrpc(spec.grpc, `${what}.grpc`);
  } else {
    throw invalid(`Expected ${what} to have one of tcp, http, grpc, log or exec`);
  }
  const dflt = probe.kind === 'tcp' || probe.kind === 'log' ? TCP_INTERVAL_MS : probe.kind === 'grpc' ? GRPC_INTERVAL_MS : DEFAULT_INTERVAL_MS;
  const intervalMs = toDuration(spec.interval, dflt, `${what}.interval`);
  const timeoutMs = toDuration(spec.timeout, DEFAULT_READY_TIMEOUT_MS, `${what}.timeout`);
  return { probe, intervalMs, timeoutMs };
}

function parseGrpc(g: GrpcProbeSpec, what: string): Probe {
  if (typeof g.address !== 'string' || !parseAddress(g.address)) {
    throw invalid(`Expected ${what}.address to be host:port, got ${JSON.stringify(g.address)}`);
  }
  if (g.tls?.client_cert && !g.tls.client_key) throw invalid(`${what}.tls.client_cert needs ${what}.tls.client_key (mTLS needs both)`);
  if (g.tls?.client_key && !g.tls.client_cert) throw invalid(`${what}.tls.client_key needs ${what}.tls.client_cert (mTLS needs both)`);
  return { kind: 'grpc', spec: g, service: g.service ?? '' };
}

/** What a probe checks, for messages: "tcp localhost:7233", "log /ready/". */
export function describeProbe(probe: Probe): string {
  switch (probe.kind) {
    case 'tcp':
      return `tcp ${formatAddress(probe)}`;
    case 'http':
      return `GET ${probe.url} answering ${probe.status}`;
    case 'log':
      return `log ${String(probe.pattern)}`;
    case 'exec':
      return `exec ${formatCommandLine(probe.command, probe.args)}${probe.contains !== undefined ? ` printing ${JSON.stringify(probe.contains)}` : ''}`;
    case 'grpc': {
      const ns = probe.spec.namespace ? `, then DescribeNamespace ${probe.spec.namespace}` : '';
      return `grpc ${probe.spec.address} Health/Check ${probe.service === '' ? '""' : probe.service} answering SERVING${ns}`;
    }
  }
}

/**
 * Reads a log file incrementally from an offset and tests each new line against a pattern.
 * Only what the process wrote since it started counts (not stigmer's header with its command line).
 */
export class LogScanner {
  private pos: number;
  private carry = '';
  private matched = false;
  private ino: number | undefined;
  constructor(
    readonly file: string,
    offset: number,
  ) {
    this.pos = offset;
  }

  /** True once a line written since the offset matched. */
  scan(pattern: RegExp): boolean {
    if (this.matched) return true;
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return false;
    }
    try {
      const st = fstatSync(fd);
      const size = st.size;
      if ((this.ino !== undefined && st.ino !== this.ino) || size < this.pos) {
        // Rotated or replaced meanwhile: the new file holds only lines written since.
        this.pos = 0;
        this.carry = '';
      }
      this.ino = st.ino;
      while (this.pos < size) {
        const buf = Buffer.alloc(Math.min(size - this.pos, 256 * 1024));
        const n = readSync(fd, buf, 0, buf.length, this.pos);
        if (n <= 0) break;
        this.pos += n;
        const lines = (this.carry + buf.toString('utf8', 0, n)).split(/\r?\n/);
        // A long unterminated line is tested as it grows; keep only a bounded part of it.
        this.carry = (lines.pop() ?? '').slice(-64 * 1024);
        if (lines.some((l) => matches(pattern, l))) return (this.matched = true);
      }
      return (this.matched = matches(pattern, this.carry));
    } finally {
      closeSync(fd);
    }
  }
}

/** A pattern is tested against what the service printed: not a captured line's stamp, not stigmer's own lines. */
function matches(pattern: RegExp, line: string): boolean {
  const text = serviceText(line);
  return text !== undefined && pattern.test(stripAnsi(text));
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: unknown[] };
  if (e?.message) return e.message.split('\n')[0]!;
  if (Array.isArray(e?.errors) && e.errors.length) return errorText(e.errors[0]);
  return e?.code ?? String(err);
}

function connectOnce(host: string, port: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const address = formatAddress({ host, port });
    const socket = net.connect({ host, port });
    const done = (r: ProbeResult): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(r);
    };
    const onAbort = (): void => done(notYet(`connect to ${address} aborted`));
    const timer = setTimeout(() => done(notYet(`connect to ${address} timed out`)), ATTEMPT_TIMEOUT_MS);
    socket.once('connect', () => done(ok(`connected to ${address}`)));
    socket.once('error', (e: NodeJS.ErrnoException) => done(notYet(e.message || `connect ${e.code ?? 'failed'} ${address}`)));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `localhost` is tried on 127.0.0.1 and ::1 at once (Node resolves it to ::1 first); either will do. */
async function probeTcp(host: string, port: number, signal: AbortSignal): Promise<ProbeResult> {
  if (host.toLowerCase() !== 'localhost') return connectOnce(host, port, signal);
  const local = new AbortController();
  const both = AbortSignal.any([signal, local.signal]);
  const attempts = ['127.0.0.1', '::1'].map((h) =>
    connectOnce(h, port, both).then((r) => {
      if (r.ok) local.abort();
      return r;
    }),
  );
  const results = await Promise.all(attempts);
  return results.find((r) => r.ok) ?? notYet(results.map((r) => (r.ok ? r.value : r.error.detail)).join('; '));
}

/**
 * One GET through node's own http client: a probe needs no pool, redirects or retries, and
 * undici's import (~30-60 ms) would sit on the path of every `local start` that reuses a server.
 * No agent: no keep-alive socket is left behind to hold the CLI open.
 */
async function probeHttp(url: string, status: number, signal: AbortSignal): Promise<ProbeResult> {
  const { request } = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    // The status line is the answer: the connection is closed without reading the body.
    const req = request(url, { method: 'GET', agent: false, signal }, (res) => done(res.statusCode === status ? ok(`HTTP ${res.statusCode}`) : notYet(`HTTP ${res.statusCode}`)));
    const timer = setTimeout(() => done(notYet(`GET ${url} timed out after ${ATTEMPT_TIMEOUT_MS} ms`)), ATTEMPT_TIMEOUT_MS);
    req.once('error', (e) => done(notYet(signal.aborted ? `GET ${url} aborted` : errorText(e))));
    req.end();
  });
}

async function probeExec(probe: Extract<Probe, { kind: 'exec' }>, signal: AbortSignal): Promise<ProbeResult> {
  const r = await runCommand({
    command: probe.command,
    args: probe.args,
    cwd: probe.cwd,
    env: probe.env,
    signal: AbortSignal.any([signal, AbortSignal.timeout(EXEC_ATTEMPT_TIMEOUT_MS)]),
    graceMs: 500,
  });
  if (r.spawnError) return notYet(`could not run ${probe.command}: ${r.spawnError}`);
  const last = [...r.tail].reverse().find((l) => l.trim() !== '')?.trim().slice(0, 160);
  const status = r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
  if (r.exitCode !== 0) return notYet(last ? `${status}: ${last}` : status);
  if (probe.contains !== undefined && !r.stdout.includes(probe.contains)) {
    return notYet(`exit 0 without ${JSON.stringify(probe.contains)}${last ? `: ${last}` : ''}`);
  }
  return ok(last ? `exit 0: ${last}` : 'exit 0');
}

/** One attempt. Never throws for the probed thing's failures; they are in the result. */
export async function probeOnce(probe: Probe, signal: AbortSignal): Promise<ProbeResult> {
  switch (probe.kind) {
    case 'tcp':
      return probeTcp(probe.host, probe.port, signal);
    case 'http':
      return probeHttp(probe.url, probe.status, signal);
    case 'log':
      return probe.scanner.scan(probe.pattern)
        ? ok(`log matched ${String(probe.pattern)}`)
        : notYet(`no line matched ${String(probe.pattern)} yet`);
    case 'exec':
      return probeExec(probe, signal);
    case 'grpc': {
      const { probeGrpc } = await import('./grpc-probe.js');
      return probeGrpc(probe, signal, ATTEMPT_TIMEOUT_MS);
    }
  }
}

/** Release what a probe holds between attempts (a gRPC connection). */
export function disposeProbe(probe: Probe): void {
  if (probe.kind === 'grpc') {
    probe.channel?.close();
    delete probe.channel;
  }
}

export type WaitOutcome =
  | { status: 'ready'; detail: string; elapsedMs: number; attempts: number }
  | { status: 'timeout'; lastProbe?: string; elapsedMs: number }
  | { status: 'exited'; exit: ExitInfo; lastProbe?: string }
  /** the probe got an answer that waiting cannot change */
  | { status: 'rejected'; detail: string; hint?: string; elapsedMs: number }
  | { status: 'aborted'; lastProbe?: string };

export interface WaitOptions {
  signal: AbortSignal;
  intervalMs: number;
  timeoutMs: number;
  /** the watched process's exit: the wait ends at once when it settles */
  exited?: Promise<ExitInfo>;
  /** called after each failed attempt */
  onAttempt?(failure: ProbeFailure): void;
  /**
   * Called once with `wake`, which brings the next attempt forward (to NUDGE_GAP after the last
   * one began): the service printed something, which often says it is ready.
   */
  nudge?(wake: () => void): void;
}

/** The least time between the start of one attempt and a nudged next one: interval / 5, 1..5 ms. */
const nudgeGap = (intervalMs: number): number => Math.max(1, Math.min(intervalMs / 5, 5));

/** Poll `probe` until it passes, the deadline passes, the process exits, or the signal aborts. */
export async function waitReady(probe: Probe, opts: WaitOptions): Promise<WaitOutcome> {
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  let lastProbe: string | undefined;
  let outcome: WaitOutcome | undefined;
  const stop = new AbortController();
  const settle = (o: WaitOutcome): void => {
    if (outcome) return;
    outcome = o;
    stop.abort();
  };
  const last = (): { lastProbe?: string } => (lastProbe === undefined ? {} : { lastProbe });
  const onAbort = (): void => settle({ status: 'aborted', ...last() });
  if (opts.signal.aborted) return { status: 'aborted' };
  opts.signal.addEventListener('abort', onAbort, { once: true });
  const deadline = setTimeout(() => settle({ status: 'timeout', ...last(), elapsedMs: elapsed() }), opts.timeoutMs);
  void opts.exited?.then((exit) => settle({ status: 'exited', exit, ...last() }));
  // A nudge while an attempt runs shortens the wait after it; one while waiting, that wait.
  let lastAttempt = 0;
  let nudged = false;
  let wake: (() => void) | undefined;
  opts.nudge?.(() => (wake ? wake() : (nudged = true)));
  const gap = nudgeGap(opts.intervalMs);
  const pause = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve();
      let timer: NodeJS.Timeout;
      const done = (): void => {
        clearTimeout(timer);
        wake = undefined;
        stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const early = (): void => {
        wake = undefined;
        clearTimeout(timer);
        timer = setTimeout(done, Math.max(0, gap - (performance.now() - lastAttempt)));
      };
      stop.signal.addEventListener('abort', done, { once: true });
      timer = setTimeout(done, opts.intervalMs);
      if (nudged) {
        nudged = false;
        early();
      } else wake = early;
    });
  try {
    for (let attempts = 1; !outcome; attempts++) {
      lastAttempt = performance.now();
      nudged = false;
      const r = await probeOnce(probe, stop.signal);
      if (outcome) break;
      if (r.ok) {
        settle({ status: 'ready', detail: r.value, elapsedMs: elapsed(), attempts });
        break;
      }
      const { detail, fatal, hint } = r.error;
      if (fatal) {
        settle({ status: 'rejected', detail, ...(hint ? { hint } : {}), elapsedMs: elapsed() });
        break;
      }
      lastProbe = detail;
      opts.onAttempt?.(r.error);
      await pause();
    }
  } finally {
    clearTimeout(deadline);
    opts.signal.removeEventListener('abort', onAbort);
    disposeProbe(probe);
  }
  return outcome!;
}

/** Wait until host:port accepts a TCP connection (`localhost`: 127.0.0.1 or ::1). */
export function waitPort(host: string, port: number, opts: { timeoutMs: number; signal: AbortSignal; intervalMs?: number }): Promise<WaitOutcome> {
  return waitReady({ kind: 'tcp', host, port }, { signal: opts.signal, timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs ?? TCP_INTERVAL_MS });
}
