/**
 * Reading state.json as the untrusted data it is: anyone may have edited it, a full disk may have
 * truncated it. Absent is told apart from unreadable:
 *   absent   -> nothing was recorded
 *   corrupt  -> not JSON / empty / not a state at all: what it recorded may still run
 *   ok       -> the records the schema (schemas/state.schema.json, precompiled) accepts, plus
 *               the refused ones with one problem line each; they are never acted on
 * A stop step naming a group stigmer must never signal (identity.ts) is refused here too.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import type { TaskRecord } from '../model/kind.js';
import { signalRefusal } from '../process/identity.js';
import { describeFsError } from '../util/fs-error.js';
import { validatorFile } from '../util/paths.js';
import type { AjvError, Validator } from '../util/json-pointer.js';
import { schemaProblems, showValue } from '../util/schema-errors.js';

export interface StateData {
  version: 1;
  /** the tasks file the state belongs to */
  file?: string;
  updatedAt?: string;
  seq: number;
  tasks: Record<string, TaskRecord>;
  /** the supervisor that runs this stack (absent: started without one) */
  supervisor?: SupervisorRecord;
}

/** The stack's supervisor process, as it records itself. */
export interface SupervisorRecord {
  pid: number;
  /** field 22 of /proc/<pid>/stat: tells a reused pid apart */
  startTime: number;
  /** ISO time it started */
  startedAt: string;
  /** ISO time it last refreshed the state (every few seconds while alive) */
  lastSeen: string;
  /** its Unix socket */
  socket: string;
}

export type StateLoad =
  | { status: 'absent' }
  | { status: 'corrupt'; reason: string; text?: string }
  | { status: 'unreadable'; reason: string }
  | { status: 'ok'; data: StateData; invalid: Record<string, unknown>; problems: string[] };

let validator: Validator | undefined;
function validate(data: unknown): AjvError[] {
  warmStateValidator();
  return validator!(data) ? [] : (validator!.errors ?? []);
}

/** Load the state's validator now (~3 ms): the supervisor does it once idle, so that a `down`'s first read of the state does not wait for it. */
export function warmStateValidator(): void {
  validator ??= (createRequire(import.meta.url)(validatorFile('state')) as { default: Validator }).default;
}

/** Problems of each task's record, by task name; `top` for the state as a whole. */
function problemsOf(parsed: unknown): { top: string[]; byTask: Map<string, string[]> } {
  const top: string[] = [];
  const byTask = new Map<string, string[]>();
  for (const p of schemaProblems(validate(parsed), parsed, { root: 'the state' })) {
    if (p.path[0] !== 'tasks' || p.path.length < 2) {
      top.push(p.message);
      continue;
    }
    const name = p.path[1]!;
    const below = p.path.slice(2);
    // A group stigmer must never signal reads as what it is, not as a number out of range.
    const step = below[0] === 'undo' && below.length === 3 && (below[2] === 'pid' || below[2] === 'pgid') ? (parsed as StateData).tasks[name]?.undo?.[Number(below[1])] : undefined;
    const refusal = step ? signalRefusal(step as never) : undefined;
    const line = refusal ? `tasks.${name}: ${refusal}; not signalled` : p.message;
    const lines = byTask.get(name) ?? [];
    if (!lines.includes(line)) lines.push(line);
    byTask.set(name, lines);
  }
  // Valid by the schema, yet naming stigmer's own group or its caller's.
  const tasks = (parsed as { tasks?: unknown }).tasks;
  if (top.length === 0 && tasks && typeof tasks === 'object') {
    for (const [name, rec] of Object.entries(tasks as Record<string, TaskRecord>)) {
      if (byTask.has(name)) continue;
      rec.undo.forEach((u) => {
        const refusal = u.type === 'stop-process' ? signalRefusal(u) : undefined;
        if (refusal) byTask.set(name, [...(byTask.get(name) ?? []), `tasks.${name}: ${refusal}; not signalled`]);
      });
    }
  }
  return { top, byTask };
}

/** Read and check the state file; `label` prefixes problem lines ("state.json"). */
export function loadState(path: string, label = 'state.json'): StateLoad {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'absent' };
    return { status: 'unreadable', reason: describeFsError(err, path) };
  }
  if (text.trim() === '') return { status: 'corrupt', reason: 'it is empty', text };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { status: 'corrupt', reason: `it is not JSON (${(err as Error).message})`, text };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { status: 'corrupt', reason: `it holds ${showValue(parsed)}, not a state object`, text };
  const { top, byTask } = problemsOf(parsed);
  if (top.length) return { status: 'corrupt', reason: top.join('; '), text };
  const data = parsed as StateData;
  const invalid: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, lines] of byTask) {
    invalid[name] = data.tasks[name];
    delete data.tasks[name];
    for (const l of lines) problems.push(`${label}: ${l}`);
  }
  if (typeof data.seq !== 'number') data.seq = Math.max(0, ...Object.values(data.tasks).map((r) => r.seq ?? 0));
  return { status: 'ok', data, invalid, problems };
}
