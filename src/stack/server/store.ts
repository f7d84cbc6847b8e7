/**
 * The durable store: every change is one line appended to a write-ahead log (`wal.jsonl`), and the
 * whole state is periodically written as a snapshot (`snapshot.json`) after which the log starts
 * empty. At start the snapshot is loaded and the log replayed on top of it.
 *
 *   wal line     = <crc32 of the JSON, 8 hex digits> <JSON record>\n
 *   record       = { s: sequence number, t: type, ... }   (records with s <= snapshot.seq are skipped)
 *   snapshot     = written to snapshot.json.tmp, fsync, rename, fsync of the directory
 *
 * Durability: a change is acknowledged only after an fsync of the log that covers it (`commit`);
 * concurrent commits share one fsync (group commit). Output chunks of running executions are
 * written without waiting for an fsync: a `kill -9` of the server keeps them (they are in the
 * kernel), a power cut may lose the last ones; the `complete`/`fail` commit that follows makes
 * them durable with the final status.
 *
 * A crash can leave the last line half-written: it fails its checksum (or has no newline) and is
 * dropped at the next start. A bad line followed by good ones is not a torn write but a damaged
 * file, and the store refuses to open rather than silently losing acknowledged changes.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
  fsync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { acquireLock } from './lock.js';
import type { Agent, StoredExecution } from './model.js';

type ExecutionFields = Omit<StoredExecution, 'output'>;

/** One change, as a line of the log. */
type WalRecord =
  | { s: number; t: 'agent'; agent: Agent }
  | { s: number; t: 'agent-delete'; name: string }
  /** an execution's fields; `output` replaces the output when present, else it is kept */
  | { s: number; t: 'exec'; exec: ExecutionFields; output?: string }
  | { s: number; t: 'chunk'; id: string; text: string };

type WalChange = WalRecord extends infer R ? (R extends { s: number } ? Omit<R, 's'> : never) : never;

interface Snapshot {
  format: 1;
  seq: number;
  agents: Agent[];
  executions: StoredExecution[];
}

/** What opening the store found, for the server's log. */
export interface OpenReport {
  agents: number;
  executions: number;
  /** log records applied on top of the snapshot */
  replayed: number;
  /** bytes of a torn last record that were dropped */
  droppedBytes: number;
}

export class StoreCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreCorruptError';
  }
}

export interface StoreOptions {
  /** compact once the log grows past this many bytes */
  compactBytes?: number;
  /** called when the log cannot be written or synced: the process must stop, nothing is acknowledged */
  onFatal?: (err: Error) => void;
}

export const SNAPSHOT = 'snapshot.json';
export const WAL = 'wal.jsonl';
export const LOCK = 'server.lock';
const DEFAULT_COMPACT_BYTES = 8 * 1024 * 1024;

function encodeLine(record: WalRecord): string {
  const json = JSON.stringify(record);
  return `${(crc32(json) >>> 0).toString(16).padStart(8, '0')} ${json}\n`;
}

