/**
 * The supervisor's lifecycle events: `<data-dir>/events.jsonl`, one JSON object a line, what
 * `stigmer events` prints and follows and what CI and editors script against.
 *
 *   appendEvent(dataDir, { task: 'server', type: 'exited', code: 1 });       // the supervisor
 *   appendEvent(dataDir, { task: 'server', type: 'restarting', attempt: 2, max: 5, delay_ms: 2000 });
 *   readEvents(dataDir, { last: 50 });                                       // status, events
 *   for await (const ev of followEvents(dataDir, { signal })) print(ev);     // events (follows)
 *
 * - Bounded: before a line would take the file past 1 MiB it becomes `events.jsonl.1` (the older
 *   `.1` is dropped), so the events take at most ~2 MiB. Files are created 0600.
 * - Appends are synchronous, one `write(2)` of a whole line with O_APPEND: a reader never sees
 *   half a line from a live writer, and an event is on disk before the supervisor moves on. Events
 *   come a few a second at most, so this never slows a service down.
 * - appendEvent never throws: a full disk loses the event, not the supervisor. Text goes through
 *   `mask`, so a secret never reaches the file.
 * - Readers skip lines that are not an event (a crash mid-line, a hand edit) rather than fail.
 */
import { closeSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { mask } from '../util/mask.js';
import { LineFollower, readLines } from '../process/follow.js';
import { dataPaths } from '../util/paths.js';
import { makePrivateDir } from '../util/private-dir.js';

/** What happened, one word each. */
export type SupervisorEventType =
  /** a service's process was spawned (first start or a restart) */
  | 'started'
  /** its readiness probe passed */
  | 'ready'
  /** it exited (`code` or `signal`) */
  | 'exited'
  /** a restart is scheduled (`attempt` of `max`, after `delay_ms`; `detail` says why) */
  | 'restarting'
  /** `failures` consecutive liveness checks failed (`detail`: the last one) */
  | 'unhealthy'
  /** a liveness check passed again after failing */
  | 'healthy'
  /** too many restarts within the window: no more restarts */
  | 'crash-loop'
  /** it was stopped on purpose (down, restart <task>) */
  | 'stopped'
  /** the supervisor process began (`task` is null) */
  | 'supervisor-started'
  /** the supervisor process ended (`task` is null) */
  | 'supervisor-stopped';

export const EVENT_TYPES: readonly SupervisorEventType[] = [
  'started',
  'ready',
  'exited',
  'restarting',
  'unhealthy',
  'healthy',
  'crash-loop',
  'stopped',
  'supervisor-started',
  'supervisor-stopped',
];

export interface SupervisorEvent {
  /** RFC 3339 with milliseconds, UTC */
  at: string;
  /** the task it is about; null for the supervisor's own events */
  task: string | null;
  type: SupervisorEventType;
  /** exit code (exited, crash-loop) */
  code?: number | null;
  /** the signal that ended it, e.g. "SIGKILL" */
  signal?: string | null;
  /** restart number within the window (restarting), counting from 1 */
  attempt?: number;
  /** max_restarts (restarting, crash-loop) */
  max?: number;
  /** the backoff before this restart (restarting) */
  delay_ms?: number;
  /** a short human text: why, the failed check, the last log line */
  detail?: string;
  /** the supervisor's pid (supervisor-started/stopped) or the service's (started) */
  pid?: number;
}

/** What a writer passes: `at` defaults to now. */
export type NewEvent = Omit<SupervisorEvent, 'at'> & { at?: string };

/** The events file rotates before it would pass this size. */
export const EVENTS_MAX_SIZE = 1024 * 1024;

export function eventsFile(dataDir: string): string {
  return join(dataPaths(dataDir).root, 'events.jsonl');
}

/** The rotated file (older events). */
function rotatedFile(dataDir: string): string {
  return `${eventsFile(dataDir)}.1`;
}

/**
 * Append one event. Returns false when it could not be written (the reason is not the caller's
 * problem: the supervisor carries on). `maxSize` is for tests.
 */
export function appendEvent(dataDir: string, ev: NewEvent, o: { maxSize?: number } = {}): boolean {
  const file = eventsFile(dataDir);
  const line = Buffer.from(mask(JSON.stringify(orderedEvent(ev))) + '\n');
  try {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      // not there yet
    }
    if (size > 0 && size + line.length > (o.maxSize ?? EVENTS_MAX_SIZE)) renameSync(file, rotatedFile(dataDir));
    let fd: number;
    try {
      fd = openSync(file, 'a', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      makePrivateDir(dataDir); // not recursive mkdir: under /proc that one never returns
      fd = openSync(file, 'a', 0o600);
    }
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
}

/** Fields in a fixed order, so lines read alike: at, task, type, then the rest. */
function orderedEvent(ev: NewEvent): SupervisorEvent {
  const { at, task, type, ...rest } = ev;
  const out: SupervisorEvent = { at: at ?? new Date().toISOString(), task, type };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/** One line as an event, or undefined when it is not one. */
export function parseEvent(line: string): SupervisorEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o['at'] !== 'string' || Number.isNaN(Date.parse(o['at']))) return undefined;
  if (typeof o['type'] !== 'string' || !(EVENT_TYPES as readonly string[]).includes(o['type'])) return undefined;
  if (o['task'] !== null && typeof o['task'] !== 'string') return undefined;
  const ev: SupervisorEvent = { at: o['at'], task: o['task'], type: o['type'] as SupervisorEventType };
  if (typeof o['code'] === 'number' || o['code'] === null) ev.code = o['code'];
  if (typeof o['signal'] === 'string' || o['signal'] === null) ev.signal = o['signal'];
  for (const k of ['attempt', 'max', 'delay_ms', 'pid'] as const) if (typeof o[k] === 'number' && Number.isFinite(o[k])) ev[k] = o[k];
  if (typeof o['detail'] === 'string') ev.detail = o['detail'];
  return ev;
}

export interface ReadEventsOptions {
  /** only the last N events */
  last?: number;
  /** only events at or after this epoch ms */
  since?: number;
  /** only these tasks' events (the supervisor's own are kept) */
  tasks?: readonly string[];
}

function keep(ev: SupervisorEvent, o: ReadEventsOptions): boolean {
  if (o.since !== undefined && Date.parse(ev.at) < o.since) return false;
  if (o.tasks?.length && ev.task !== null && !o.tasks.includes(ev.task)) return false;
  return true;
}

/** The events recorded so far (rotated file first), oldest first. */
export function readEvents(dataDir: string, o: ReadEventsOptions = {}): SupervisorEvent[] {
  const lines = [...readLines(rotatedFile(dataDir), { complete: true }), ...readLines(eventsFile(dataDir), { complete: true })];
  const events: SupervisorEvent[] = [];
  for (const l of lines) {
    const ev = parseEvent(l);
    if (ev && keep(ev, o)) events.push(ev);
  }
  return o.last === undefined ? events : o.last <= 0 ? [] : events.slice(-o.last);
}

export interface FollowEventsOptions extends ReadEventsOptions {
  signal?: AbortSignal;
  /** also yield what was recorded before (per `last`/`since`); default: only new events */
  history?: boolean;
  /** how often the file is looked at (default 100 ms) */
  pollMs?: number;
}

/**
 * Events as they are appended, until `signal` aborts; with `history`, the recorded ones first.
 * Follows across rotation (the rest of the old file, then the new one) and a file that appears
 * only later. Nothing written between the history and the follow is lost or repeated.
 */
export async function* followEvents(dataDir: string, o: FollowEventsOptions = {}): AsyncGenerator<SupervisorEvent> {
  // Two rotations between looks are followed too (through the rotated file); more would need
  // ~2 MiB of events within one poll.
  const follower = new LineFollower(eventsFile(dataDir));
  try {
    if (o.history) {
      // The history is read through the follower's own file, so a rotation in between neither
      // loses nor repeats a line: the rotated file counts only when it is not the one followed.
      const lines = [...(follower.isFile(rotatedFile(dataDir)) ? [] : readLines(rotatedFile(dataDir), { complete: true })), ...follower.head()];
      const events = lines.map(parseEvent).filter((ev): ev is SupervisorEvent => ev !== undefined && keep(ev, o));
      for (const ev of o.last === undefined ? events : o.last <= 0 ? [] : events.slice(-o.last)) yield ev;
    }
    const pollMs = o.pollMs ?? 100;
    while (!o.signal?.aborted) {
      for (const l of follower.poll()) {
        const ev = parseEvent(l);
        if (ev && keep(ev, o)) yield ev;
      }
      await pause(pollMs, o.signal);
    }
    // What came in just before the abort.
    for (const l of follower.poll()) {
      const ev = parseEvent(l);
      if (ev && keep(ev, o)) yield ev;
    }
  } finally {
    follower.close();
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** One event as a line for people: `2026-12-02T14:03:11.201Z server      exited code 1`. */
export function formatEvent(ev: SupervisorEvent, width = 0): string {
  const who = (ev.task ?? 'supervisor').padEnd(width);
  const parts: string[] = [ev.at, who, ev.type];
  if (ev.type === 'exited' || ev.type === 'crash-loop') {
    if (ev.signal) parts.push(`signal ${ev.signal}`);
    else if (ev.code !== undefined && ev.code !== null) parts.push(`code ${ev.code}`);
  }
  if (ev.attempt !== undefined) parts.push(ev.max !== undefined ? `(${ev.attempt}/${ev.max})` : `(${ev.attempt})`);
  else if (ev.type === 'crash-loop' && ev.max !== undefined) parts.push(`(more than ${ev.max} restarts)`);
  if (ev.delay_ms !== undefined) parts.push(`in ${formatDelay(ev.delay_ms)}`);
  if (ev.pid !== undefined) parts.push(`pid ${ev.pid}`);
  if (ev.detail) parts.push(`- ${ev.detail.replace(/[\r\n]+/g, ' ')}`);
  return parts.join(' ');
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Number((ms / 1000).toFixed(ms % 1000 ? 1 : 0))}s`;
}
