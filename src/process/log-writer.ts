/**
 * Log capture: a service's stdout and stderr pipes into `<data-dir>/logs/<task>.log`, each line
 * stamped (format: log-line.ts), rotated by size, never slowing the service down.
 *
 *   const log = openLogWriter({ file: logFileFor(dataDir, task), maxSize, keep });
 *   log.attach(child.stdout!, 'out');
 *   log.attach(child.stderr!, 'err');
 *   log.writeEvent('restarted after exit code 1 (2/5)');   // "<ts> --- restarted ..."
 *   ...
 *   await log.close();          // after the child exited: partial lines, then the file
 *
 * - One writer per task, kept across restarts: attach the new child's pipes to the same writer.
 * - Reads continuously (flowing mode, never paused), so a service never blocks on a full pipe.
 *   File writes are asynchronous, one in flight; what arrives meanwhile is queued. When the queue
 *   passes `maxPending` bytes (the disk cannot keep up), new lines are dropped and counted, and
 *   one `--- dropped N lines ...` line marks the gap once writing caught up.
 * - Partial lines: a line without its newline waits for the rest, at most `partialMs` (then it is
 *   written as it is, so `logs -f` shows a prompt) or `maxLine` bytes (then it is split).
 * - Rotation: before a write would take the file past `maxSize`, `<task>.log` becomes
 *   `<task>.log.1` (`.1` -> `.2`, ...; the one past `keep` is deleted). A file holds whole lines
 *   and at most `maxSize` bytes (unless one line is longer), so the task's logs take at most
 *   (keep + 1) x maxSize. Files are created 0600.
 * - A write error (disk full) never throws at the service's owner: its lines count as dropped and
 *   `stats.lastError` says why.
 */
import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, write } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { Stamp, type LogStream } from './log-line.js';
import { errnoText } from '../util/fs-error.js';

export interface LogWriterOptions {
  /** the current log file, e.g. `<data-dir>/logs/<task>.log` */
  file: string;
  /** rotate before the file would pass this many bytes (default 10 MiB) */
  maxSize?: number;
  /** rotated files kept: `<file>.1` .. `<file>.<keep>` (default 3; 0 keeps none) */
  keep?: number;
  /** bytes queued for the disk before new lines are dropped (default 8 MiB) */
  maxPending?: number;
  /** a line longer than this is split (default 64 KiB) */
  maxLine?: number;
  /** a partial line is written after this long without its newline (default 1000 ms) */
  partialMs?: number;
  /** the clock, epoch ms (tests) */
  now?: () => number;
}

export interface LogWriterStats {
  /** lines queued for the file (stigmer's own included) */
  lines: number;
  /** bytes written to disk */
  written: number;
  /** lines dropped because the disk fell behind or failed */
  dropped: number;
  rotations: number;
  /** the last write error, e.g. "ENOSPC: no space left on device" */
  lastError?: string;
}

export interface LogWriter {
  readonly file: string;
  readonly stats: Readonly<LogWriterStats>;
  /** Capture a pipe until it ends; resolves then (never rejects). */
  attach(stream: Readable, name: 'out' | 'err'): Promise<void>;
  /** One of stigmer's own lines (`--- <text>`); each line of a multi-line text is stamped. */
  writeEvent(text: string): void;
  /** Resolves once everything queued so far is on disk. */
  flush(): Promise<void>;
  /** Write what partial lines are held, flush, close the file. Later writes are ignored. */
  close(): Promise<void>;
}

export const DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 3;
/**
 * One write call takes at most this much, and at most an eighth of maxSize (whole queued pieces),
 * so a rotated file is at least ~7/8 full.
 */
const BATCH = 1024 * 1024;

interface Capture {
  name: LogStream;
  decoder: StringDecoder;
  /** the text of a line still waiting for its newline */
  carry: string;
  /** when `carry` began (its line's time) */
  carryAt: number;
  /** a held line was written before its newline came: that newline ends nothing */
  cut: boolean;
  timer?: NodeJS.Timeout | undefined;
}

export function openLogWriter(o: LogWriterOptions): LogWriter {
  return new FileLogWriter(o);
}

