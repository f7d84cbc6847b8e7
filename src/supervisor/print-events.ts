/**
 * `stigmer events [task...] [--json] [-n N] [--since 10m] [--no-follow]` (and `local events`):
 * the stack's lifecycle events (events.ts), one line each or one JSON object a line, the last
 * few recorded ones first, then new ones as they happen until Ctrl-C. `--no-follow` prints what
 * is recorded and exits: what a CI step or an editor reads after `up`.
 */
import { mask } from '../util/mask.js';
import { EXIT } from '../util/errors.js';
import { eventsFile, followEvents, formatEvent, readEvents, type SupervisorEvent } from './events.js';

export interface PrintEventsOptions {
  /** only these tasks' events (the supervisor's own are always shown) */
  tasks: string[];
  json: boolean;
  follow: boolean;
  /** the last N recorded events first (default 10, or all of them with `since` or without `follow`) */
  lines?: number;
  /** only events at or after this epoch ms */
  since?: number;
  signal?: AbortSignal;
  out?: NodeJS.WritableStream;
  /** how often a follower looks at the file (ms) */
  pollMs?: number;
}

export const DEFAULT_EVENT_LINES = 10;

export async function printEvents(dataDir: string, o: PrintEventsOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const last = o.lines ?? (o.since !== undefined || !o.follow ? undefined : DEFAULT_EVENT_LINES);
  const filter = { ...(o.tasks.length ? { tasks: o.tasks } : {}), ...(o.since !== undefined ? { since: o.since } : {}) };
  let width = Math.max(10, ...o.tasks.map((t) => t.length));
  const print = (ev: SupervisorEvent): void => {
    width = Math.max(width, (ev.task ?? '').length);
    out.write(mask(o.json ? JSON.stringify(ev) : formatEvent(ev, width)) + '\n');
  };
  // Columns line up: as wide as the names recorded so far (a new, longer one widens what follows).
  const recorded = readEvents(dataDir);
  width = Math.max(width, ...recorded.map((ev) => (ev.task ?? '').length));
  if (!o.follow) {
    const events = readEvents(dataDir, { ...filter, ...(last !== undefined ? { last } : {}) });
    if (!events.length) process.stderr.write(`stigmer: no events recorded yet (${eventsFile(dataDir)}: a supervised stack writes them once it is up)\n`);
    for (const ev of events) print(ev);
    return EXIT.ok;
  }
  if (!recorded.length) process.stderr.write(`stigmer: no events recorded yet in ${eventsFile(dataDir)}; waiting for them (Ctrl-C to stop)\n`);
  for await (const ev of followEvents(dataDir, { ...filter, history: true, ...(last !== undefined ? { last } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(o.pollMs ? { pollMs: o.pollMs } : {}) })) print(ev);
  return EXIT.ok;
}
