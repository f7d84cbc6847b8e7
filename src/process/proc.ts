/**
 * Process control through Linux's /proc (identity and the signal gate: identity.ts).
 *
 * Services start detached in
 * their own session and process group, writing straight to a log file descriptor (no pipe: they
 * must outlive the CLI and keep logging). Stopping a service signals its whole group: the signal,
 * a grace period, then SIGKILL. Foreground commands are in `command.ts`.
 *
 * Darwin has no /proc: identity degrades to the pid alone (start time 0) and port holders are not
 * found. Linux is what is tested.
 */
import { withParentDeath } from './parent-death.js';
import { closeSync, fstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeSync } from 'node:fs';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskError, type UndoDescriptor } from '../model/kind.js';
import { fail } from '../model/failure.js';
import { markEnv, newInstance } from './sweep.js';
import { createCgroup, inCgroup, parkedInCgroup, placeInCgroup, releaseCgroup, removeCgroup } from './cgroup.js';
import { errnoText } from '../util/fs-error.js';
import { groupMembers, HAS_PROC, hasExited, listPids, pidExists, readCmdline, readProcStat, signalRefusal, SignalRefused, type ProcessIdentity } from './identity.js';

export {
  groupMembers,
  HAS_PROC,
  hasExited,
  isAlive,
  listPids,
  parseProcStat,
  processIdentity,
  readCmdline,
  readProcStat,
  signalRefusal,
  SignalRefused,
  type ProcessIdentity,
  type ProcStat,
} from './identity.js';
import { isSecretVariable } from '../util/mask.js';
import { openLog } from './log-file.js';
import { openLogWriter, type LogWriter } from './log-writer.js';

/** How often a stopped group is checked for being gone (cheap while its leader lives: one stat read). */
const POLL_MS = 5;
/** How long to wait for a group to vanish after SIGKILL before calling it a failure. */
const KILL_WAIT_MS = 5000;

export type StopProcess = Extract<UndoDescriptor, { type: 'stop-process' }>;

/** No live process left in group `pgid`. */
export function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  if (!HAS_PROC) return false;
  // A living leader is a member: no need to read every process's stat (the common case while waiting).
  const leader = readProcStat(pgid);
  if (leader && leader.pgid === pgid && !hasExited(leader)) return false;
  // kill(2) also counts zombies that nobody reaped yet: look closer.
  return groupMembers(pgid).length === 0;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  // Last line of defence: never kill(0) / kill(-1), whatever a caller computed.
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new SignalRefused(`pgid ${pgid} is not a process group stigmer started`);
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return;
    if (code === 'EPERM') throw new Error(`not permitted to signal process group ${pgid} (it belongs to another user)`);
    throw err;
  }
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (groupGone(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await pollOrChildExit(POLL_MS);
  }
}

/** The waits of pollOrChildExit under way; one SIGCHLD listener wakes them all. */
const childExitWaits = new Set<() => void>();
const wakeChildExitWaits = (): void => {
  for (const wake of [...childExitWaits]) wake();
};

/**
 * Sleep `ms`, or less: until a child of this process exits (SIGCHLD). A stopped group's leader is
 * most often this process's own child (the supervisor's services), and its exit is then looked at
 * at once, not at the next poll (~2.5 ms later on average, per stopped level of the stack). The
 * poll stays, for the members that are not our children.
 */
function pollOrChildExit(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const wake = (): void => {
      clearTimeout(timer);
      childExitWaits.delete(wake);
      if (childExitWaits.size === 0) process.off('SIGCHLD', wakeChildExitWaits);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    if (childExitWaits.size === 0) process.on('SIGCHLD', wakeChildExitWaits);
    childExitWaits.add(wake);
  });
}

