/**
 * The test rig: a temp STIGMER_HOME per test, random free ports, the built CLI run as a child
 * process, and a check that nothing a test started is still running.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { pidExists, readProcStat } from '../src/process/identity.js';

export const repoRoot = resolve(new URL('../..', import.meta.url).pathname);
export const cliPath = join(repoRoot, 'bin', 'stigmer.js');
export const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', name);

/** A fresh temp dir to use as STIGMER_HOME (and as a scratch dir). */
export function tempHome(prefix = 'stigmer-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Ports handed out to tests are claimed in one folder shared by every test process on the machine
// (files run in parallel, and so do other checkouts' suites): a file per port, holding the pid of
// the test process that owns it, so two tests never get the same port. A claim whose owner has
// exited is taken over. Ports come from below Linux's ephemeral range (32768-60999), so no port the
// kernel picks for a listen(0) or an outgoing connection can take one between its choice and its
// use; the port 1000 above is claimed too, as a Temporal dev server's default UI port.
const portClaims = join(tmpdir(), 'stigmer-test-ports');
const PORT_LOW = 20000;
const PORT_HIGH = 31767; // + 1000 stays below 32768
const claimed: string[] = [];
process.once('exit', () => {
  for (const f of claimed) rmSync(f, { force: true });
});

function ownerAlive(file: string): boolean {
  const pid = Number(readFileSync(file, 'utf8'));
  return Number.isInteger(pid) && pid > 0 && pidExists(pid);
}

function claim(port: number): boolean {
  const file = join(portClaims, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      claimed.push(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let alive = true;
      try {
        alive = ownerAlive(file);
      } catch {
        alive = false; // removed or half-written by its owner: look again
      }
      if (alive) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** A TCP port on 127.0.0.1 that is free and that no other test holds (nor its port + 1000). */
export async function freePort(): Promise<number> {
  mkdirSync(portClaims, { recursive: true });
  for (let tries = 0; tries < 500; tries++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1));
    if (!claim(port)) continue;
    if (!claim(port + 1000)) continue; // the first claim stays: somebody is near it
    if ((await bindable(port)) && (await bindable(port + 1000))) return port;
  }
  throw new Error(`freePort: no free port in ${PORT_LOW}-${PORT_HIGH} after 500 tries (claims in ${portClaims})`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  home: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** ms before the CLI is killed (test failure) */
  timeout?: number;
  input?: string;
}

/** The environment a CLI under test gets: no TTY, CI set, our temp home. */
export function cliEnv(home: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // Managed Ollama off unless a test turns it on (auto would look for `ollama` and download the
  // release: tests that want that bring their own mirror and stand-in).
  const env: NodeJS.ProcessEnv = { STIGMER_OLLAMA_MANAGED: 'false', ...process.env, STIGMER_HOME: home, CI: 'true', NO_COLOR: '1' };
  delete env['FORCE_COLOR'];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Run the built CLI to completion. */
export function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: opts.cwd ?? opts.home,
      env: cliEnv(opts.home, opts.env),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 60_000);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

/** Pids of live processes whose environment has STIGMER_HOME=<home> (everything a test started). */
export function processesWithHome(home: string): { pid: number; cmd: string }[] {
  const needle = `STIGMER_HOME=${home}\0`;
  const out: { pid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'latin1') + '\0';
      if (!environ.includes(needle)) continue;
      if (readProcStat(pid)?.state === 'Z') continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
      out.push({ pid, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Assert that nothing started under `home` is still running; if something is, kill it by pid
 * (so one failing test does not poison the next) and throw.
 */
export async function assertNothingLeft(home: string, waitMs = 2000): Promise<void> {
  const deadline = Date.now() + waitMs;
  let left = processesWithHome(home);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = processesWithHome(home);
  }
  if (left.length) {
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    throw new Error(`processes left running:\n${left.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`);
  }
}

/** Remove a temp home after asserting nothing is left running in it. */
export async function cleanupHome(home: string): Promise<void> {
  try {
    await assertNothingLeft(home);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface UntilOptions {
  /** the pause between two looks (ms) */
  everyMs?: number;
  /** what the failure says after "timed out waiting for <what>: " (e.g. the last value seen) */
  show?: () => string;
}

/**
 * The one bounded polling wait of the tests: look at `check` every `everyMs` (20) until it gives a
 * truthy value, and return that value; after `ms` (15 s; each test keeps the bound it had) throw
 * `timed out waiting for <what>`.
 */
export async function until<T>(what: string, check: () => T | Promise<T>, ms = 15_000, opts: UntilOptions = {}): Promise<Exclude<T, false | undefined | null | 0 | ''>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as Exclude<T, false | undefined | null | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${opts.show ? `: ${opts.show()}` : ''}`);
    await sleep(opts.everyMs ?? 20);
  }
}

/** mulberry32: a small seeded PRNG, the same sequence for the same seed everywhere (fuzz cases, bench graphs). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A CLI left running (a foreground session): its output so far, its exit code once it ends. */
export interface RunningCli {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

/** Start the built CLI without waiting for it (stdio pipes, no stdin); the test stops it by pid. */
export function spawnCli(args: string[], opts: { home: string; cwd?: string; env?: Record<string, string | undefined> }): RunningCli {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: opts.cwd ?? opts.home, env: cliEnv(opts.home, opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  return { child, out: () => out, err: () => err, exit };
}

/** A stack of a test: its home, the directory its tasks file is in, its data dir. */
export interface StackDirs {
  home: string;
  dir: string;
  data: string;
  file: string;
}

/** Run the CLI on the stack (`--file`, `--data-dir`), from its directory. */
export const stackCli = (r: StackDirs, args: string[]): Promise<CliResult> => runCli([...args, '--file', r.file, '--data-dir', r.data], { home: r.home, cwd: r.dir });

/** The stack's state.json as `T`, or undefined (not written yet, or gone). */
export function readStateOf<T>(r: { data: string }): T | undefined {
  try {
    return JSON.parse(readFileSync(join(r.data, 'state.json'), 'utf8')) as T;
  } catch {
    return undefined;
  }
}
