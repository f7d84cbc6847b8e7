/**
 * What `status`, `local status` and `ls` say about a stack, from its state file alone: each
 * task's state as it is now (the record, checked against the process it names and against what
 * the supervisor recorded), and the supervisor itself.
 *
 * A service's state, in order of precedence:
 *   crash-loop / stopped      the supervisor gave up on it / stopped it on purpose
 *   restarting                a restart is scheduled and the supervisor (or the run holding the
 *                             lock) is alive to do it
 *   dead                      its process is gone (and nobody will bring it back)
 *   starting / unhealthy      as the supervisor recorded it, while the process lives
 *   ready, running, ...       the record's status
 *
 * The stack's exit code (status, local status), LSB style:
 *   0  every service is up (ready; a stack without services: every task done)
 *   1  degraded: something is restarting, unhealthy, crash-looping, dead or failed
 *   3  stopped: nothing is recorded, or every service was stopped
 */
import { readFileSync } from 'node:fs';
import { dataPaths } from '../util/paths.js';
import { isAlive } from '../process/identity.js';
import { StateStore } from './state.js';
import type { ExitRecord, HealthRecord, RecordedState, ServiceState, TaskRecord } from '../model/kind.js';
import type { StateData } from './state-file.js';

/** A task's state as status shows it. */
export type ViewState = RecordedState | ServiceState;

export interface TaskStatusView {
  task: string;
  kind: string;
  state: ViewState;
  pid?: number;
  /** how long the running instance has been up */
  uptime_ms?: number;
  address?: string;
  /** the latest readiness probe (only while the process lives: a dead one's is stale) */
  last_probe?: string;
  error?: string;
  started_at?: string;
  /** restarts since it was first ready (supervised services) */
  restarts?: number;
  last_exit?: { code: number | null; signal: string | null; at: string };
  health?: { ok: boolean; at: string; detail?: string; failures: number };
  /** when a scheduled restart is due, and in how long */
  next_restart_at?: string;
  next_restart_in_ms?: number;
}

export interface SupervisorView {
  pid: number;
  alive: boolean;
  /** while alive */
  uptime_ms: number | null;
  started_at: string | null;
  /** when it last refreshed the state (after it died: when it was last seen) */
  last_seen: string | null;
}

export interface StatusView {
  file?: string;
  tasks: TaskStatusView[];
  supervisor: SupervisorView | null;
}

export type StackHealth = 'running' | 'degraded' | 'stopped';

/** Exit codes of `status` / `local status` by the stack's health (see the header). */
export const STATUS_EXIT: Record<StackHealth, number> = { running: 0, degraded: 1, stopped: 3 };

const UP: ReadonlySet<ViewState> = new Set(['ready', 'running']);
const DEGRADED: ReadonlySet<ViewState> = new Set(['restarting', 'unhealthy', 'crash-loop', 'dead', 'failed', 'starting']);

const iso = (v: unknown): string | undefined => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : undefined);
const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);

function exitOf(v: ExitRecord | undefined): TaskStatusView['last_exit'] {
  if (!v || typeof v !== 'object') return undefined;
  const at = iso(v.at);
  if (!at) return undefined;
  return { code: typeof v.code === 'number' ? v.code : null, signal: typeof v.signal === 'string' ? v.signal : null, at };
}

function healthOf(v: HealthRecord | undefined): TaskStatusView['health'] {
  if (!v || typeof v !== 'object' || typeof v.ok !== 'boolean') return undefined;
  const at = iso(v.at);
  if (!at) return undefined;
  return { ok: v.ok, at, ...(typeof v.detail === 'string' ? { detail: v.detail } : {}), failures: count(v.failures) ?? 0 };
}

export function supervisorView(data: StateData | undefined, now = Date.now()): SupervisorView | null {
  const s = data?.supervisor;
  if (!s || typeof s !== 'object' || typeof s.pid !== 'number') return null;
  const alive = isAlive({ pid: s.pid, startTime: typeof s.startTime === 'number' ? s.startTime : -1 });
  const startedAt = iso(s.startedAt) ?? null;
  return {
    pid: s.pid,
    alive,
    uptime_ms: alive && startedAt ? Math.max(0, now - Date.parse(startedAt)) : null,
    started_at: startedAt,
    last_seen: iso(s.lastSeen) ?? null,
  };
}