class FileLogWriter implements LogWriter {
  readonly file: string;
  readonly stats: LogWriterStats = { lines: 0, written: 0, dropped: 0, rotations: 0 };
  private readonly maxSize: number;
  private readonly keep: number;
  private readonly maxPending: number;
  private readonly maxLine: number;
  private readonly partialMs: number;
  private readonly now: () => number;
  private readonly stamp = new Stamp();
  private fd: number;
  private size: number;
  /** text queued for the disk, in order; `pending` is its length in UTF-16 units (~bytes) */
  private queue: string[] = [];
  private pending = 0;
  /** lines dropped since the last marker */
  private gap = 0;
  private writing = false;
  private closed = false;
  private idle: (() => void)[] = [];
  private readonly captures = new Set<Capture>();

  constructor(o: LogWriterOptions) {
    this.file = o.file;
    this.maxSize = Math.max(1, o.maxSize ?? DEFAULT_LOG_MAX_SIZE);
    this.keep = Math.max(0, Math.floor(o.keep ?? DEFAULT_LOG_KEEP));
    this.maxPending = o.maxPending ?? 8 * 1024 * 1024;
    this.maxLine = o.maxLine ?? 64 * 1024;
    this.partialMs = o.partialMs ?? 1000;
    this.now = o.now ?? Date.now;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    this.fd = openFile(this.file);
    this.size = fstatSync(this.fd).size;
  }

  attach(stream: Readable, name: 'out' | 'err'): Promise<void> {
    const c: Capture = { name, decoder: new StringDecoder('utf8'), carry: '', carryAt: 0, cut: false };
    this.captures.add(c);
    return new Promise<void>((resolve) => {
      let done = false;
      const end = (): void => {
        if (done) return;
        done = true;
        this.take(c, c.decoder.end(), true);
        this.captures.delete(c);
        resolve();
      };
      stream.on('data', (chunk: Buffer | string) => this.take(c, typeof chunk === 'string' ? chunk : c.decoder.write(chunk), false));
      stream.once('end', end);
      stream.once('close', end);
      // A read error ends the capture; the owner learns of the child's end from the child.
      stream.once('error', end);
    });
  }

  writeEvent(text: string): void {
    if (this.closed) return;
    const prefix = this.stamp.prefix(this.now(), '---');
    const lines = text.split(/\r?\n/);
    this.enqueue(lines.map((l) => prefix + l + '\n').join(''), lines.length, true);
  }

  flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return this.flush();
    for (const c of this.captures) this.flushCarry(c);
    // Lines dropped at the very end are marked too (no later line would carry the marker).
    if (this.gap) this.enqueue('', 0, true);
    this.closed = true;
    await this.flush();
    if (this.fd >= 0) closeSync(this.fd);
  }

  /** A chunk of one pipe: its complete lines are queued, a trailing partial line is held. */
  private take(c: Capture, text: string, ending: boolean): void {
    if (this.closed) return;
    const now = this.now();
    let start = 0;
    let out = '';
    let lines = 0;
    if (c.cut && text.length) {
      c.cut = false;
      if (text.startsWith('\r\n')) start = 2;
      else if (text.startsWith('\n')) start = 1;
    }
    if (c.carry) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        c.carry += text;
        if (ending || c.carry.length >= this.maxLine) this.flushCarry(c);
        return;
      }
      out = this.stamp.prefix(c.carryAt, c.name) + stripCr(c.carry + text.slice(0, nl)) + '\n';
      lines = 1;
      c.carry = '';
      start = nl + 1;
    }
    const last = text.lastIndexOf('\n');
    if (last >= start) {
      const prefix = this.stamp.prefix(now, c.name);
      for (let i = start; i <= last; ) {
        const nl = text.indexOf('\n', i);
        out += prefix + stripCr(text.slice(i, nl)) + '\n';
        lines++;
        i = nl + 1;
      }
      start = last + 1;
    }
    if (lines) this.enqueue(out, lines, false);
    if (start < text.length) {
      c.carry = text.slice(start);
      c.carryAt = now;
      if (ending || c.carry.length >= this.maxLine) this.flushCarry(c);
      else this.watchCarry(c);
    } else if (ending) this.flushCarry(c);
  }

  /** Write a held partial line as a line of its own. */
  private flushCarry(c: Capture): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    if (!c.carry) return;
    const line = this.stamp.prefix(c.carryAt, c.name) + stripCr(c.carry) + '\n';
    c.carry = '';
    c.cut = true;
    this.enqueue(line, 1, false);
  }

  private watchCarry(c: Capture): void {
    if (c.timer) return;
    const check = (): void => {
      c.timer = undefined;
      if (!c.carry) return;
      const age = this.now() - c.carryAt;
      if (age >= this.partialMs) this.flushCarry(c);
      else (c.timer = setTimeout(check, this.partialMs - age)).unref();
    };
    (c.timer = setTimeout(check, this.partialMs)).unref();
  }

  /** Queue text for the disk, or count its lines as dropped when the disk is too far behind. */
  private enqueue(text: string, lines: number, ours: boolean): void {
    if (!ours && this.pending + text.length > this.maxPending) {
      this.gap += lines;
      this.stats.dropped += lines;
      return;
    }
    if (this.gap) {
      const n = this.gap;
      this.gap = 0;
      const marker = `${this.stamp.prefix(this.now(), '---')}dropped ${n} line${n === 1 ? '' : 's'}: the log could not be written fast enough\n`;
      this.queue.push(marker);
      this.pending += marker.length;
      this.stats.lines++;
    }
    this.queue.push(text);
    this.pending += text.length;
    this.stats.lines += lines;
    if (!this.writing) this.writeNext();
  }

  /** The next batch: whole queued pieces up to the limit (at least one piece). */
  private writeNext(): void {
    if (this.queue.length === 0) {
      this.writing = false;
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    this.writing = true;
    const limit = Math.max(1, Math.min(BATCH, Math.floor(this.maxSize / 8)));
    let text = this.queue.shift()!;
    while (this.queue.length && text.length + this.queue[0]!.length <= limit) text += this.queue.shift()!;
    this.pending -= text.length;
    let buf = Buffer.from(text);
    if (buf.length > limit) {
      // A piece bigger than a batch (a whole pipe chunk): cut it at a line end, put the rest back.
      const cut = buf.lastIndexOf(10, limit - 1);
      if (cut >= 0 && cut + 1 < buf.length) {
        const rest = buf.subarray(cut + 1).toString();
        this.queue.unshift(rest);
        this.pending += rest.length;
        buf = buf.subarray(0, cut + 1);
      }
    }
    if (this.size > 0 && this.size + buf.length > this.maxSize) this.rotate();
    if (this.fd < 0) {
      // The file could not be opened again (its folder was removed): the lines are lost, counted.
      this.stats.dropped += countLines(buf);
      return this.writeNext();
    }
    this.writeAll(buf, 0);
  }

  private writeAll(buf: Buffer, from: number): void {
    write(this.fd, buf, from, buf.length - from, null, (err, n) => {
      if (err) {
        this.stats.lastError = errnoText(err);
        this.stats.dropped += countLines(buf.subarray(from));
      } else {
        this.size += n;
        this.stats.written += n;
        if (from + n < buf.length) return this.writeAll(buf, from + n);
      }
      this.writeNext();
    });
  }

  /** `<file>` -> `<file>.1` -> ... -> `<file>.<keep>` (dropped), then a fresh `<file>`. */
  private rotate(): void {
    try {
      closeSync(this.fd);
      rmSync(`${this.file}.${this.keep}`, { force: true });
      for (let i = this.keep - 1; i >= 1; i--) renameQuiet(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      if (this.keep > 0) renameSync(this.file, `${this.file}.1`);
      else rmSync(this.file, { force: true });
      this.stats.rotations++;
    } catch (err) {
      this.stats.lastError = errnoText(err);
    }
    try {
      this.fd = openFile(this.file);
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      // Never thrown at the service's owner: this writer's lines are dropped and counted from now.
      this.fd = -1;
      this.size = 0;
      this.stats.lastError = (err as Error).message;
    }
  }
}

function openFile(file: string): number {
  const fd = openSync(file, 'a', 0o600);
  // An older file may have been created with wider permissions.
  fchmodSync(fd, 0o600);
  return fd;
}

function renameQuiet(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
