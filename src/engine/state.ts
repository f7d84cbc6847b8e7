/**
 * The state file: what stigmer started and how to undo it, per data dir. Written atomically
 * (temp file + rename) before the engine moves past a task that changed the world, so a later
 * `down` can undo what a killed run left behind. Secret values never reach it (masked).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { maskDeep } from '../util/mask.js';
import type { TaskRecord, UndoDescriptor } from '../model/kind.js';

export interface StateData {
  version: 1;
  /** the tasks file the state belongs to */
  file?: string;
  updatedAt?: string;
  seq: number;
  tasks: Record<string, TaskRecord>;
}

const empty = (): StateData => ({ version: 1, seq: 0, tasks: {} });

export class StateStore {
  data: StateData;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly path: string) {
    this.data = StateStore.read(path) ?? empty();
  }

  /** The state on disk, or undefined when there is none (a corrupt file reads as none). */
  static read(path: string): StateData | undefined {
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as StateData;
      if (parsed && parsed.version === 1 && parsed.tasks && typeof parsed.tasks === 'object') return parsed;
    } catch {
      // missing or unreadable: nothing recorded
    }
    return undefined;
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
    this.touch(true);
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

  save(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    this.data.updatedAt = new Date().toISOString();
    mkdirSync(dirname(this.path), { recursive: true });
    if (Object.keys(this.data.tasks).length === 0) {
      rmSync(this.path, { force: true });
      return;
    }
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(maskDeep(this.data), null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