function decodeLine(line: string): WalRecord | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  const sum = Number.parseInt(line.slice(0, 8), 16);
  if (!Number.isFinite(sum) || sum !== crc32(json) >>> 0) return undefined;
  try {
    const rec = JSON.parse(json) as WalRecord;
    return typeof rec === 'object' && rec !== null && typeof rec.s === 'number' ? rec : undefined;
  } catch {
    return undefined;
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class Store {
  /** agents by name */
  readonly agents = new Map<string, Agent>();
  /** executions by id, in creation order */
  readonly executions = new Map<string, StoredExecution>();

  private seq = 0;
  private fd: number;
  private walBytes = 0;
  private closed = false;
  private syncing = false;
  private waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private compactQueued = false;
  private readonly releaseLock: () => void;
  private readonly compactBytes: number;
  private readonly onFatal: (err: Error) => void;

  private constructor(
    readonly dir: string,
    opts: StoreOptions,
    releaseLock: () => void,
  ) {
    this.compactBytes = opts.compactBytes ?? DEFAULT_COMPACT_BYTES;
    this.onFatal =
      opts.onFatal ??
      ((err) => {
        throw err;
      });
    this.releaseLock = releaseLock;
    this.fd = -1;
  }

  /** Open (or create) the store in `dir`: take the lock, load the snapshot, replay the log. */
  static open(dir: string, opts: StoreOptions = {}): { store: Store; report: OpenReport } {
    mkdirSync(dir, { recursive: true });
    const release = acquireLock(join(dir, LOCK));
    const store = new Store(dir, opts, release);
    try {
      const report = store.load();
      return { store, report };
    } catch (err) {
      release();
      throw err;
    }
  }

  get walFile(): string {
    return join(this.dir, WAL);
  }

  private load(): OpenReport {
    rmSync(join(this.dir, `${SNAPSHOT}.tmp`), { force: true });
    const snapFile = join(this.dir, SNAPSHOT);
    if (existsSync(snapFile)) {
      let snap: Snapshot;
      try {
        snap = JSON.parse(readFileSync(snapFile, 'utf8')) as Snapshot;
      } catch (err) {
        throw new StoreCorruptError(`${snapFile} is not valid JSON (${(err as Error).message}); restore it from a backup or move it away to start empty`);
      }
      if (snap.format !== 1 || !Array.isArray(snap.agents) || !Array.isArray(snap.executions)) {
        throw new StoreCorruptError(`${snapFile} is not a stigmer-server snapshot of format 1`);
      }
      this.seq = snap.seq;
      for (const a of snap.agents) this.agents.set(a.name, a);
      for (const e of snap.executions) this.executions.set(e.id, e);
    }

    const walFile = this.walFile;
    const buf = existsSync(walFile) ? readFileSync(walFile) : Buffer.alloc(0);
    let pos = 0;
    let lineNo = 0;
    let replayed = 0;
    let goodEnd = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      lineNo++;
      if (nl === -1) break; // no newline: the last write was cut short
      const rec = decodeLine(buf.toString('utf8', pos, nl));
      if (!rec) {
        const rest = buf.toString('utf8', nl + 1).split('\n');
        if (rest.some((l) => decodeLine(l) !== undefined)) {
          throw new StoreCorruptError(
            `${walFile}: line ${lineNo} is damaged but later lines are intact, so this is not a torn write; restore the file from a backup or move it away to start empty`,
          );
        }
        break;
      }
      if (rec.s > this.seq) {
        this.apply(rec);
        this.seq = rec.s;
        replayed++;
      }
      pos = nl + 1;
      goodEnd = pos;
    }
    const droppedBytes = buf.length - goodEnd;

    this.fd = openSync(walFile, 'a', 0o600);
    if (droppedBytes > 0) {
      ftruncateSync(this.fd, goodEnd);
      fsyncSync(this.fd);
    }
    this.walBytes = goodEnd;
    fsyncDir(this.dir);
    // Start from a fresh snapshot so the next start replays nothing.
    if (replayed > 0 || droppedBytes > 0) this.compact();
    return { agents: this.agents.size, executions: this.executions.size, replayed, droppedBytes };
  }

  private apply(rec: WalRecord): void {
    switch (rec.t) {
      case 'agent':
        this.agents.set(rec.agent.name, rec.agent);
        return;
      case 'agent-delete':
        this.agents.delete(rec.name);
        return;
      case 'exec': {
        const before = this.executions.get(rec.exec.id);
        this.executions.set(rec.exec.id, { ...rec.exec, output: rec.output ?? before?.output ?? '' });
        return;
      }
      case 'chunk': {
        const e = this.executions.get(rec.id);
        if (e) e.output += rec.text;
        return;
      }
      default: {
        const never: never = rec;
        throw new StoreCorruptError(`unknown log record ${JSON.stringify(never)}`);
      }
    }
  }

  /** Append a change to the log (not yet durable: call `commit`). */
  private append(change: WalChange): void {
    if (this.closed) throw new Error('Internal error: write to a closed store');
    const line = Buffer.from(encodeLine({ ...change, s: this.seq + 1 } as WalRecord));
    try {
      let off = 0;
      while (off < line.length) off += writeSync(this.fd, line, off, line.length - off);
    } catch (err) {
      this.onFatal(new Error(`cannot write to ${this.walFile}: ${(err as Error).message}`));
      throw err;
    }
    this.seq++;
    this.walBytes += line.length;
    if (this.walBytes >= this.compactBytes && !this.compactQueued) {
      this.compactQueued = true;
      setImmediate(() => {
        this.compactQueued = false;
        if (!this.closed) this.compact();
      });
    }
  }

  /** Resolves once everything appended so far is on disk. Concurrent callers share one fsync. */
  commit(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.startSync();
    });
  }

  private startSync(): void {
    if (this.syncing || this.waiting.length === 0) return;
    if (this.closed) {
      // close() synced everything.
      for (const w of this.waiting.splice(0)) w.resolve();
      return;
    }
    this.syncing = true;
    const batch = this.waiting.splice(0);
    fsync(this.fd, (err) => {
      this.syncing = false;
      if (err) {
        const e = new Error(`cannot sync ${this.walFile}: ${err.message}`);
        for (const w of batch) w.reject(e);
        this.onFatal(e);
        return;
      }
      for (const w of batch) w.resolve();
      this.startSync();
    });
  }

  putAgent(agent: Agent): Promise<void> {
    this.append({ t: 'agent', agent });
    this.agents.set(agent.name, agent);
    return this.commit();
  }

  deleteAgent(name: string): Promise<void> {
    this.append({ t: 'agent-delete', name });
    this.agents.delete(name);
    return this.commit();
  }

  /**
   * Record an execution's current fields (the object is kept as the stored one). The output is
   * written too when `withOutput` is set (creation, reset, final status); otherwise it is the sum
   * of the chunks already logged.
   */
  saveExecution(exec: StoredExecution, withOutput: boolean): Promise<void> {
    const { output, ...fields } = exec;
    this.append(withOutput ? { t: 'exec', exec: fields, output } : { t: 'exec', exec: fields });
    this.executions.set(exec.id, exec);
    return this.commit();
  }

  /** Append output to an execution; written at once, synced with the next commit. */
  appendOutput(exec: StoredExecution, text: string): void {
    this.append({ t: 'chunk', id: exec.id, text });
    exec.output += text;
  }

  /** Write the whole state as a snapshot and start the log empty. */
  compact(): void {
    const snap: Snapshot = { format: 1, seq: this.seq, agents: [...this.agents.values()], executions: [...this.executions.values()] };
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        const data = Buffer.from(JSON.stringify(snap));
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(this.dir, SNAPSHOT));
      fsyncDir(this.dir);
      // Records up to `seq` are in the snapshot; if the truncation is lost they are skipped on replay.
      ftruncateSync(this.fd, 0);
      fsyncSync(this.fd);
      this.walBytes = 0;
    } catch (err) {
      this.onFatal(new Error(`cannot write a snapshot in ${this.dir}: ${(err as Error).message}`));
      throw err;
    }
  }

  /** Flush: wait for a running fsync, write a snapshot, close the log, release the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.syncing) await new Promise((r) => setTimeout(r, 1));
    this.compact();
    this.closed = true;
    closeSync(this.fd);
    this.releaseLock();
    for (const w of this.waiting.splice(0)) w.resolve();
  }
}
