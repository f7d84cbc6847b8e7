/**
 * The state file: what stigmer started and how to undo it, per data dir. Written atomically
 * (temp file + rename) before the engine moves past a task that changed the world, so a later
 * `down` can undo what a killed run left behind. Secret values never reach it (masked).
 *
 * Reading it is state-file.ts (it is untrusted data). Writing never throws: a failed write (a
 * full or read-only disk) is kept in `writeError` and the state lives on in memory, so the
 * caller fails the task and undoes from memory. A reserve file beside it (RESERVE_BYTES) is given
 * up when the disk is full, so the write that records a spawn is the least likely to fail.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { maskDeep, secretsGeneration } from '../util/mask.js';
import { describeFsError } from '../util/fs-error.js';
import type { TaskRecord, UndoDescriptor } from '../model/kind.js';
import { loadState, type StateData, type StateLoad } from './state-file.js';

export type { StateData, StateLoad } from './state-file.js';

const empty = (): StateData => ({ version: 1, seq: 0, tasks: {} });
/**
 * Fault injection for tests: from the N-th write of this process on, every state write fails
 * with ENOSPC, as on a disk that just filled up (STIGMER_FAULT_STATE_WRITE=N).
 */
const FAULT_FROM = Number(process.env['STIGMER_FAULT_STATE_WRITE'] ?? 0);
let writes = 0;

/** Room kept for the state's own writes (a temp copy beside the old file, with room to spare). */
const RESERVE_BYTES = 16 * 1024;
/** From this many changed records among a write's chunk on, they are serialized in one call (see serializeBatch). */
const BATCH = 64;
/** Records per chunk: each chunk is serialized, then written, before the next. */
const CHUNK = 1024;

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let at = 0; at < buf.length; ) at += writeSync(fd, buf, at, buf.length - at);
}

export class StateStore {
  data: StateData;
  /** records the schema refused: never acted on, written back as they were (kept for inspection) */
  readonly invalid: Record<string, unknown>;
  /** one line per refused record: "state.json: tasks.a: undo[0]: missing pid" */
  readonly problems: string[];
  /** the latest failed write ("<path>: ENOSPC (no space left on device)"), cleared by a good one */
  writeError: { message: string; cause: unknown } | undefined;
  /** the first failed write of this process, kept after later writes succeed (for the final report) */
  firstWriteError: { message: string; cause: unknown } | undefined;
  private dirty = false;
  private frozen = false;
  private timer: NodeJS.Timeout | undefined;
  /**
   * Each record's JSON as last written. A run of N tasks writes the file about N times (every
   * spawn is recorded before the engine moves on), so serializing only the records that changed
   * keeps each write to copying strings. A cached piece is used only for the same record object
   * with the same undo list, masked under the same secrets. Its text is kept from the second
   * write that finds the record unchanged on: each record is serialized at most twice while it
   * does not change, and the one write at the end of a run keeps no second copy of the file.
   */
  private readonly pieces = new Map<string, { rec: unknown; undo: unknown; secrets: number; json?: string }>();

  /** `loaded`: what `loadState` read (a corrupt or unreadable file counts as empty: the caller dealt with it). */
  constructor(
    readonly path: string,
    loaded: StateLoad = loadState(path),
  ) {
    this.data = loaded.status === 'ok' ? loaded.data : empty();
    this.invalid = loaded.status === 'ok' ? loaded.invalid : {};
    this.problems = loaded.status === 'ok' ? loaded.problems : [];
  }

  /** The valid records on disk, or undefined when there is no readable state. */
  static read(path: string): StateData | undefined {
    const loaded = loadState(path);
    return loaded.status === 'ok' ? loaded.data : undefined;
  }

