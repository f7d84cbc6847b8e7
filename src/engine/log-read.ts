/**
 * Reading captured logs (format: src/process/log-line.ts): the end of one task's log across its
 * rotated files, and following it as it grows, rotates and is recreated. Lines without a
 * timestamp (logs written before capture) take the time of the nearest stamped line before them
 * (else after them, else the file's mtime), so they still merge in roughly the right place.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { LineFollower, withFile } from '../process/follow.js';
import { parseLogLine, type LogStream } from '../process/log-line.js';

export interface LogEntry {
  task: string;
  /** epoch ms (inherited for a line without its own timestamp) */
  time: number;
  /** false when `time` was inherited */
  stamped: boolean;
  stream: LogStream | undefined;
  text: string;
}

/** Rotated files a reader looks through, oldest last: `<file>`, `<file>.1`, ... */
const MAX_ROTATED = 20;
const BLOCK = 256 * 1024;
/** A `--since` read stops after this much of one task's logs (an old, unrotated file can be huge). */
const SINCE_CAP = 256 * 1024 * 1024;

interface TailWant {
  /** at most this many lines (undefined: no limit) */
  lines?: number;
  /** only lines at or after this epoch ms */
  since?: number;
}

/**
 * The complete lines at the end of a file: enough for `want.lines`, or back to `want.since`.
 * `whole` says the start of the file was reached.
 */
function readFileTail(file: string, want: TailWant, budget: number, endAt?: number): { lines: string[]; whole: boolean; bytes: number } {
  return withFile(file, { lines: [], whole: true, bytes: 0 }, (fd) => {
    const size = Math.min(fstatSync(fd).size, endAt ?? Infinity);
    const blocks: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    while (pos > 0 && size - pos < budget) {
      const len = Math.min(BLOCK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, pos);
      blocks.unshift(buf);
      for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) newlines++;
      if (want.lines !== undefined && newlines > want.lines) break;
      if (want.since !== undefined && pos > 0) {
        // The first whole line of this block says how far back we are.
        const nl = buf.indexOf(10);
        const end = nl >= 0 ? buf.indexOf(10, nl + 1) : -1;
        const t = end > nl ? parseLogLine(buf.subarray(nl + 1, end).toString('utf8')).time : undefined;
        if (t !== undefined && t < want.since) break;
      }
    }
    const lines = Buffer.concat(blocks).toString('utf8').split('\n');
    if (pos > 0) lines.shift(); // cut by the read
    if (lines.at(-1) === '') lines.pop();
    return { lines: lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)), whole: pos === 0, bytes: size - pos };
  });
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Parse lines of one file; unstamped lines inherit a neighbour's time (see the header). */
export function toEntries(task: string, lines: string[], fallback: number): LogEntry[] {
  const out: LogEntry[] = lines.map((l) => {
    const p = parseLogLine(l);
    return { task, time: p.time ?? NaN, stamped: p.time !== undefined, stream: p.stream, text: p.text };
  });
  let last = NaN;
  for (const e of out) {
    if (Number.isNaN(e.time)) e.time = last;
    else last = e.time;
  }
  let next = fallback;
  for (let i = out.length - 1; i >= 0; i--) {
    const e = out[i]!;
    if (Number.isNaN(e.time)) e.time = next;
    else if (e.stamped) next = e.time;
  }
  return out;
}

/**
 * The last lines of a task's log (`<file>` and its rotated files), oldest first; of `<file>`, only
 * its first `endAt` bytes when given (where a follower took over).
 */
export function readTaskTail(task: string, file: string, want: TailWant, endAt?: number): LogEntry[] {
  const parts: LogEntry[][] = [];
  let have = 0;
  let budget = SINCE_CAP;
  for (let i = 0; i <= MAX_ROTATED && budget > 0; i++) {
    const f = i === 0 ? file : `${file}.${i}`;
    if (i > 0 && !exists(f)) break;
    const remaining = want.lines === undefined ? undefined : want.lines - have;
    const { lines, whole, bytes } = readFileTail(f, { ...want, ...(remaining !== undefined ? { lines: remaining } : {}) }, want.lines === undefined ? budget : Infinity, i === 0 ? endAt : undefined);
    budget -= bytes;
    let entries = toEntries(task, lines, mtime(f));
    if (want.since !== undefined) entries = entries.filter((e) => e.time >= want.since!);
    parts.unshift(entries);
    have += entries.length;
    if (!whole) break;
    if (want.lines !== undefined && have >= want.lines) break;
    if (want.since !== undefined && entries.length < lines.length) break; // reached older lines
  }
  const all = parts.flat();
  if (want.lines === undefined) return all;
  return want.lines === 0 ? [] : all.slice(-want.lines);
}

function exists(f: string): boolean {
  try {
    statSync(f);
    return true;
  } catch {
    return false;
  }
}

/** Stable merge by time: lines of one millisecond keep their task's order. */
export function mergeByTime(lists: LogEntry[][]): LogEntry[] {
  return lists.flat().sort((a, b) => a.time - b.time);
}

/**
 * Follows one log file from where it is now: what is appended, then, when `<file>` is replaced
 * (rotated, or removed and recreated), the rest of the old one and the new one from its start.
 */
export class LogFollower {
  private readonly lines: LineFollower;

  constructor(
    readonly task: string,
    readonly file: string,
    fromStart = false,
  ) {
    this.lines = new LineFollower(file, { fromStart, maxRotated: MAX_ROTATED });
  }

  /** the size of `file` when following began (undefined: it did not exist yet) */
  get startOffset(): number | undefined {
    return this.lines.startOffset;
  }

  /** New complete lines since the last call; a line without a timestamp, seen as it is written, is as old as now. */
  poll(): LogEntry[] {
    return toEntries(this.task, this.lines.poll(), Date.now());
  }

  close(): void {
    this.lines.close();
  }
}
