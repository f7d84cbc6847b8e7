/**
 * What every benchmark shares: statistics, child processes in their own process group (stopped by
 * group, then checked for leftovers through STIGMER_HOME in their environment), and the test rig's
 * temp homes and free ports.
 */
import { pathToFileURL } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { assertNothingLeft, cliEnv, cliPath, fixture, freePort, processesWithHome, repoRoot, sleep, tempHome } from '../test/helpers.js';

export { cliEnv, cliPath, fixture, freePort, processesWithHome, repoRoot, sleep, tempHome };

/** Wall-clock epoch ms with sub-ms resolution, comparable with the fake service's `--stamp`. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** Median, min and max of the samples, rounded to `digits` decimals (ratios want 2). */
export function stats(values: number[], digits = 1): Stats {
  if (values.length === 0) throw new Error('Internal error: no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const r = (n: number): number => round(n, digits);
  return { median: r(median), min: r(sorted[0]!), max: r(sorted[sorted.length - 1]!), runs: values.map(r) };
}

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

export interface Spawned {
  child: ChildProcess;
  /** epoch ms just before spawn */
  startedAt: number;
  stdout: () => string;
  stderr: () => string;
  /** resolves with the exit code and the epoch ms at which the process exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export interface SpawnOptions {
  cwd: string;
  /** STIGMER_HOME for the child: how leftovers are found afterwards */
  home: string;
  env?: Record<string, string | undefined>;
  /** called for every chunk of stdout (e.g. to spot a ready line) */
  onStdout?: (chunk: string) => void;
}

/** Start a command detached in its own process group (pgid = its pid), stdout/stderr piped. */
export function start(command: string, args: string[], o: SpawnOptions): Spawned {
  const startedAt = epochNow();
  const child = spawn(command, args, { cwd: o.cwd, env: cliEnv(o.home, o.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    o.onStdout?.(d);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((res, rej) => {
    child.on('error', rej);
    child.on('exit', (code, signal) => res({ code, signal, at: epochNow() }));
  });
  exited.catch(() => {});
  return { child, startedAt, stdout: () => out, stderr: () => err, exited };
}

/** Run a command to completion; throws with its output when it exits otherwise than `exitCode` (0) or takes too long. */
export async function runToEnd(command: string, args: string[], o: SpawnOptions & { timeoutMs?: number; exitCode?: number }): Promise<{ ms: number; stdout: string; stderr: string; startedAt: number; endedAt: number }> {
  const p = start(command, args, o);
  const timer = setTimeout(() => killGroup(p.child.pid!, 'SIGKILL'), o.timeoutMs ?? 60_000);
  try {
    const r = await p.exited;
    if (r.code !== (o.exitCode ?? 0)) {
      throw new Error(`${[command, ...args].join(' ')} exited with ${r.code ?? r.signal}\n${p.stdout()}${p.stderr()}`);
    }
    return { ms: r.at - p.startedAt, stdout: p.stdout(), stderr: p.stderr(), startedAt: p.startedAt, endedAt: r.at };
  } finally {
    clearTimeout(timer);
  }
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/** Stop a process group started by `start`: SIGTERM, a grace period, then SIGKILL. */
export async function stopGroup(p: Spawned, graceMs = 3000): Promise<void> {
  const pgid = p.child.pid!;
  killGroup(pgid, 'SIGTERM');
  const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) killGroup(pgid, 'SIGKILL');
  // Members of the group may outlive its leader for a moment.
  killGroup(pgid, 'SIGKILL');
  await p.exited;
}

/** Wait until `cond` holds (polling every few ms), or throw after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Assert nothing started under `home` is left running (kills leftovers and throws), then remove it. */
export async function finishHome(home: string): Promise<void> {
  try {
    await assertNothingLeft(home, 5000);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Every `stamp <what> <epoch>` line printed by the fake service with `--stamp`; with `port`, only
 * the listen stamps of that port.
 */
export function readStamps(text: string, what: 'started' | 'listening', port?: number): number[] {
  const out: number[] = [];
  const where = port === undefined ? '' : ` \\S+:${port}\\b`;
  for (const m of text.matchAll(new RegExp(`stamp ${what} (\\d+(?:\\.\\d+)?)${where}`, 'g'))) out.push(Number(m[1]));
  return out;
}

/** A progress line on stderr, so stdout stays the table. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Run a benchmark entry point when its file is the one node was started with (so a suite module
 * can also be imported by bench/index.ts): the exit code, or 1 with the error on stderr.
 */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>, label = 'bench'): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${label}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
