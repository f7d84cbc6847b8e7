/**
 * `stigmer logs [task...] [-f] [-n N] [--since 10m] [--timestamps]` over one data dir: the tasks'
 * logs merged line by line in time order, prefixed by task when more than one is shown, ANSI
 * stripped and secrets masked. `-f` follows across restarts and rotations (and, with no task
 * named, picks up logs that appear later). Needs no lock, no tasks file, no config.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { didYouMean } from '../util/diagnostics.js';
import { EXIT, UserError } from '../util/errors.js';
import { mask } from '../util/mask.js';
import { dataPaths, logFileFor } from '../util/paths.js';
import { stripAnsi } from '../process/log-file.js';
import { displayText } from '../process/log-line.js';
import { StateStore } from './state.js';
import { LogFollower, mergeByTime, readTaskTail, type LogEntry } from './log-read.js';

export interface LogOptions {
  /** tasks to show; empty: every task with a log */
  tasks: string[];
  /** the last N lines of each task (default 100, or every line with `since`) */
  lines?: number;
  /** only lines at or after this epoch ms */
  since?: number;
  follow: boolean;
  /** show each line's RFC 3339 time */
  timestamps?: boolean;
  signal?: AbortSignal;
  /** task names the stack knows besides those with logs (state, tasks file): no did-you-mean for them */
  known?: readonly string[];
  out?: NodeJS.WritableStream;
}

export const DEFAULT_LOG_LINES = 100;
const POLL_MS = 100;

/** Task names that have a log in this data dir (rotated files alone do not count). */
export function loggedTasks(dataDir: string): string[] {
  const dir = dataPaths(dataDir).logs;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/**
 * Task names a stack knows besides those with logs: its state's, and its tasks file's (read as
 * plain YAML, best effort: a broken file must not break `logs`).
 */
export async function knownTaskNames(dataDir: string, file?: string): Promise<string[]> {
  const names = new Set(Object.keys(StateStore.read(dataPaths(dataDir).state)?.tasks ?? {}));
  if (file && existsSync(file)) {
    try {
      const { parse } = await import('yaml');
      const doc = parse(readFileSync(file, 'utf8')) as { tasks?: unknown } | null;
      if (doc?.tasks && typeof doc.tasks === 'object') for (const n of Object.keys(doc.tasks)) names.add(n);
    } catch {
      // unreadable or not YAML: the state's names are enough
    }
  }
  return [...names];
}

/** Formats entries for display: `task | [time ]text`. */
function printer(o: LogOptions, tasks: readonly string[]): (entries: LogEntry[]) => void {
  const out = o.out ?? process.stdout;
  const prefixed = tasks.length !== 1;
  let width = Math.max(0, ...tasks.map((t) => t.length));
  return (entries) => {
    if (!entries.length) return;
    let text = '';
    for (const e of entries) {
      if (prefixed) width = Math.max(width, e.task.length);
      const who = prefixed ? `${e.task.padEnd(width)} | ` : '';
      const when = o.timestamps ? `${e.stamped ? new Date(e.time).toISOString() : ' '.repeat(24)} ` : '';
      text += `${who}${when}${stripAnsi(displayText(e))}\n`;
    }
    out.write(mask(text));
  };
}

/** Exit code 0 (a task known to the stack but without a log yet is said, not an error). */
export async function printLogs(dataDir: string, o: LogOptions): Promise<number> {
  const logged = loggedTasks(dataDir);
  const unknown = o.tasks.filter((t) => !logged.includes(t) && !o.known?.includes(t));
  if (unknown.length) {
    const names = [...new Set([...logged, ...(o.known ?? [])])].sort();
    const first = unknown[0]!;
    // `logs -f x.yaml`, a docker compose habit: here -f is --follow.
    const fileHint = /\.ya?ml$/.test(first) ? `\nhint: -f is --follow for logs; name the stack with --file ${first}` : '';
    throw new UserError(
      `stigmer: no log for "${first}"${didYouMean(first, names)}: the stack has no such task.` +
        (names.length ? ` Tasks: ${names.join(', ')}` : ` (no logs yet in ${dataPaths(dataDir).logs})`) +
        fileHint,
      EXIT.usage,
    );
  }
  const tasks = o.tasks.length ? [...new Set(o.tasks)] : logged;
  const missing = tasks.filter((t) => !logged.includes(t));
  for (const t of missing) process.stderr.write(`stigmer: no log for ${t} yet; it will be written to ${logFileFor(dataDir, t)} once it starts\n`);
  if (!tasks.length) process.stderr.write(`stigmer: no logs yet in ${dataPaths(dataDir).logs} (each service writes <task>.log there once it starts)\n`);

  // With -f and no task named, any log that appears later joins: prefix as if there were several.
  const print = printer(o, o.follow && !o.tasks.length ? [...tasks, '', ''] : tasks);
  const lines = o.lines ?? (o.since !== undefined ? undefined : DEFAULT_LOG_LINES);
  const want = { ...(lines !== undefined ? { lines } : {}), ...(o.since !== undefined ? { since: o.since } : {}) };
  // Followers open before the tail is read, so nothing written in between is lost or shown twice:
  // the tail stops where each follower starts.
  const followers = o.follow ? new Map(tasks.map((t) => [t, new LogFollower(t, logFileFor(dataDir, t))])) : undefined;
  print(mergeByTime(tasks.map((t) => readTaskTail(t, logFileFor(dataDir, t), want, followers ? (followers.get(t)!.startOffset ?? 0) : undefined))));
  if (followers) await follow(dataDir, followers, print, { all: !o.tasks.length, ...(o.signal ? { signal: o.signal } : {}) });
  return EXIT.ok;
}

/** Print what the followers see until `signal`; with `all`, logs that appear later are added. */
async function follow(dataDir: string, followers: Map<string, LogFollower>, print: (e: LogEntry[]) => void, o: { all: boolean; signal?: AbortSignal }): Promise<void> {
  const poll = (): void => {
    if (o.all) for (const t of loggedTasks(dataDir)) if (!followers.has(t)) followers.set(t, new LogFollower(t, logFileFor(dataDir, t), true));
    print(mergeByTime([...followers.values()].map((f) => f.poll())));
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(poll, POLL_MS);
    const end = (): void => {
      clearInterval(timer);
      poll();
      for (const f of followers.values()) f.close();
      resolve();
    };
    if (o.signal?.aborted) end();
    else o.signal?.addEventListener('abort', end, { once: true });
  });
}

/** Follow the tasks' logs from now on, prefixed by task (the foreground `up` streams its services). */
export async function followLogs(dataDir: string, tasks: string[], o: { signal?: AbortSignal; prefix?: boolean }): Promise<void> {
  const followers = new Map(tasks.map((t) => [t, new LogFollower(t, logFileFor(dataDir, t))]));
  const print = printer({ tasks, follow: true }, o.prefix === false ? tasks.slice(0, 1) : [...tasks, '']);
  await follow(dataDir, followers, print, { all: false, ...(o.signal ? { signal: o.signal } : {}) });
}

/** `--since`: a duration back from now ("10m", "2h", "90s") or an RFC 3339 time. */
const SINCE_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseSince(value: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (m) return now - Number(m[1]) * SINCE_UNITS[m[2]!]!;
  const t = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/.test(value.trim()) ? Date.parse(value.trim()) : NaN;
  if (Number.isNaN(t)) throw new UserError(`stigmer logs: --since: expected a duration like 10m, 2h, 90s or a time like 2026-12-02T06:30:00Z, got "${value}"`, EXIT.usage);
  return t;
}