/** The command line as one string, arguments with spaces or quotes quoted. */
export function formatCommandLine(command: string, args: readonly string[] = []): string {
  const quote = (a: string): string => (a === '' || /[\s'"\\$`]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a);
  return [command, ...args].map(quote).join(' ');
}

/** A command line cut to a length that fits in one message line. */
export function shortCommand(line: string, max = 160): string {
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/**
 * process.env with each layer on top (later wins); values become strings. Secret variables (the
 * API keys, src/util/mask.ts) are not inherited: a layer must name one for the child to get it.
 */
export function childEnv(...layers: Array<Record<string, unknown> | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!isSecretVariable(k)) env[k] = v;
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) if (v !== undefined && v !== null) env[k] = String(v);
  }
  return env;
}

/** "not found (ENOENT)", "permission denied (EACCES)", or the error's message. */
export function describeSpawnError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'not found (ENOENT)';
  if (e.code === 'EACCES') return 'permission denied (EACCES)';
  return e.message ?? String(err);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Services

export interface ServiceSpec {
  command: string;
  args: readonly string[];
  cwd: string;
  /** the complete environment of the service */
  env: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here */
  logFile: string;
  /** the data dir of the stack it belongs to: the process and its descendants carry its marker (sweep.ts) */
  stack?: string;
  /** the file-creation mask the service starts with (default: stigmer's own) */
  umask?: number;
  /**
   * Capture stdout and stderr through pipes into `logFile` (log-writer.ts: stamped lines,
   * rotation). Only for a process that stays to read them (a supervisor): without it the
   * service writes straight to the file and may outlive the CLI.
   */
  capture?: { maxSize: number; keep: number };
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartedService extends ProcessIdentity {
  child: ChildProcess;
  /** the command line, for messages and the undo descriptor */
  commandLine: string;
  /** byte offset in the log where this process's own output begins (after stigmer's header) */
  logOffset: number;
  /**
   * Settles when the process exits. Only observable while this process lives, and it does not
   * keep the event loop alive by itself (the service must not hold the CLI open): race it with a
   * timer, or use `waitExit`.
   */
  exited: Promise<ExitInfo>;
  /** Wait for the exit, keeping this process alive meanwhile. */
  waitExit(): Promise<ExitInfo>;
  /** its STIGMER_INSTANCE, when it was started for a stack */
  instance?: string;
  /** with `capture`: its log writer (closed once both pipes ended) */
  log?: LogWriter;
  /** with `capture`: settles when both pipes ended and the log is closed */
  logClosed?: Promise<void>;
}

/** What to exec: the service itself, or, with a cgroup, a shell that moves into it first (cgroup.ts). */
function launch(spec: ServiceSpec, env: NodeJS.ProcessEnv, cgroup: string | undefined): { command: string; args: string[] } {
  return (cgroup && inCgroup(cgroup, spec.command, spec.args, env, spec.cwd)) || { command: spec.command, args: [...spec.args] };
}

/** Make sure a just-spawned service is in its cgroup (the shell moved it already), or drop the cgroup when it did not start. */
function cgroupOf(child: ChildProcess, cgroup: string | undefined): void {
  if (!cgroup) return;
  if (child.pid === undefined) removeCgroup(cgroup);
  else void placeInCgroup(cgroup, child.pid);
}

/**
 * Start a service detached (own session and process group), its stdout and stderr appended to
 * `logFile` through a file descriptor, so it outlives the CLI and keeps logging. Throws
 * `TaskError(spawn-failed)` when the command cannot be started.
 */
export async function spawnService(spec: ServiceSpec): Promise<StartedService> {
  if (spec.capture) return spawnCaptured(spec, spec.capture);
  const commandLine = formatCommandLine(spec.command, spec.args);
  if (!isDirectory(spec.cwd)) throw new TaskError(fail.spawnFailed(commandLine, `working directory ${spec.cwd} does not exist`));
  const instance = spec.stack === undefined ? undefined : newInstance();
  const env = spec.stack === undefined || instance === undefined ? spec.env : markEnv(spec.env, spec.stack, instance);
  const cgroup = spec.stack === undefined || instance === undefined ? undefined : createCgroup(spec.stack, instance);
  let fd: number;
  let logOffset: number;
  try {
    fd = openLog(spec.logFile);
  } catch (err) {
    throw new TaskError(fail.writeFailed('open its log', spec.logFile, errnoText(err)));
  }
  let child: ChildProcess;
  try {
    try {
      writeSync(fd, `--- ${new Date().toISOString()} starting ${commandLine}\n`);
      logOffset = fstatSync(fd).size;
    } catch (err) {
      throw new TaskError(fail.writeFailed('write its log', spec.logFile, errnoText(err)));
    }
    child = startDetached(spec, env, cgroup, ['ignore', fd, fd]);
  } catch (err) {
    if (cgroup) removeCgroup(cgroup);
    if (err instanceof TaskError) throw err;
    throw new TaskError(fail.spawnFailed(commandLine, describeSpawnError(err)));
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  if (child.pid === undefined) {
    const [err] = await once(child, 'error');
    throw new TaskError(fail.spawnFailed(commandLine, describeSpawnError(err)));
  }
  return started(child, child.pid, commandLine, logOffset, instance);
}

/** `spawnService` with stdout and stderr piped into a log writer (see ServiceSpec.capture). */
async function spawnCaptured(spec: ServiceSpec, capture: { maxSize: number; keep: number }): Promise<StartedService> {
  const commandLine = formatCommandLine(spec.command, spec.args);
  if (!isDirectory(spec.cwd)) throw new TaskError(fail.spawnFailed(commandLine, `working directory ${spec.cwd} does not exist`));
  let log: LogWriter;
  try {
    log = openLogWriter({ file: spec.logFile, maxSize: capture.maxSize, keep: capture.keep });
  } catch (err) {
    throw new TaskError(fail.writeFailed('open its log', spec.logFile, errnoText(err)));
  }
  log.writeEvent(`starting ${commandLine}`);
  await log.flush();
  if (log.stats.lastError) {
    await log.close();
    throw new TaskError(fail.writeFailed('write its log', spec.logFile, log.stats.lastError));
  }
  let logOffset = 0;
  try {
    logOffset = statSync(spec.logFile).size;
  } catch {
    // rotated away meanwhile: its output starts the new file
  }
  if (spec.stack !== undefined) lastSpecs.set(spec.logFile, spec);
  const spare = await takeSpare(spec);
  let child: ChildProcess;
  let instance: string | undefined;
  if (spare) {
    // Parked in its cgroup already: `go`, and it execs the service (same pid, start time, group).
    ({ child, instance } = spare);
    for (const h of [child.stdout, child.stderr] as Array<{ ref?(): void } | null>) h?.ref?.();
    child.stdin!.end('go\n');
  } else {
    instance = spec.stack === undefined ? undefined : newInstance();
    const env = spec.stack === undefined || instance === undefined ? spec.env : markEnv(spec.env, spec.stack, instance);
    const cgroup = spec.stack === undefined || instance === undefined ? undefined : createCgroup(spec.stack, instance);
    try {
      child = startDetached(spec, env, cgroup, ['ignore', 'pipe', 'pipe']);
    } catch (err) {
      if (cgroup) removeCgroup(cgroup);
      await log.close();
      throw new TaskError(fail.spawnFailed(commandLine, describeSpawnError(err)));
    }
    if (child.pid === undefined) {
      const [err] = await once(child, 'error');
      await log.close();
      throw new TaskError(fail.spawnFailed(commandLine, describeSpawnError(err)));
    }
  }
  const service = started(child, child.pid!, commandLine, logOffset, instance);
  // Read continuously; the writer never pauses a pipe (a service must never block on its output).
  const logClosed = Promise.all([log.attach(child.stdout!, 'out'), log.attach(child.stderr!, 'err')]).then(() => log.close());
  return { ...service, log, logClosed };
}

/**
 * Spawn a service in its own session: the umask of the spec for the moment of the fork (a child
 * inherits it, and spawn forks synchronously), the cgroup launcher and the parent-death wrapper.
 */
function startDetached(spec: ServiceSpec, env: NodeJS.ProcessEnv, cgroup: string | undefined, stdio: StdioOptions, launched = launch(spec, env, cgroup)): ChildProcess {
  const umask = spec.umask === undefined ? undefined : process.umask(spec.umask);
  try {
    const run = withParentDeath(launched.command, launched.args, spec.cwd, env ?? process.env);
    const child = spawn(run.command, run.args, { cwd: spec.cwd, env, detached: true, stdio });
    cgroupOf(child, cgroup);
    return child;
  } finally {
    if (umask !== undefined) process.umask(umask);
  }
}

// ---------------------------------------------------------------------------------------------
// Respawns prepared ahead of time

/**
 * A launcher started ahead of a captured service's restart, parked in the cgroup of its instance
 * (cgroup.ts `parkedInCgroup`): the move into a cgroup costs an RCU grace period (10-15 ms), which
 * this takes off the restart's path (it overlaps the backoff and the stop of what the old instance
 * left). Nothing of the service runs before `go`; the undo record is written after it, as for any
 * spawn. Until then it is the stack's (its marker, its cgroup), and it ends by itself when the
 * supervisor does (parent-death signal, else the end of its stdin pipe).
 */
interface Spare {
  key: string;
  instance: string;
  cgroup: string;
  child: ChildProcess;
  gone: Promise<void>;
}

/** The last spec a captured service of the stack was spawned with, by log file (one per task). */
const lastSpecs = new Map<string, ServiceSpec>();
const spares = new Map<string, Spare>();

/** What a spare must match to stand in for a spawn of `spec` (its instance and cgroup are its own). */
function spareKey(spec: ServiceSpec): string {
  const env = Object.entries(spec.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([spec.command, spec.args, spec.cwd, spec.umask ?? null, spec.stack ?? null, spec.capture ?? null, env]);
}

const spareAlive = (s: Spare): boolean => s.child.exitCode === null && s.child.signalCode === null;

/**
 * Start a parked launcher for the next spawn of the captured service logging to `logFile`, with
 * the spec it was last spawned with. Nothing happens where there is no cgroup (no move to take
 * off the path), no earlier spawn, or a live spare already.
 */
export function prepareRespawn(logFile: string): void {
  const spec = lastSpecs.get(logFile);
  const have = spares.get(logFile);
  if (!spec || spec.stack === undefined || (have && spareAlive(have))) return;
  if (have) void discardRespawn(logFile);
  const instance = newInstance();
  const cgroup = createCgroup(spec.stack, instance);
  if (!cgroup) return;
  const env = markEnv(spec.env, spec.stack, instance);
  const parked = parkedInCgroup(cgroup, spec.command, spec.args, env, spec.cwd);
  let child: ChildProcess | undefined;
  try {
    if (parked) child = startDetached(spec, env, cgroup, ['pipe', 'pipe', 'pipe'], parked);
  } catch {
    child = undefined;
  }
  if (!child || child.pid === undefined) {
    child?.on('error', () => {});
    removeCgroup(cgroup);
    return;
  }
  child.on('error', () => {});
  child.stdin!.on('error', () => {});
  const gone = new Promise<void>((res) => child.once('exit', () => res()));
  // It must not hold the host open while it waits.
  child.unref();
  for (const h of [child.stdin, child.stdout, child.stderr] as Array<{ unref?(): void } | null>) h?.unref?.();
  spares.set(logFile, { key: spareKey(spec), instance, cgroup, child, gone });
}

/** The spare for `spec`, taken; one that does not match (or died) is stopped. */
async function takeSpare(spec: ServiceSpec): Promise<Spare | undefined> {
  const s = spares.get(spec.logFile);
  if (!s) return undefined;
  spares.delete(spec.logFile);
  if (spareAlive(s) && s.key === spareKey(spec)) return s;
  await stopSpare(s);
  return undefined;
}

async function stopSpare(s: Spare): Promise<void> {
  if (spareAlive(s) && s.child.pid !== undefined && s.child.pid > 1) {
    try {
      process.kill(-s.child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  s.child.stdin?.destroy();
  await Promise.race([s.gone, sleep(KILL_WAIT_MS)]);
  removeCgroup(s.cgroup);
}

/** Stop the parked launcher of `logFile`, if any (the restart it was for is not going to happen). */
export async function discardRespawn(logFile: string): Promise<void> {
  const s = spares.get(logFile);
  if (!s) return;
  spares.delete(logFile);
  await stopSpare(s);
}

/** What a started service is known by: its identity (read at once), its exit, a way to wait for it. */
function started(child: ChildProcess, pid: number, commandLine: string, logOffset: number, instance: string | undefined): StartedService {
  // Errors after a successful start (a failed kill) must not crash the CLI.
  child.on('error', () => {});
  const exited = new Promise<ExitInfo>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  // Read the identity now, before the event loop can reap a process that exits at once.
  const stat = HAS_PROC ? readProcStat(pid) : undefined;
  child.unref();
  const waitExit = async (): Promise<ExitInfo> => {
    child.ref();
    try {
      return await exited;
    } finally {
      child.unref();
    }
  };
  return {
    pid,
    pgid: stat?.pgid ?? pid,
    startTime: stat?.startTime ?? 0,
    child,
    commandLine,
    logOffset,
    exited,
    waitExit,
    ...(instance ? { instance } : {}),
  };
}

/**
 * Who owns the group a descriptor names:
 * - alive: the leader runs with the recorded start time;
 * - orphans: the leader is gone but members of its group remain (grandchildren). While a group
 *   exists Linux never hands its id out as a pid, so they are ours;
 * - gone: nothing left;
 * - pid-reused: the pid now belongs to another program. Never signal anything then.
 */
export function groupOwnership(desc: Pick<StopProcess, 'pid' | 'pgid' | 'startTime'>): 'alive' | 'orphans' | 'gone' | 'pid-reused' {
  // Not a group we may signal: treat it like somebody else's (callers never signal those).
  if (signalRefusal(desc)) return 'pid-reused';
  if (!HAS_PROC) return pidExists(desc.pid) ? 'alive' : 'gone';
  const leader = readProcStat(desc.pid);
  if (leader && leader.startTime !== desc.startTime) return 'pid-reused';
  if (leader && !hasExited(leader)) return leader.pgid === desc.pgid ? 'alive' : 'pid-reused';
  if (desc.pgid !== desc.pid) return 'gone';
  return groupGone(desc.pgid) ? 'gone' : 'orphans';
}

export type StopResult = 'stopped' | 'killed' | 'not-running' | 'pid-reused';

/**
 * Stop the process group a `stop-process` descriptor names: its signal to the group, up to
 * `graceMs` for every member to exit, then SIGKILL to the group. `force` sends SIGKILL at once.
 * Throws only when the group survives SIGKILL or may not be signalled.
 */
export async function stopGroup(desc: StopProcess, opts: { force?: boolean } = {}): Promise<StopResult> {
  const refused = signalRefusal(desc);
  if (refused) throw new SignalRefused(refused);
  const owner = groupOwnership(desc);
  if (owner === 'pid-reused') return 'pid-reused';
  if (owner === 'gone') return 'not-running';
  const pgid = desc.pgid;
  if (!opts.force && desc.signal !== 'SIGKILL') {
    signalGroup(pgid, desc.signal);
    if (await waitGroupGone(pgid, desc.graceMs)) return released(desc, 'stopped');
  }
  signalGroup(pgid, 'SIGKILL');
  if (await waitGroupGone(pgid, KILL_WAIT_MS)) return released(desc, 'killed');
  throw new Error(`process group ${pgid} is still running after SIGKILL`);
}

/** An emptied cgroup of the instance is removed (one still holding escapees is left to the undo's sweep). */
function released(desc: StopProcess, result: StopResult): StopResult {
  if (typeof desc.instance === 'string') releaseCgroup(desc.instance);
  return result;
}

/** SIGKILL the group now, synchronously, if it is still ours (the second Ctrl-C). */
export function killGroupNow(desc: Pick<StopProcess, 'pid' | 'pgid' | 'startTime'>): boolean {
  if (signalRefusal(desc)) return false;
  const owner = groupOwnership(desc);
  if (owner !== 'alive' && owner !== 'orphans') return false;
  try {
    process.kill(-desc.pgid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}


// ---------------------------------------------------------------------------------------------
// Ports

export interface PortHolder {
  pid: number;
  command: string;
}

const TCP_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

/**
 * The LISTEN sockets (any address, IPv4 and IPv6), as `socket:[inode]`, on each of `ports`, from
 * the texts of the kernel's TCP tables (/proc/net/tcp and tcp6).
 */
function listenersIn(tables: readonly string[], ports: readonly number[]): Map<number, Set<string>> {
  const found = new Map<number, Set<string>>(ports.map((p) => [p, new Set<string>()]));
  for (const text of tables) {
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ... inode; st 0A = LISTEN
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !f[1] || !f[9]) continue;
      found.get(parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16))?.add(`socket:[${f[9]}]`);
    }
  }
  return found;
}

/** The LISTEN sockets on each of `ports` (both tables read once for all the ports). */
export function listeningSockets(ports: readonly number[]): Map<number, Set<string>> {
  return listenersIn(
    TCP_TABLES.map((t) => {
      try {
        return readFileSync(t, 'latin1');
      } catch {
        return '';
      }
    }),
    ports,
  );
}

/**
 * The same, read off the main thread: the kernel writes a line per socket of the machine (~10 ms
 * for 500 sockets), and tasks starting beside the caller should not wait for it.
 */
export async function listeningSocketsAsync(ports: readonly number[]): Promise<Map<number, Set<string>>> {
  return listenersIn(await Promise.all(TCP_TABLES.map((t) => readFile(t, 'latin1').catch(() => ''))), ports);
}

/** The sockets (`socket:[inode]`) among a process's open files (empty when they cannot be read). */
export function socketsOf(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // another user's process, or gone
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:')) out.add(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * True when nothing can be listening on `port`: a wildcard bind (IPv6 dual-stack, else IPv4)
 * succeeded and was released at once. Linux refuses such a bind while any socket LISTENs on the
 * port, on any address. False means "look closer" (a listener, a client socket using the port,
 * a privileged port, no network stack): the socket tables say which. About a millisecond, where
 * reading the tables costs ~10 ms on a machine with a few hundred sockets.
 */
export function portProvenFree(port: number): Promise<boolean> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return Promise.resolve(false);
  const attempt = (host: string): Promise<boolean | 'no-family'> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL' ? 'no-family' : false));
      server.listen({ port, host, ipv6Only: false, exclusive: true }, () => server.close(() => resolve(true)));
    });
  return attempt('::').then((r) => (r === 'no-family' ? attempt('0.0.0.0').then((v) => v === true) : r));
}

/**
 * Whether something listens on TCP `port` (any address), and which process, when it is visible to
 * this user: the owner of the fd `socket:[inode]` of the LISTEN socket.
 */
export function inspectPort(port: number): { listening: boolean; holder?: PortHolder } {
  const wanted = listeningSockets([port]).get(port)!;
  if (wanted.size === 0) return { listening: false };
  for (const pid of listPids()) {
    if ([...socketsOf(pid)].some((s) => wanted.has(s))) {
      const command = readCmdline(pid) ?? readProcStat(pid)?.comm ?? 'unknown';
      return { listening: true, holder: { pid, command: shortCommand(command) } };
    }
  }
  return { listening: true };
}

/** The process listening on `port`, or undefined when the port is free (or its holder is invisible). */
export function findPortHolder(port: number): PortHolder | undefined {
  return inspectPort(port).holder;
}

/** The error a kind throws when its signal aborted it: the signal's own TaskError if it has one. */
export function abortError(signal: AbortSignal): TaskError {
  const reason: unknown = signal.reason;
  if (reason instanceof TaskError) return reason;
  if (typeof reason === 'string' && reason) return new TaskError(fail.aborted(reason));
  if (reason instanceof Error && reason.name !== 'AbortError' && reason.message) return new TaskError(fail.aborted(reason.message));
  return new TaskError(fail.aborted('the run was interrupted'));
}
