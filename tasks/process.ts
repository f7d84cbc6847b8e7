/**
 * `process`: a long-running service, detached in its own process group; done when ready.
 *
 *   recorded instance alive, spec unchanged, not forced, one quick probe passes
 *     -> satisfied: reuse it (no new undo; the recorded one stays)
 *   otherwise: stop the recorded instance (if any) -> check declared ports -> spawn
 *     -> record undo (before waiting, so a kill -9 of the CLI never orphans it)
 *     -> wait: ready | exited (fail at once) | deadline | abort
 *
 * On failure or abort this kind does not stop the process itself: its undo is recorded, and the
 * engine runs the recorded undo steps of failed and cancelled tasks.
 *
 * Without a `ready` block the service counts as ready once it has survived a short settle time
 * (SETTLE_MS): a command that dies at once (bad flag, missing file) still fails its task.
 */
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { TaskError, type TaskContext, type TaskKind, type TaskResult, type UndoDescriptor } from '../src/types.js';
import { fail, formatMs } from '../src/failure.js';
import { abortError, childEnv, inspectPort, isAlive, logTailSince, readProcStat, spawnService, type StopProcess } from '../src/proc.js';
import { describeProbe, formatAddress, parseProbe, probeOnce, toDuration, toPort, waitReady, type ProbeSpec, type WaitOutcome } from '../src/probe.js';
import { executeUndo } from '../src/undo.js';

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
}

const SETTLE_MS = 100;
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

async function run(ctx: TaskContext<ProcessWith>): Promise<TaskResult> {
  const w = ctx.with;
  if (typeof w.command !== 'string' || w.command === '') {
    throw new TaskError(fail.invalidInput(`Expected with.command to be a command, got ${JSON.stringify(w.command)}`));
  }
  const args = (w.args ?? []).map(String);
  const cwd = resolve(ctx.baseDir, w.cwd ?? '.');
  const env = childEnv(ctx.env, w.env);
  const ports = (w.ports ?? []).map((p, i) => toPort(p, `with.ports[${i}]`));
  const signal = stopSignal(w.stop?.signal);
  const graceMs = toDuration(w.stop?.grace, DEFAULT_GRACE_MS, 'with.stop.grace');
  // Parsed before anything starts so a bad probe fails without side effects; the log offset is
  // filled in once the process runs.
  const target = { logFile: ctx.logFile, logOffset: 0, cwd, env };
  let parsed = w.ready ? parseProbe(w.ready, target, 'with.ready') : undefined;
  const address = parsed?.probe.kind === 'tcp'
    ? formatAddress(parsed.probe.host, parsed.probe.port)
    : ports[0] !== undefined
      ? `localhost:${ports[0]}`
      : parsed?.probe.kind === 'http'
        ? new URL(parsed.probe.url).host
        : undefined;

  // An instance recorded by an earlier run.
  const recorded = recordedInstance(ctx);
  if (recorded) {
    const prev = ctx.previous!;
    const reusable = !ctx.force && prev.specHash === ctx.specHash && !NOT_REUSABLE.has(prev.status) && prev.outputs !== undefined;
    if (reusable && isAlive(recorded) && readProcStat(recorded.pid)?.pgid === recorded.pgid) {
      // A log probe cannot be asked again: the line was printed when it became ready.
      const check = parsed && parsed.probe.kind !== 'log'
        ? await probeOnce(parsed.probe, AbortSignal.any([ctx.signal, AbortSignal.timeout(REUSE_PROBE_MS)]))
        : { ok: true, detail: 'running' };
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      if (check.ok) return { satisfied: true, outputs: prev.outputs!, summary: `already running (pid ${recorded.pid})`, lastProbe: check.detail };
      ctx.output(`pid ${recorded.pid} is running but not healthy (${check.detail}); restarting it`);
    }
    // Also stops what a dead instance left in its group; never signals a reused pid.
    try {
      ctx.output(await executeUndo(recorded));
    } catch (err) {
      throw new TaskError(fail.taskError(`could not stop the instance an earlier run started: ${(err as Error).message}`));
    }
  }

  for (const port of ports) {
    const held = inspectPort(port);
    if (held.listening) throw new TaskError(fail.portInUse(port, held.holder));
  }
  if (ctx.signal.aborted) throw abortError(ctx.signal);

  const started = performance.now();
  const svc = await spawnService({ command: w.command, args, cwd, env, logFile: ctx.logFile });
  const undo: UndoDescriptor = {
    type: 'stop-process',
    pid: svc.pid,
    pgid: svc.pgid,
    startTime: svc.startTime,
    command: svc.commandLine,
    signal,
    graceMs,
    startedAt: new Date().toISOString(),
  };
  ctx.recordUndo(undo);

  target.logOffset = svc.logOffset;
  if (w.ready) parsed = parseProbe(w.ready, target, 'with.ready');
  ctx.output(parsed ? `started pid ${svc.pid}; waiting for ${describeProbe(parsed.probe)}` : `started pid ${svc.pid}`);

  let shown = '';
  const showLatest = (): void => {
    const line = logTailSince(ctx.logFile, svc.logOffset, 1, 4096)[0]?.trim();
    if (line && line !== shown) ctx.output((shown = line));
  };
  const outcome: WaitOutcome = parsed
    ? await waitReady(parsed.probe, { signal: ctx.signal, intervalMs: parsed.intervalMs, timeoutMs: parsed.timeoutMs, exited: svc.exited, onAttempt: showLatest })
    : await settle(svc.exited, ctx.signal);

  const tail = (): string[] => logTailSince(ctx.logFile, svc.logOffset, 20);
  switch (outcome.status) {
    case 'ready': {
      const outputs: Record<string, unknown> = { pid: svc.pid, pgid: svc.pgid, log: ctx.logFile, ...(address ? { address } : {}) };
      const how = parsed ? ` (${outcome.detail})` : '';
      return { outputs, summary: `ready after ${formatMs(performance.now() - started)}, pid ${svc.pid}${how}`, ...(parsed ? { lastProbe: outcome.detail } : {}) };
    }
    case 'exited':
      throw new TaskError(fail.exitedBeforeReady(outcome.exit.code, outcome.exit.signal, tail(), ctx.logFile));
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
