/**
 * `process`: a long-running service, detached in its own process group; done when ready.
 *
 *   recorded instance alive, spec unchanged, not forced, one quick check passes
 *     -> satisfied: reuse it (no new undo; the recorded one stays)
 *   otherwise: stop the recorded instance (if any) -> check declared ports -> spawn
 *     -> record undo (before waiting, so a kill -9 of the CLI never orphans it)
 *     -> wait: ready | exited (fail at once) | deadline | abort
 *
 * On failure or abort this kind does not stop the process itself: its undo is recorded, and the
 * engine runs the recorded undo steps of failed and cancelled tasks.
 *
 * Supervised (`ctx.supervised`: the engine's process stays, as `up --foreground` and the supervisor
 * do), its stdout and stderr are pipes into a log writer (stamped lines, rotation by `with.log`),
 * and the result carries the running instance with its `with.restart` / `with.health` for the
 * supervisor to watch. Otherwise it writes straight to its log file and may outlive the CLI.
 *
 * Without a `ready` block the service counts as ready once it has survived a short settle time
 * (SETTLE_MS): a command that dies at once (bad flag, missing file) still fails its task.
 *
 * The quick check of a recorded instance is one attempt of its probe (a `log` probe cannot be
 * asked again: alive is enough), except for an `exec` probe, which spawns a program each time
 * (Temporal's `operator cluster health`: 60-100 ms). For that one, when the task declares ports,
 * the instance is reused when every declared port has a LISTEN socket owned by a process of its
 * recorded group and the first port accepts a TCP connection: it passed the real probe when it
 * started, and still holds what it opened. Anything less runs the real probe, as a fresh start
 * always does.
 */
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskError, type RunningInstance, type SupervisionSpec, type TaskContext, type TaskKind, type TaskResult, type UndoDescriptor } from '../src/model/kind.js';
import { fail } from '../src/model/failure.js';
import { ok } from '../src/model/result.js';
import { formatMs } from '../src/util/format.js';
import { abortError, childEnv, groupMembers, HAS_PROC, inspectPort, isAlive, listeningSocketsAsync, portProvenFree, readProcStat, socketsOf, spawnService, type StopProcess } from '../src/process/proc.js';
import { tailLines } from '../src/process/log-file.js';
import { describeProbe, disposeProbe, parseProbe, probeOnce, toDuration, toPort, waitReady, type Probe, type ProbeResult, type ProbeSpec, type WaitOutcome } from '../src/process/probes.js';
import { formatAddress } from '../src/util/address.js';
import { executeUndo } from '../src/engine/undo.js';
import { parseLog, parseRestart } from '../src/supervisor/policy.js';
import { parseHealth } from '../src/supervisor/health.js';

export interface ProcessWith {
  command: string;
  args?: Array<string | number | boolean>;
  /** relative to the tasks file */
  cwd?: string;
  env?: Record<string, string | number | boolean>;
  /** checked for another holder before start */
  ports?: Array<number | string>;
  ready?: ProbeSpec;
  stop?: { signal?: string; grace?: unknown };
  /** variables of stigmer's own environment not passed on (`NAME`, or `PREFIX*`); `env` may set them again */
  unset_env?: string[];
  /** start it with umask 077: what it creates (a database, a store) is the user's alone */
  private_files?: boolean;
  /** what the supervisor does when it exits after ready (src/supervisor/policy.ts) */
  restart?: unknown;
  /** the liveness check the supervisor runs after ready */
  health?: Record<string, unknown>;
  /** rotation of the captured log: { max_size, keep } */
  log?: unknown;
}

/** The inherited variables `patterns` name, removed; what the task's `env` sets stays. */
function unsetInherited(env: NodeJS.ProcessEnv, patterns: readonly string[] | undefined, keep: Record<string, unknown> | undefined): NodeJS.ProcessEnv {
  if (!patterns?.length) return env;
  const match = (name: string): boolean => patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
  for (const name of Object.keys(env)) {
    if (match(name) && (keep?.[name] === undefined || keep[name] === null)) delete env[name];
  }
  return env;
}