/** One task's view; `supervised`: a live supervisor is looking after the stack. */
export function taskView(task: string, rec: TaskRecord, supervised: boolean, now = Date.now()): TaskStatusView {
  const proc = rec.undo.find((u) => u.type === 'stop-process');
  const out = (rec.outputs ?? {}) as Record<string, unknown>;
  const v: TaskStatusView = { task, kind: rec.kind, state: rec.status };
  const service = rec.service;
  let alive = false;
  if (proc && proc.type === 'stop-process') {
    v.pid = proc.pid;
    alive = isAlive(proc);
    if (alive) v.uptime_ms = Math.max(0, now - Date.parse(proc.startedAt));
  }
  if (service === 'crash-loop' || service === 'stopped') v.state = service;
  else if (service === 'restarting' && supervised) v.state = 'restarting';
  else if (proc && !alive) v.state = rec.status === 'ready' || rec.status === 'running' || service !== undefined ? 'dead' : rec.status;
  // Supervised, and its instance gone and forgotten (it exited and its policy left it down).
  else if (!proc && service !== undefined) v.state = 'dead';
  else if (alive && (service === 'starting' || service === 'unhealthy')) v.state = service;
  // A dead service keeps its last pid for the record; one waiting for its restart has none.
  if (!alive && v.state !== 'dead') delete v.pid;

  if (typeof out['address'] === 'string') v.address = out['address'];
  // A probe result describes a live process; a dead one's would read as if it still answered.
  if (rec.lastProbe && (alive || !proc)) v.last_probe = rec.lastProbe;
  if (rec.error) v.error = rec.error;
  if (rec.startedAt) v.started_at = rec.startedAt;
  const restarts = count(rec.restarts);
  if (restarts !== undefined) v.restarts = restarts;
  const lastExit = exitOf(rec.lastExit);
  if (lastExit) v.last_exit = lastExit;
  const health = healthOf(rec.health);
  if (health) v.health = health;
  const next = iso(rec.nextRestartAt);
  if (next && v.state === 'restarting') {
    v.next_restart_at = next;
    v.next_restart_in_ms = Math.max(0, Date.parse(next) - now);
  }
  return v;
}

/** Whether the run holding the data dir's lock is alive (the supervisor holds it while it runs the stack). */
function lockHolderAlive(dataDir: string): boolean {
  try {
    const h = JSON.parse(readFileSync(dataPaths(dataDir).lock, 'utf8')) as { pid?: unknown; startTime?: unknown };
    return typeof h.pid === 'number' && typeof h.startTime === 'number' && isAlive({ pid: h.pid, startTime: h.startTime });
  } catch {
    return false;
  }
}

/** The status of a data dir's tasks and supervisor; `data`: its state, when the caller read it already (one read, one validation). */
export function readStatus(dataDir: string, now = Date.now(), data = StateStore.read(dataPaths(dataDir).state)): StatusView {
  if (!data) return { tasks: [], supervisor: null };
  const supervisor = supervisorView(data, now);
  const watched = supervisor ? supervisor.alive : lockHolderAlive(dataDir);
  const tasks = Object.entries(data.tasks)
    .sort((a, b) => (a[1].seq ?? Infinity) - (b[1].seq ?? Infinity))
    .map(([n, r]) => taskView(n, r, watched, now));
  return { ...(data.file ? { file: data.file } : {}), tasks, supervisor };
}

/** Whether a task is a service (it has, or had, a process of its own). */
export function isService(t: TaskStatusView): boolean {
  return t.pid !== undefined || t.kind === 'process' || t.restarts !== undefined || ['restarting', 'crash-loop', 'unhealthy', 'starting', 'dead'].includes(t.state);
}

/** The stack's health by the rule of the header. */
export function stackHealth(tasks: readonly TaskStatusView[]): StackHealth {
  if (tasks.length === 0) return 'stopped';
  if (tasks.some((t) => DEGRADED.has(t.state))) return 'degraded';
  const services = tasks.filter(isService);
  if (services.length && services.every((t) => t.state === 'stopped' || t.state === 'undone')) return 'stopped';
  if (services.some((t) => !UP.has(t.state))) return 'degraded';
  return 'running';
}
