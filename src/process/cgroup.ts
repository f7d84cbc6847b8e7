/**
 * cgroup v2 placement: where Linux lets stigmer create a cgroup (root, or a delegated subtree such
 * as a systemd user slice), every service a stack starts gets one of its own, and stopping it ends
 * with `cgroup.kill`, as systemd does: every descendant goes, whatever it did to its process group,
 * session or environment (`setsid`, a double fork, `env -i`). Where no cgroup can be created, the
 * marker sweep of sweep.ts is what finds escapees (it misses only a process that cleared its
 * environment).
 *
 *   <base>/<stack hash>-<instance>    base = <cgroup2 mount><parent of stigmer's own cgroup>/stigmer
 *                                     (or <mount>/stigmer when stigmer sits in the root cgroup)
 *
 * Names are derived, never read from the state file: the instance is a spawn's hex id (the state
 * schema allows nothing else) and the stack hash comes from the data dir, so a hostile state can
 * at worst name a cgroup this stack created. No cgroup holding stigmer itself or one of its
 * ancestors is ever killed (a stigmer run by a stack's own service).
 *
 * Node cannot spawn into a cgroup (no clone3 CLONE_INTO_CGROUP), so a service is started through
 * `/bin/sh -c` that moves itself into the cgroup and then execs the service (same pid, start time
 * and group): a child the service forks at once is inside too. When the command cannot be found,
 * it is spawned directly (so the error is node's usual ENOENT) and nothing is placed.
 * STIGMER_CGROUP=off turns placement off.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HAS_PROC, readCmdline, readProcStat, selfAndAncestors } from './identity.js';
import { stackId } from './sweep.js';

const INSTANCE = /^[0-9a-f]{1,64}$/;
const CHILD = /^([0-9a-f]{12})-([0-9a-f]{1,64})$/;

let cachedBase: string | null | undefined;

/** The cgroup2 mount point, from /proc/self/mountinfo. */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const sep = line.indexOf(' - ');
      if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
      const mountPoint = line.slice(0, sep).split(' ')[4];
      if (mountPoint) return mountPoint.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** stigmer's own cgroup v2 path ("0::/path"). */