const SETTLE_MS = 100;
/** How often the latest line of a service's log is shown while waiting for it to be ready. */
const SHOW_EVERY_MS = 100;
const DEFAULT_GRACE_MS = 10_000;
/** The quick health check of a recorded instance: one attempt, bounded. */
const REUSE_PROBE_MS = 3_000;
const NOT_REUSABLE = new Set(['failed', 'cancelled', 'undone']);

function stopSignal(value: string | undefined): NodeJS.Signals {
  const signal = value ?? 'SIGTERM';
  if (!(signal in constants.signals)) {
    throw new TaskError(fail.invalidInput(`Expected with.stop.signal to be a signal name like SIGTERM, got ${JSON.stringify(value)}`));
  }
  return signal as NodeJS.Signals;
}

function recordedInstance(ctx: TaskContext<ProcessWith>): StopProcess | undefined {
  return ctx.previous?.undo.find((u): u is StopProcess => u.type === 'stop-process');
}

/**
 * Every declared port held by the recorded group: the leader's sockets are read first, the other
 * members' (a /proc scan) only when the leader does not hold them all. Undefined when this cannot
 * be told (no /proc, no ports).
 */
async function groupHoldsPorts(recorded: StopProcess, ports: readonly number[]): Promise<boolean | undefined> {
  if (!HAS_PROC || ports.length === 0) return undefined;
  const wanted = await listeningSocketsAsync(ports);
  let missing = [...wanted.values()];
  if (missing.some((inodes) => inodes.size === 0)) return false;
  const held = (pid: number): void => {
    const sockets = socketsOf(pid);
    missing = missing.filter((inodes) => ![...inodes].some((i) => sockets.has(i)));
  };
  held(recorded.pid);
  for (const pid of missing.length ? groupMembers(recorded.pgid) : []) {
    if (pid !== recorded.pid) held(pid);
    if (!missing.length) break;
  }
  return missing.length === 0;
}

/** The quick check of a recorded, living instance (see the header). */
async function checkRecorded(recorded: StopProcess, probe: Probe | undefined, ports: readonly number[], signal: AbortSignal): Promise<ProbeResult> {
  if (!probe || probe.kind === 'log') return ok('running');
  const attempt = AbortSignal.any([signal, AbortSignal.timeout(REUSE_PROBE_MS)]);
  if (probe.kind === 'exec' && (await groupHoldsPorts(recorded, ports))) {
    const port = ports[0]!;
    const connect = await probeOnce({ kind: 'tcp', host: 'localhost', port }, attempt);
    if (connect.ok) return ok(`holds port${ports.length > 1 ? 's' : ''} ${ports.join(', ')}; ${connect.value}`);
  }
  try {
    return await probeOnce(probe, attempt);
  } finally {
    disposeProbe(probe);
  }
}

