/**
 * Reading and following a line file that a writer appends to and rotates (`<file>` renamed to
 * `<file>.1`, older ones shifted to `.2` ...), or removes and recreates: the task logs
 * (engine/log-read.ts) and the supervisor's events (supervisor/events.ts).
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';

const unCr = (l: string): string => (l.endsWith('\r') ? l.slice(0, -1) : l);

/** The first `size` bytes of an open file (fewer when it is shorter), read to the end. */
function readPrefix(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let n = 0;
  while (n < size) {
    const r = readSync(fd, buf, n, size - n, n);
    if (r === 0) break;
    n += r;
  }
  return buf.subarray(0, n);
}

/** `read` on the file opened for reading, closed after; `absent` when it cannot be opened. */
export function withFile<T>(file: string, absent: T, read: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return absent;
  }
  try {
    return read(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The lines of a whole file ([] when it does not exist). A last line without its newline is kept,
 * or with `complete` left out (a live writer is still writing it).
 */
export function readLines(file: string, opts: { complete?: boolean } = {}): string[] {
  return withFile(file, [], (fd) => {
    const lines = readPrefix(fd, fstatSync(fd).size).toString('utf8').split('\n');
    const last = lines.pop()!;
    if (last !== '' && !opts.complete) lines.push(last);
    return lines.map(unCr);
  });
}

/**
 * Follows one file by inode from where it is now (or its start): the complete lines appended,
 * then, when `<file>` is replaced (rotated, or removed and recreated), the rest of the old one,
 * the rotated files written in between (`<file>.1` up to `.maxRotated`), and the new one from its
 * start. A file truncated in place is read again from its start.
 */
export class LineFollower {
  private fd: number | undefined;
  private ino = 0;
  private offset = 0;
  private partial = '';
  /** the size of `file` when following began (undefined: it did not exist yet) */
  readonly startOffset: number | undefined;

  constructor(
    readonly file: string,
    private readonly opts: { fromStart?: boolean; maxRotated?: number } = {},
  ) {
    this.open(opts.fromStart ?? false);
    this.startOffset = this.fd === undefined ? undefined : this.offset;
  }

  private open(fromStart: boolean): void {
    try {
      this.fd = openSync(this.file, 'r');
    } catch {
      this.fd = undefined;
      return;
    }
    const st = fstatSync(this.fd);
    this.ino = st.ino;
    this.offset = fromStart ? 0 : st.size;
    this.partial = '';
  }

  /** Whether `file` is the file being followed (same inode). */
  isFile(file: string): boolean {
    if (this.fd === undefined) return false;
    try {
      return statSync(file).ino === this.ino;
    } catch {
      return false;
    }
  }

  /** The complete lines before where following began. */
  head(): string[] {
    if (this.fd === undefined || !this.startOffset) return [];
    const lines = readPrefix(this.fd, this.startOffset).toString('utf8').split('\n');
    lines.pop(); // after the last newline: empty, or a line still being written
    return lines.map(unCr);
  }

  /** New complete lines since the last call. */
  poll(): string[] {
    if (this.fd === undefined) {
      this.open(true);
      if (this.fd === undefined) return [];
    }
    let current: number | undefined;
    try {
      current = statSync(this.file).ino;
    } catch {
      current = undefined; // removed: read what the old one still has
    }
    const out = this.drain();
    if (current !== this.ino) {
      // The writer moved on to a new file: the old one gets no more lines.
      if (this.partial) out.push(unCr(this.partial));
      closeSync(this.fd);
      this.fd = undefined;
      // Rotated more than once since the last look: the files in between, oldest first.
      for (const f of this.between()) out.push(...readLines(f));
      if (current !== undefined) {
        this.open(true);
        out.push(...this.drain());
      }
    }
    return out;
  }

  /**
   * Rotated files newer than the one followed: it is `<file>.k` now, so `.k-1` .. `.1`; when it
   * is gone (rotated past the last kept), every rotated file is newer than it.
   */
  private between(): string[] {
    const found: string[] = [];
    for (let i = 1; i <= (this.opts.maxRotated ?? 1); i++) {
      const f = `${this.file}.${i}`;
      let ino: number;
      try {
        ino = statSync(f).ino;
      } catch {
        break;
      }
      if (ino === this.ino) break;
      found.push(f);
    }
    return found.reverse();
  }

  private drain(): string[] {
    if (this.fd === undefined) return [];
    const size = fstatSync(this.fd).size;
    if (size < this.offset) {
      this.offset = 0; // truncated in place
      this.partial = '';
    }
    if (size === this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    const n = readSync(this.fd, buf, 0, buf.length, this.offset);
    this.offset += n;
    const lines = (this.partial + buf.subarray(0, n).toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    return lines.map(unCr);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
