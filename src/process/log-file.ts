import { withFile } from './follow.js';
import { openSync, readSync, fstatSync, fchmodSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { displayText, parseLogLine } from './log-line.js';
import { makePrivateDir } from '../util/private-dir.js';

/**
 * Open a task's log for appending: private to the user (0600, also a log an older version left
 * 0644), in a private directory. A service may write a key or a token to its log.
 */
export function openLog(file: string): number {
  makePrivateDir(dirname(file), 'log dir');
  const fd = openSync(file, 'a', 0o600);
  try {
    fchmodSync(fd, 0o600);
  } catch {
    // not ours to change (another user's file): it stays as it is
  }
  return fd;
}

const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*(\u0007|\u001b\\)/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export interface TailOptions {
  /** only what was written after this byte offset (a service's log of this run) */
  since?: number;
  /** read at most this many bytes from the end (default 64 KiB) */
  maxBytes?: number;
}

/**
 * The last `n` lines of a file (reads only its end), ANSI stripped and without the timestamp of a
 * captured line (log-line.ts); [] when it does not exist. With `since`, a line cut by `maxBytes`
 * is left out; without it, it is kept as cut.
 */
export function tailLines(file: string, n = 20, opts: TailOptions = {}): string[] {
  const { since, maxBytes = 64 * 1024 } = opts;
  return withFile(file, [], (fd) => {
    const size = fstatSync(fd).size;
    const start = Math.max(since ?? 0, size - maxBytes);
    if (size <= start) return [];
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const lines = stripAnsi(buf.toString('utf8')).split(/\r?\n/);
    if (since !== undefined && start > since) lines.shift(); // a partial first line
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-n).map((l) => displayText(parseLogLine(l)));
  });
}