async function run(ctx: TaskContext<ProcessWith>): Promise<TaskResult> {
  const w = ctx.with;
  if (typeof w.command !== 'string' || w.command === '') {
    throw new TaskError(fail.invalidInput(`Expected with.command to be a command, got ${JSON.stringify(w.command)}`));
  }
  const args = (w.args ?? []).map(String);
  const cwd = resolve(ctx.baseDir, w.cwd ?? '.');
  const env = unsetInherited(childEnv(ctx.env, w.env), w.unset_env, { ...ctx.env, ...w.env });
  const ports = (w.ports ?? []).map((p, i) => toPort(p, `with.ports[${i}]`));
  const signal = stopSignal(w.stop?.signal);
  const graceMs = toDuration(w.stop?.grace, DEFAULT_GRACE_MS, 'with.stop.grace');
  const invalidAs = <T>(read: () => T): T => {
    try {
      return read();
    } catch (err) {
      throw new TaskError(fail.invalidInput((err as Error).message));
    }
  };
  const restart = invalidAs(() => parseRestart(w.restart));
  const logPolicy = invalidAs(() => parseLog(w.log));
  if (w.health) invalidAs(() => parseHealth(w.health, { cwd, env }));
  const supervision: SupervisionSpec = { restart, ...(w.health ? { health: w.health } : {}), cwd, env };
  const running = (svc: { pid: number; pgid: number; startTime: number; exited?: RunningInstance['exited']; logClosed?: Promise<void> }): { running?: RunningInstance } =>
    ctx.supervised
      ? { running: { pid: svc.pid, pgid: svc.pgid, startTime: svc.startTime, ...(svc.exited ? { exited: svc.exited } : {}), ...(svc.logClosed ? { logged: svc.logClosed } : {}), supervision } }
      : {};
  // Parsed before anything starts so a bad probe fails without side effects; the log offset is
  // filled in once the process runs.
  const target = { logFile: ctx.logFile, logOffset: 0, cwd, env };
  let parsed = w.ready ? parseProbe(w.ready, target, 'with.ready') : undefined;
  // The address its readiness probe reaches, as written (status shows the same text as the
  // config, e.g. Temporal's 127.0.0.1:7233), else its first port.
  const address = parsed?.probe.kind === 'tcp'
    ? formatAddress(parsed.probe)
    : parsed?.probe.kind === 'grpc'
      ? parsed.probe.spec.address
      : parsed?.probe.kind === 'http'
        ? new URL(parsed.probe.url).host
        : ports[0] !== undefined
          ? `localhost:${ports[0]}`
          : undefined;

  // An instance recorded by an earlier run.
  const recorded = recordedInstance(ctx);
  if (recorded) {
    const prev = ctx.previous!;
    const reusable = !ctx.force && prev.specHash === ctx.specHash && !NOT_REUSABLE.has(prev.status) && prev.outputs !== undefined;
    if (reusable && isAlive(recorded) && readProcStat(recorded.pid)?.pgid === recorded.pgid) {
      const check = await checkRecorded(recorded, parsed?.probe, ports, ctx.signal);
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      if (check.ok) return { satisfied: true, outputs: prev.outputs!, summary: `already running (pid ${recorded.pid})`, lastProbe: check.value, ...running(recorded) };
      ctx.output(`pid ${recorded.pid} is running but not healthy (${check.error.detail}); restarting it`);
    }
    // Also stops what a dead instance left in its group; never signals a reused pid.
    try {
      ctx.output(await executeUndo(recorded));
    } catch (err) {
      throw new TaskError(fail.rollbackFailed((err as Error).message, 'stop the instance an earlier run started'));
    }
  }

  // A declared port in use fails the task naming its holder. Free ones are told cheaply (a bind);
  // the others by one read of the socket tables, and only for a held one is every process's fd
  // list searched for its holder.
  const unproven: number[] = [];
  for (const [i, free] of (await Promise.all(ports.map(portProvenFree))).entries()) if (!free) unproven.push(ports[i]!);
  const listening = HAS_PROC && unproven.length ? await listeningSocketsAsync(unproven) : undefined;
  for (const port of unproven) {
    if (listening && listening.get(port)?.size === 0) continue;
    const held = inspectPort(port);
    if (held.listening) throw new TaskError(fail.portInUse(port, held.holder));
  }
  if (ctx.signal.aborted) throw abortError(ctx.signal);

  const started = performance.now();
  const svc = await spawnService({
    command: w.command,
    args,
    cwd,
    env,
    logFile: ctx.logFile,
    stack: ctx.dataDir,
    ...(w.private_files ? { umask: 0o077 } : {}),
    // Supervised: its output is piped to the supervisor's log writer (stamped lines, rotation).
    ...(ctx.supervised ? { capture: logPolicy } : {}),
  });
  const undo: UndoDescriptor = {
    type: 'stop-process',
    pid: svc.pid,
    pgid: svc.pgid,
    startTime: svc.startTime,
    command: svc.commandLine,
    signal,
    graceMs,
    startedAt: new Date().toISOString(),
    ...(svc.instance ? { instance: svc.instance } : {}),
    ...(ports.length ? { ports } : {}),
  };
  ctx.recordUndo(undo);

  target.logOffset = svc.logOffset;
  if (w.ready) parsed = parseProbe(w.ready, target, 'with.ready');
  ctx.output(parsed ? `started pid ${svc.pid}; waiting for ${describeProbe(parsed.probe)}` : `started pid ${svc.pid}`);

  let shown = '';
  // At most every SHOW_EVERY_MS, not at every failed attempt (a tcp probe tries every 5 ms): the
  // read would take CPU from the very service being waited for.
  let lookedAt = performance.now();
  const showLatest = (): void => {
    const now = performance.now();
    if (now - lookedAt < SHOW_EVERY_MS) return;
    lookedAt = now;
    const line = tailLines(ctx.logFile, 1, { since: svc.logOffset, maxBytes: 4096 })[0]?.trim();
    if (line && line !== shown) ctx.output((shown = line));
  };
  // Captured: the service's output brings the next attempt forward (it often says it is ready).
  const outputs = svc.log ? [svc.child.stdout, svc.child.stderr].filter((s) => s !== null) : [];
  let wake: (() => void) | undefined;
  const onOutput = (): void => wake?.();
  for (const s of outputs) s.on('data', onOutput);
  const outcome: WaitOutcome = parsed
    ? await waitReady(parsed.probe, { signal: ctx.signal, intervalMs: parsed.intervalMs, timeoutMs: parsed.timeoutMs, exited: svc.exited, onAttempt: showLatest, nudge: (w) => (wake = w) })
    : await settle(svc.exited, ctx.signal);
  for (const s of outputs) s.off('data', onOutput);

  const tail = (): string[] => tailLines(ctx.logFile, 20, { since: svc.logOffset });
  // Captured output is written asynchronously: what it printed last is on disk before the tail is read.
  if (svc.log && outcome.status !== 'ready') {
    await (outcome.status === 'exited' ? Promise.race([svc.logClosed, sleep(1000)]) : svc.log.flush());
  }
  switch (outcome.status) {
    case 'ready': {
      const outputs: Record<string, unknown> = { pid: svc.pid, pgid: svc.pgid, log: ctx.logFile, ...(address ? { address } : {}) };
      const how = parsed ? ` (${outcome.detail})` : '';
      return {
        outputs,
        summary: `ready after ${formatMs(performance.now() - started)}, pid ${svc.pid}${how}`,
        ...(parsed ? { lastProbe: outcome.detail } : {}),
        ...running(svc),
      };
    }
    case 'exited':
      throw new TaskError(fail.exitedBeforeReady(outcome.exit.code, outcome.exit.signal, tail(), ctx.logFile));
    case 'rejected':
      throw new TaskError(fail.probeRejected(describeProbe(parsed!.probe), outcome.detail, outcome.hint, tail(), ctx.logFile));
    case 'timeout':
      throw new TaskError(fail.readyTimeout(describeProbe(parsed!.probe), parsed!.timeoutMs, outcome.lastProbe, tail(), ctx.logFile));
    case 'aborted':
      throw abortError(ctx.signal);
  }
}

/** No probe: ready unless the process exits within SETTLE_MS. */
async function settle(exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, signal: AbortSignal): Promise<WaitOutcome> {
  if (signal.aborted) return { status: 'aborted' };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      exited.then((exit): WaitOutcome => ({ status: 'exited', exit })),
      new Promise<WaitOutcome>((res) => {
        timer = setTimeout(() => res({ status: 'ready', detail: 'running', elapsedMs: SETTLE_MS, attempts: 1 }), SETTLE_MS);
      }),
      new Promise<WaitOutcome>((res) => {
        onAbort = () => res({ status: 'aborted' });
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

const processKind: TaskKind<ProcessWith> = { name: 'process', mode: 'service', run };
export default processKind;