function ownCgroup(): string | undefined {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3) || undefined;
  } catch {
    return undefined;
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The directory stigmer's cgroups live in, created on first use; null where none can be created
 * (no cgroup v2, a read-only mount, not root and no delegation, STIGMER_CGROUP=off).
 */
export function cgroupBase(): string | null {
  if (cachedBase !== undefined) return cachedBase;
  cachedBase = null;
  if (!HAS_PROC || process.env['STIGMER_CGROUP'] === 'off') return cachedBase;
  const mount = cgroup2Mount();
  const own = ownCgroup();
  if (!mount || !own) return cachedBase;
  // The parent of our own cgroup (a delegated slice), else the root (stigmer in the root cgroup).
  const parent = own === '/' ? mount : join(mount, dirname(own));
  const base = join(parent, 'stigmer');
  try {
    if (!existsSync(base)) {
      if (!writable(parent)) return cachedBase;
      mkdirSync(base);
    }
    // cgroup.kill exists from Linux 5.14; without it the marker sweep stays the only way.
    if (!writable(base) || !existsSync(join(base, 'cgroup.kill'))) return cachedBase;
    cachedBase = base;
  } catch {
    // read-only, not ours: the fallback
  }
  return cachedBase;
}

const stackHash = (dataDir: string): string => createHash('sha256').update(stackId(dataDir)).digest('hex').slice(0, 12);

function dirFor(base: string, dataDir: string, instance: string): string | undefined {
  return INSTANCE.test(instance) ? join(base, `${stackHash(dataDir)}-${instance}`) : undefined;
}

/** Create the cgroup of one spawn; its path, or undefined where cgroups are not available. */
export function createCgroup(dataDir: string, instance: string): string | undefined {
  const base = cgroupBase();
  const dir = base ? dirFor(base, dataDir, instance) : undefined;
  if (!dir) return undefined;
  try {
    mkdirSync(dir);
    return dir;
  } catch {
    return undefined;
  }
}

const SH = '/bin/sh';
// The shell moves itself into the cgroup (writing 0 to cgroup.procs moves the writer), then
// becomes the service: pid, start time and process group stay the service's. A failed move is
// not fatal: the marker still covers it.
const PLACE = '{ echo 0 > "$0/cgroup.procs"; } 2>/dev/null; exec "$@"';

function runnable(command: string, env: NodeJS.ProcessEnv, cwd: string): boolean {
  const candidates = command.includes('/') ? [resolve(cwd, command)] : (env['PATH'] ?? '').split(':').map((d) => resolve(cwd, d || '.', command));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * The command line that starts `command` inside the cgroup `dir` before it runs a single
 * instruction of its own (so a child it forks at once is inside too). Undefined when the command
 * cannot be found or run: spawning it directly then fails with the usual error.
 */
export function inCgroup(dir: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): { command: string; args: string[] } | undefined {
  if (!existsSync(SH) || !runnable(command, env, cwd)) return undefined;
  return { command: SH, args: ['-c', PLACE, dir, command, ...args] };
}

// The same, parked: once inside, the shell waits for a line `go` on its stdin before it becomes the
// service (stdin then /dev/null, as a service always has). Anything else, or the end of the pipe
// (the supervisor gone), and it exits without running anything.
const PARKED = '{ echo 0 > "$0/cgroup.procs"; } 2>/dev/null; read -r go || exit 0; [ "$go" = go ] || exit 0; exec "$@" </dev/null';

/**
 * `inCgroup`'s command line for a launcher started ahead of time (proc.ts `prepareRespawn`): the
 * move into the cgroup, the slow part (the kernel waits for an RCU grace period, 10-15 ms), is
 * done while the launcher waits; the service runs once it reads `go`.
 */
export function parkedInCgroup(dir: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): { command: string; args: string[] } | undefined {
  if (!existsSync(SH) || !runnable(command, env, cwd)) return undefined;
  return { command: SH, args: ['-c', PARKED, dir, command, ...args] };
}

/**
 * Move `pid` into the cgroup (best effort: the marker still covers it). Off the main thread: a
 * move waits for an RCU grace period (10-15 ms here), which would stall every service's log and
 * health check; the launcher's shell has moved itself before the service runs anyway.
 */
export async function placeInCgroup(dir: string, pid: number): Promise<boolean> {
  try {
    await writeFile(join(dir, 'cgroup.procs'), `${pid}\n`);
    return true;
  } catch {
    removeCgroup(dir);
    return false;
  }
}

function members(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((n) => Number.isSafeInteger(n) && n > 1);
  } catch {
    return [];
  }
}

/** Remove an (empty) cgroup this module created; nothing when it is populated or gone. */
export function removeCgroup(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still populated, or gone
  }
}

export interface CgroupStop {
  /** the processes the cgroup still held when the stop began */
  found: { pid: number; command: string }[];
  /** whether it took cgroup.kill */
  killed: boolean;
}

const NONE: CgroupStop = { found: [], killed: false };

/**
 * Stop what is left in the cgroup of `instance` of the stack in `dataDir`: `signal` to each member,
 * up to `graceMs` for the cgroup to empty, then `cgroup.kill` (SIGKILL to every member, atomically),
 * then remove it. Nothing to do where there is no such cgroup. Throws when it is still populated
 * after cgroup.kill. Membership is the identity: the kernel lists only live members.
 */
export async function stopCgroup(dataDir: string, instance: string, opts: { signal?: NodeJS.Signals; graceMs?: number; force?: boolean } = {}): Promise<CgroupStop> {
  const base = cgroupBase();
  const dir = base ? dirFor(base, dataDir, instance) : undefined;
  if (!dir || !existsSync(dir)) return NONE;
  return stopDir(dir, opts);
}

