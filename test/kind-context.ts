/**
 * A hand-built TaskContext for driving task kinds directly, without the engine: it records the
 * undo steps, output lines and progress a kind reports.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TaskError, type Progress, type TaskContext, type TaskRecord, type UndoDescriptor } from '../src/model/kind.js';
import { executeUndo } from '../src/engine/undo.js';
import { cleanupHome, tempHome } from './helpers.js';

export interface TestContext<W> {
  ctx: TaskContext<W>;
  /** undo steps recorded through ctx.recordUndo, in order */
  undos: UndoDescriptor[];
  /** lines shown through ctx.output */
  lines: string[];
  progress: Progress[];
  abort: AbortController;
}

export interface ContextOptions {
  task?: string;
  previous?: TaskRecord;
  specHash?: string;
  force?: boolean;
  baseDir?: string;
  env?: Record<string, string>;
}

/** A context whose processes carry STIGMER_HOME=<home> (how leftovers are found). */
export function makeContext<W>(home: string, withParams: W, opts: ContextOptions = {}): TestContext<W> {
  const task = opts.task ?? 'task';
  const logs = join(home, 'logs');
  mkdirSync(logs, { recursive: true });
  const abort = new AbortController();
  const undos: UndoDescriptor[] = [];
  const lines: string[] = [];
  const progress: Progress[] = [];
  const ctx: TaskContext<W> = {
    task,
    with: withParams,
    env: { STIGMER_HOME: home, ...opts.env },
    baseDir: opts.baseDir ?? home,
    dataDir: home,
    logFile: join(logs, `${task}.log`),
    signal: abort.signal,
    ...(opts.previous ? { previous: opts.previous } : {}),
    specHash: opts.specHash ?? 'spec-1',
    force: opts.force ?? false,
    output: (line) => lines.push(line),
    progress: (p) => progress.push(p),
    recordUndo: (u) => undos.push(u),
    forgetUndo: (u) => {
      const at = undos.indexOf(u);
      if (at >= 0) undos.splice(at, 1);
    },
    secret: () => {},
    prompt: () => Promise.reject(new Error('no prompts in tests')),
    canPrompt: false,
  };
  return { ctx, undos, lines, progress, abort };
}

/** Undo recorded steps in reverse order, at once (SIGKILL). */
export async function undoAll(undos: UndoDescriptor[]): Promise<void> {
  for (const u of [...undos].reverse()) await executeUndo(u, { force: true });
}

/** The TaskError a kind's run rejected with (fails the test if it resolved or threw anything else). */
export async function failureOf(p: Promise<unknown>): Promise<TaskError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof TaskError, `expected a TaskError, got ${String(err)}`);
  return err;
}

/**
 * Run a test body with a temp STIGMER_HOME and a list for the undo steps it collects; afterwards
 * undo them all and assert that nothing started under the home is still running.
 */
export async function inHome(body: (home: string, undos: UndoDescriptor[]) => Promise<void>): Promise<void> {
  const home = tempHome();
  const undos: UndoDescriptor[] = [];
  try {
    await body(home, undos);
  } finally {
    await undoAll(undos);
    await cleanupHome(home);
  }
}
