/**
 * Test rig for stigmer-server: start the real `stigmer internal server` on a free port with its
 * own data dir, wait for its listening line, stop it by pid; spawn the CLI and watch its output
 * while it runs; a tiny in-test runner built on the client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv, cliPath, freePort, sleep } from './helpers.js';
import { StigmerClient } from '../src/stack/client/index.js';
import { parseAddress } from '../src/util/address.js';

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** resolves with the exit status once the process has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** wait until stdout+stderr match */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** send a signal (by pid) and wait for the exit */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnCli(args: string[], home: string, env: Record<string, string | undefined> = {}, input?: string): Proc {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: home,
    env: cliEnv(home, env),
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (input !== undefined) child.stdin!.end(input);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let done = false;
  void exited.then(() => (done = true));
  const proc: Proc = {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      const matches = (): boolean => {
        const all = out + err;
        return typeof pattern === 'string' ? all.includes(pattern) : pattern.test(all);
      };
      while (!matches()) {
        if (done) throw new Error(`process exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
        await sleep(10);
      }
    },
    async stop(signal = 'SIGTERM') {
      if (!done) {
        try {
          process.kill(child.pid!, signal);
        } catch {
          // already gone
        }
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 10_000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  return proc;
}

export interface Server extends Proc {
  address: string;
  dataDir: string;
  client: StigmerClient;
}

/** Start `stigmer internal server`; `dataDir` defaults to <home>/data. */
export async function startServer(home: string, opts: { dataDir?: string; port?: number; env?: Record<string, string | undefined> } = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? join(home, 'data');
  mkdirSync(dataDir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const address = `127.0.0.1:${port}`;
    const proc = spawnCli(['internal', 'server'], home, { STIGMER_SERVER_ADDRESS: address, STIGMER_DATA_DIR: dataDir, ...opts.env });
    try {
      await proc.waitFor(`stigmer-server listening on ${address}`);
    } catch (err) {
      // Another test took the free port between freePort() and listen: pick another.
      if (attempt < 3 && opts.port === undefined && proc.stderr().includes('the port is already in use')) continue;
      throw err;
    }
    return { ...proc, address, dataDir, client: new StigmerClient(address, { keepAlive: true }) };
  }
}

/**
 * A runner for tests: claims one execution, posts `chunks` (waiting for `beforeEach(i)` before
 * chunk i, if given), then completes it (or fails it with `failWith`).
 */
export async function runOnce(
  client: StigmerClient,
  opts: { runnerId?: string; chunks: string[]; failWith?: string; beforeEach?: (i: number) => Promise<void>; waitMs?: number },
): Promise<{ id: string }> {
  const runnerId = opts.runnerId ?? 'test-runner';
  const claim = await client.claim(runnerId, opts.waitMs ?? 10_000);
  if (!claim) throw new Error('nothing to claim');
  const id = claim.execution.id;
  for (let i = 0; i < opts.chunks.length; i++) {
    if (opts.beforeEach) await opts.beforeEach(i);
    await client.appendChunk(id, runnerId, opts.chunks[i]!);
  }
  if (opts.failWith !== undefined) await client.fail(id, runnerId, opts.failWith);
  else await client.complete(id, runnerId);
  return { id };
}

/** Raw HTTP for the validation tests: any method, any body, the status and parsed body back. */
export async function raw(
  address: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }> {
  const http = await import('node:http');
  const { host, port } = parseAddress(address)!;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // SSE or plain text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
