/**
 * The supervisor's socket protocol: newline-delimited JSON over `<data-dir>/supervisor.sock` (a
 * Unix socket, mode 0600, owner only; never TCP). A client sends one request line, then at most
 * follow-ups on the same connection (an interrupt, the answer to a prompt); the supervisor answers
 * with a stream of messages that ends with `exit` (or `status`).
 *
 * The supervisor runs the engine; the client renders. So the client is told which view to build
 * (`view`: a run's, an undo's or a down's, with the tasks it shows), then gets that view's engine
 * events in order, exactly as the in-process run emits them; stderr/stdout text the engine would
 * print; prompts to ask on its terminal.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { EngineEvent } from '../model/event.js';
import type { PromptOptions } from '../model/kind.js';
import type { InterruptSignal } from '../model/app.js';
import type { RenderTask } from '../render/types.js';
import type { GrpcAnswer } from '../process/grpc-client.js';
import type { ServingStatus } from '../process/grpc-codec.js';

export type ViewKind = 'run' | 'undo' | 'down';
export type WireOutput = 'plain' | 'json' | 'auto' | 'tty';

export interface UpRequest extends Named {
  op: 'up';
  /** the tasks file as the client named it, read from `cwd` */
  file: string;
  only?: string[];
  concurrency?: number;
  noInput: boolean;
  /** whether the client can prompt on its terminal */
  canPrompt: boolean;
  output: WireOutput;
  /** `${{ env.* }}` (the client's environment over its .env) */
  env: Record<string, string | undefined>;
  /** the client's own environment: what the services started for this request inherit */
  processEnv: Record<string, string | undefined>;
  /** the resolved config, when the client resolved it (local start); else loaded when the file reads it */
  config?: unknown;
}

/** What every request that runs the engine names: the data dir as the client names it, and its directory. */
interface Named {
  /**
   * The data dir as the client names it (the same directory as the supervisor's: checked). The
   * engine works on it under this name, so every path it reports reads as the user gave it,
   * and a view of the directory the user cannot write (a read-only mount) behaves as it would in
   * the CLI.
   */
  dataDir: string;
  /** the client's working directory: relative paths are read from it, as in the CLI */
  cwd: string;
}

export interface DownRequest extends Named {
  op: 'down';
  output: WireOutput;
  quiet?: boolean;
}

/** Restart one service (its needs reused while satisfied, as `stigmer run`; its dependents keep running). */
export interface RestartRequest extends Omit<UpRequest, 'op' | 'only' | 'concurrency'> {
  op: 'restart';
  task: string;
}

/** `stigmer run <task>` on the running stack: rerun one step (its unsatisfied needs first), as in the CLI. */
export interface RunRequest extends Omit<UpRequest, 'op' | 'only' | 'concurrency'> {
  op: 'run';
  task: string;
  /** --no-deps: its needs' recorded outputs stand in for running them */
  noDeps?: boolean;
}

/**
 * One gRPC Health/Check (`local status` of a managed Temporal): the supervisor keeps @grpc/grpc-js
 * loaded for its liveness checks, so the CLI need not load it (~600 KB) for one call. Plaintext,
 * no credentials: an external Temporal (TLS, API key) is checked by the CLI itself.
 */
export interface HealthRequest {
  op: 'health';
  address: string;
  service: string;
  timeoutMs: number;
}

/**
 * `up --foreground` once its up is over: the connection stays open for as long as the supervisor
 * runs the stack. When the supervisor leaves (a `down`, its own signal, nothing left to run) it
 * says why (`err`) and ends with `exit` (`leaving`: its pid); a connection that closes without it
 * means the supervisor died. A client that goes away without a down first (kill -9 of the
 * foreground CLI, its terminal gone) takes the stack down with it, as the foreground promises.
 */
export interface AttachRequest {
  op: 'attach';
  dataDir: string;
  cwd: string;
}

export type Request = UpRequest | DownRequest | RestartRequest | RunRequest | HealthRequest | AttachRequest | { op: 'status' };

/**
 * Sent after the request, on the same connection. `detach`: an attached client leaves without taking
 * the stack down (its up failed and was undone).
 */
export type FollowUp = { op: 'interrupt'; signal: InterruptSignal } | { op: 'answer'; id: number; value?: string; interrupted?: boolean } | { op: 'detach' };

export type Message =
  | { t: 'view'; id: number; kind: ViewKind; tasks: RenderTask[] }
  | { t: 'ev'; id: number; ev: EngineEvent }
  | { t: 'end'; id: number }
  | { t: 'err'; text: string }
  | { t: 'out'; text: string }
  /** a prompt: `view` names the view that asks (a live view asks in place), else the bare terminal */
  | { t: 'ask'; id: number; task: string; opts: PromptOptions; view?: number }
  | { t: 'ready'; outputs: [string, Record<string, unknown>][] }
  /** the last message; `leaving`: the supervisor's pid, which exits now (the client waits for it) */
  | { t: 'error'; message: string; exitCode: number; leaving?: number }
  | { t: 'exit'; code: number; leaving?: number }
  | { t: 'status'; pid: number; startedAt: string; busy: boolean }
  /** the answer to a HealthRequest, as src/process/grpc-client.ts gives it */
  | { t: 'health'; answer: GrpcAnswer<ServingStatus> };

/**
 * Where the socket of a data dir lives. A Unix socket path has a 107-byte limit: a data dir too
 * deep for it gets its socket in a private directory of the user's under the temp dir, named by
 * a hash of the data dir (the state's `supervisor.socket` records which).
 */
export function socketPath(dataDir: string): string {
  const plain = join(dataDir, 'supervisor.sock');
  if (Buffer.byteLength(plain) <= 100) return plain;
  // node:crypto on demand: `local status` loads this module and never needs it (~3 ms to load)
  const hash = process.getBuiltinModule('node:crypto').createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return join(shortSocketDir(), `${hash}.sock`);
}

/** The environment variable naming the pid of the CLI that spawns the supervisor (it watches that CLI until its first request). */
export const SPAWNER_VAR = 'STIGMER_SUPERVISOR_SPAWNER';

/** The supervisor's life lock (flock, held for as long as it lives; its file names the supervisor's pid). */
export const supervisorLockPath = (dataDir: string): string => join(dataDir, 'supervisor.lock');

export function shortSocketDir(): string {
  return join(tmpdir(), `stigmer-${process.getuid?.() ?? 'user'}`);
}

/** Split a stream of chunks into JSON lines; a line that is not JSON is dropped. */
export function lineReader(onMessage: (value: unknown) => void): (chunk: Buffer | string) => void {
  let buffered = '';
  return (chunk) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      onMessage(value);
    }
  };
}

export const encode = (value: unknown): string => `${JSON.stringify(value)}\n`;

/**
 * A request whose answer is one message (`health`), for a command that only asks: the first
 * message, or undefined when the supervisor gives none within `timeoutMs` (gone, or an older one).
 */
export function askOnce(path: string, req: Request, timeoutMs: number): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const finish = (answer: Message | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    sock.on('error', () => finish(undefined));
    sock.on('close', () => finish(undefined));
    sock.on('data', lineReader((m) => finish(m as Message)));
    sock.write(encode(req));
  });
}