  /** Set aside room for the state's writes (best effort: a disk already full just has none). */
  reserve(): void {
    const file = `${this.path}.reserve`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(file, 'w', 0o600);
      try {
        writeSync(fd, Buffer.alloc(RESERVE_BYTES));
      } finally {
        closeSync(fd);
      }
    } catch {
      rmSync(file, { force: true });
    }
  }

  private releaseReserve(): boolean {
    try {
      rmSync(`${this.path}.reserve`);
      return true;
    } catch {
      return false;
    }
  }

  get tasks(): Record<string, TaskRecord> {
    return this.data.tasks;
  }

  record(task: string): TaskRecord | undefined {
    return this.data.tasks[task];
  }

  /** Replace or patch a task's record. `flush` writes the file before returning. */
  update(task: string, patch: Partial<TaskRecord> & { kind?: string }, flush = false): TaskRecord {
    const prev = this.data.tasks[task];
    const next: TaskRecord = { kind: 'unknown', status: 'pending', undo: [], ...prev, ...patch };
    this.data.tasks[task] = next;
    this.touch(flush);
    return next;
  }

  addUndo(task: string, undo: UndoDescriptor): void {
    const rec = this.data.tasks[task] ?? this.update(task, {});
    rec.undo = [...rec.undo, undo];
    this.touch(true);
  }

  /** Drop one recorded step (compared as data); nothing happens when the record is gone meanwhile. */
  forgetUndo(task: string, undo: UndoDescriptor): void {
    const rec = this.data.tasks[task];
    if (!rec) return;
    const key = JSON.stringify(undo);
    const kept = rec.undo.filter((u) => JSON.stringify(u) !== key);
    if (kept.length === rec.undo.length) return;
    rec.undo = kept;
    // Not flushed: a step left on disk for a process that is gone is refused by its identity
    // (pid + start time) when `down` reads it, and the next write drops it.
    this.touch(false);
  }

  remove(task: string, flush = true): void {
    delete this.data.tasks[task];
    this.touch(flush);
  }

  nextSeq(): number {
    this.data.seq += 1;
    return this.data.seq;
  }

  /** Mark changed; write now when `flush`, else within 100 ms (cheap bookkeeping coalesces). */
  touch(flush: boolean): void {
    this.dirty = true;
    if (flush) this.save();
    else this.timer ??= setTimeout(() => this.save(), 100);
  }

  /**
   * Write nothing more: another store took the file over (a `down` in the supervisor undoing a
   * run still in progress, from what the file records). This one lives on in memory only.
   */
  freeze(): void {
    this.frozen = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Write the state now if it changed. False when the write failed (see `writeError`). */
  save(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.frozen) return !this.writeError;
    if (!this.dirty) return !this.writeError;
    this.data.updatedAt = new Date().toISOString();
    try {
      this.write();
    } catch (err) {
      // A full disk: give up the reserve and try once more.
      let failure = err;
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC' && this.releaseReserve()) {
        try {
          this.write();
          failure = undefined;
        } catch (again) {
          failure = again;
        }
      }
      if (failure !== undefined) {
        this.writeError = { message: describeFsError(failure, this.path), cause: failure };
        this.firstWriteError ??= this.writeError;
        return false;
      }
    }
    this.dirty = false;
    this.writeError = undefined;
    return true;
  }

  /**
   * The file's text, written through `out` a chunk of records at a time: what
   * `JSON.stringify(maskDeep(state), null, 2)` gives with `tasks` last, each record's part taken
   * from `pieces` when it has not changed.
   */
  private serializeTo(tasks: Record<string, unknown>, out: (text: string) => void): void {
    const { tasks: _, ...rest } = this.data;
    const head = JSON.stringify(maskDeep(rest), null, 2);
    const generation = secretsGeneration();
    const same = (piece: { rec: unknown; undo: unknown; secrets: number } | undefined, rec: unknown): boolean =>
      !!piece && piece.rec === rec && piece.undo === (rec as { undo?: unknown } | null)?.undo && piece.secrets === generation;
    const names = Object.keys(tasks);
    out(`${head.slice(0, -2)},\n  "tasks": {\n`);
    for (let at = 0; at < names.length; at += CHUNK) {
      const chunk = names.slice(at, at + CHUNK);
      const stale = chunk.filter((name) => {
        const piece = this.pieces.get(name);
        return piece?.json === undefined || !same(piece, tasks[name]);
      });
      const batch = stale.length >= BATCH ? this.serializeBatch(stale, tasks) : undefined;
      const parts: string[] = [];
      let k = 0;
      for (const name of chunk) {
        const rec = tasks[name];
        const piece = this.pieces.get(name);
        if (piece?.json !== undefined && same(piece, rec)) {
          parts.push(piece.json);
          continue;
        }
        const json = (stale[k] === name ? batch?.[k] : undefined) ?? `    ${JSON.stringify(name)}: ${JSON.stringify(maskDeep(rec), null, 2).replaceAll('\n', '\n    ')}`;
        k++;
        const undo = (rec as { undo?: unknown } | null)?.undo;
        this.pieces.set(name, same(piece, rec) ? { rec, undo, secrets: generation, json } : { rec, undo, secrets: generation });
        parts.push(json);
      }
      out((at ? ',\n' : '') + parts.join(',\n'));
    }
    if (this.pieces.size > names.length) for (const name of this.pieces.keys()) if (!Object.hasOwn(tasks, name)) this.pieces.delete(name);
    out('\n  }\n}\n');
  }

  /**
   * Many changed records (the first write of a large state, the end of a big run): one
   * `JSON.stringify` of them all, nested as in the file, cut into the records' parts. A
   * record's first line is the only one at four spaces that starts with a quote (a string
   * cannot hold a raw newline); a cut that does not give one part per record, each naming
   * its record, gives nothing (the one-record path serializes them).
   */
  private serializeBatch(stale: string[], tasks: Record<string, unknown>): string[] | undefined {
    const text = JSON.stringify({ t: Object.fromEntries(stale.map((name) => [name, maskDeep(tasks[name])])) }, null, 2);
    const open = '{\n  "t": {\n';
    const close = '\n  }\n}';
    if (!text.startsWith(open) || !text.endsWith(close)) return undefined;
    const parts = text.slice(open.length, -close.length).split(/,\n(?= {4}")/);
    if (parts.length !== stale.length) return undefined;
    for (let i = 0; i < parts.length; i++) if (!parts[i]!.startsWith(`    ${JSON.stringify(stale[i])}: `)) return undefined;
    return parts;
  }

  private write(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    // the refused records first, as read; no copy of a big state when there are none
    const tasks = Object.keys(this.invalid).length ? { ...this.invalid, ...this.data.tasks } : this.data.tasks;
    if (Object.keys(tasks).length === 0) {
      rmSync(this.path, { force: true });
      rmSync(`${this.path}.reserve`, { force: true });
      return;
    }
    const tmp = `${this.path}.tmp-${process.pid}`;
    if (FAULT_FROM > 0 && ++writes >= FAULT_FROM) throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC', path: tmp });
    try {
      // Written a chunk of records at a time: a big state is never one string (nor one buffer).
      const fd = openSync(tmp, 'w', 0o600);
      try {
        this.serializeTo(tasks, (text) => writeAll(fd, text));
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
