/**
 * `exec`: run a command to completion (no shell); done when it exits 0.
 *
 * The command runs in its own process group: an abort (Ctrl-C, a failed sibling, the task's
 * timeout) stops the whole group, grandchildren included. Its output goes, ANSI stripped and
 * secrets masked, to the task's log file and to the progress display.
 */
import { closeSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { TaskError, type TaskContext, type TaskKind, type TaskResult, type UndoDescriptor } from '../src/model/kind.js';
import { fail } from '../src/model/failure.js';
import { formatMs } from '../src/util/format.js';
import { mask } from '../src/util/mask.js';
import { runCommand } from '../src/process/command.js';
import { abortError, childEnv, formatCommandLine, shortCommand } from '../src/process/proc.js';
import { openLog } from '../src/process/log-file.js';

export interface ExecWith {
  command: string;
  args?: Array<string | number | boolean>;
  /** relative to the tasks file */
  cwd?: string;
  env?: Record<string, string | number | boolean>;
}

/** SIGTERM to SIGKILL for a command a later `down` stops (the run that started it was killed). */
const IN_FLIGHT_GRACE_MS = 2000;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

async function run(ctx: TaskContext<ExecWith>): Promise<TaskResult> {
  const prev = ctx.previous;
  if (!ctx.force && prev?.status === 'done' && prev.specHash === ctx.specHash) {
    return { satisfied: true, outputs: prev.outputs ?? {}, summary: 'already done' };
  }
  const w = ctx.with;
  if (typeof w.command !== 'string' || w.command === '') {
    throw new TaskError(fail.invalidInput(`Expected with.command to be a command, got ${JSON.stringify(w.command)}`));
  }
  const args = (w.args ?? []).map(String);
  const line = shortCommand(formatCommandLine(w.command, args));
  const cwd = resolve(ctx.baseDir, w.cwd ?? '.');
  if (!isDirectory(cwd)) throw new TaskError(fail.spawnFailed(line, `working directory ${cwd} does not exist`));
  if (ctx.signal.aborted) throw abortError(ctx.signal);

  const log = openLog(ctx.logFile);
  const started = performance.now();
  let result;
  // Recorded while it runs, so a kill -9 of the CLI leaves a record `down` can stop it by.
  let inFlight: UndoDescriptor | undefined;
  try {
    writeSync(log, `--- ${new Date().toISOString()} running ${mask(line)}\n`);
    result = await runCommand({
      command: w.command,
      args,
      cwd,
      env: childEnv(ctx.env, w.env),
      stack: ctx.dataDir,
      signal: ctx.signal,
      onSpawn(started) {
        inFlight = {
          type: 'stop-process',
          ...started,
          command: formatCommandLine(w.command, args),
          signal: 'SIGTERM',
          graceMs: IN_FLIGHT_GRACE_MS,
          startedAt: new Date().toISOString(),
        };
        ctx.recordUndo(inFlight);
      },
      onLine(text) {
        const clean = mask(text);
        writeSync(log, `${clean}\n`);
        if (clean.trim()) ctx.output(clean);
      },
    });
  } finally {
    closeSync(log);
    if (inFlight) ctx.forgetUndo(inFlight);
  }
  if (result.spawnError) throw new TaskError(fail.spawnFailed(line, result.spawnError));
  if (result.aborted) throw abortError(ctx.signal);
  if (result.exitCode !== 0) {
    throw new TaskError(fail.exitNonZero(line, result.exitCode, result.signal, result.tail.map(mask), ctx.logFile));
  }
  return {
    outputs: { exit_code: 0, stdout: result.stdout.trim() },
    summary: `exited 0 after ${formatMs(performance.now() - started)}`,
  };
}

const exec: TaskKind<ExecWith> = { name: 'exec', mode: 'oneshot', run };
export default exec;