async function stopDir(dir: string, opts: { signal?: NodeJS.Signals; graceMs?: number; force?: boolean }): Promise<CgroupStop> {
  const first = members(dir);
  if (first.length === 0) {
    removeCgroup(dir);
    return NONE;
  }
  const own = selfAndAncestors(); // a cgroup holding one of them is never killed
  if (first.some((p) => own.has(p))) return NONE; // stigmer itself runs in it: never
  const found = first.map((pid) => ({ pid, command: readCmdline(pid) ?? readProcStat(pid)?.comm ?? 'unknown' }));
  const emptyWithin = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    for (;;) {
      if (members(dir).length === 0) return true;
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
  };
  if (!opts.force && opts.signal !== 'SIGKILL') {
    for (const pid of first) {
      try {
        process.kill(pid, opts.signal ?? 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
    if (await emptyWithin(opts.graceMs ?? 3000)) {
      removeCgroup(dir);
      return { found, killed: false };
    }
  }
  writeFileSync(join(dir, 'cgroup.kill'), '1\n');
  if (!(await emptyWithin(5000))) throw new Error(`cgroup ${dir} still holds ${members(dir).length} process(es) after cgroup.kill`);
  removeCgroup(dir);
  return { found, killed: true };
}

function statOrNull(path: string): { mtimeMs: number } | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function findByInstance(base: string, instance: string): string | undefined {
  if (!INSTANCE.test(instance)) return undefined;
  try {
    const name = readdirSync(base).find((n) => CHILD.exec(n)?.[2] === instance);
    return name ? join(base, name) : undefined;
  } catch {
    return undefined;
  }
}

/** Remove the instance's cgroup once it is empty (after its group was stopped); kills nothing. */
export function releaseCgroup(instance: string): void {
  const base = cgroupBase();
  const dir = base ? findByInstance(base, instance) : undefined;
  if (dir && members(dir).length === 0) removeCgroup(dir);
}

/** SIGKILL every member of the instance's cgroup now, synchronously (the second Ctrl-C). */
export function killCgroupNow(instance: string): void {
  const base = cgroupBase();
  const dir = base ? findByInstance(base, instance) : undefined;
  if (!dir) return;
  const own = selfAndAncestors(); // a cgroup holding one of them is never killed
  if (members(dir).some((p) => own.has(p))) return;
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1\n');
  } catch {
    // gone meanwhile
  }
}

/** Whether the stack has any cgroup left (a quick look before `down` says "nothing to stop"). */
export function hasCgroups(dataDir: string): boolean {
  const base = cgroupBase();
  if (!base) return false;
  const hash = stackHash(dataDir);
  try {
    return readdirSync(base).some((n) => CHILD.exec(n)?.[1] === hash);
  } catch {
    return false;
  }
}

/**
 * The stack's cgroups no record claims (a run killed between a spawn and its state write):
 * stopped like a service, then removed; empty ones are removed. Returns how many processes they held.
 */
export async function stopLeftoverCgroups(dataDir: string, claimed: ReadonlySet<string>, opts: { force?: boolean } = {}): Promise<CgroupStop['found']> {
  const base = cgroupBase();
  if (!base) return [];
  const hash = stackHash(dataDir);
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return [];
  }
  const stopped: CgroupStop['found'] = [];
  for (const name of entries) {
    const m = CHILD.exec(name);
    if (!m) continue;
    if (m[1] !== hash) {
      // Another stack's, empty for a minute (its service exited and nobody stopped it): tidy up.
      const dir = join(base, name);
      if (Date.now() - (statOrNull(dir)?.mtimeMs ?? Date.now()) > 60_000 && members(dir).length === 0) removeCgroup(dir);
      continue;
    }
    if (claimed.has(m[2]!)) continue;
    stopped.push(...(await stopDir(join(base, name), { graceMs: 3000, ...(opts.force ? { force: true } : {}) })).found);
  }
  return stopped;
}
