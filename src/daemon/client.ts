/**
 * The CLI side of the supervisor: find the data dir's supervisor (or start one), send it the
 * request, and render what it streams exactly as an in-process run renders it (the same views,
 * src/engine/drivers.ts openView), asking its prompts on this terminal. Ctrl-C is passed on (the
 * supervisor undoes the run, as the CLI did); the second Ctrl-C kills every recorded process
 * group from here, as before.
 */
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { signalExitCode, type App } from '../model/app.js';
import type { Renderer, OutputMode, RenderTask } from '../render/types.js';
import { askOnTerminal, canPrompt, listenWithForce, openView, terminalIo, type ViewKind } from '../engine/terminal.js';
import type { RunOutcome } from '../engine/run.js';
import { StateStore } from '../engine/state.js';
import { EXIT, UserError } from '../util/errors.js';
import { registerSecret } from '../util/mask.js';
import { makePrivateDir } from '../util/private-dir.js';
import { describeFsError, fsExitCode } from '../util/fs-error.js';
import { dataPaths } from '../util/paths.js';
import { INSTANCE_VAR, STACK_VAR } from '../process/sweep.js';
import { hasExited, readProcStat } from '../process/identity.js';
import { liveHolder } from '../engine/lock.js';
import { encode, lineReader, socketPath, SPAWNER_VAR, supervisorLockPath, type Message, type Request, type RestartRequest, type RunRequest, type UpRequest, type WireOutput } from './protocol.js';

/** The supervisor's own output (what it could not tell a client), beside the state. */
export const supervisorLog = (dataDir: string): string => join(dataDir, 'supervisor.log');

/** A connection to the data dir's live supervisor, or undefined when none listens. */
export function connectSupervisor(dataDir: string): Promise<Socket | undefined> {
  const path = socketPath(dataDir);
  if (!existsSync(path)) return Promise.resolve(undefined);
  return new Promise((res) => {
    const s = connect(path);
    s.once('connect', () => res(s));
    s.once('error', () => res(undefined));
  });
}

function logTail(dataDir: string): string {
  try {
    const lines = readFileSync(supervisorLog(dataDir), 'utf8').trimEnd().split('\n').slice(-10);
    return lines.length && lines[0] ? `\n  last lines of ${supervisorLog(dataDir)}:\n${lines.map((l) => `    ${l}`).join('\n')}` : '';
  } catch {
    return '';
  }
}

/**
 * V8 flags of the supervisor, a long-lived process that mostly waits (on its services' pipes, its
 * probes, its socket): a 1 MB young generation (V8's default grows it to 16 MB, which it keeps),
 * and no optimizing compiler (TurboFan's code and its pages of the node binary; the interpreter
 * and the baseline compiler remain). Its peak RSS with the stack up (the supervisor bench's rss
 * row, `local start --foreground` on the stand-ins): 67.5 -> 57.8 MB; its log throughput, CPU per
 * 100k lines and crash -> ready again were unchanged within the noise (its own part of a restart,
 * crash -> respawned, ~8.5 -> ~10 ms). --jitless saved ~2 MB more but doubled that restart work.
 * The spawning CLI's own execArgv comes after, so a node flag given on purpose still wins.
 */
export const SUPERVISOR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--no-opt'];

/** Start the data dir's supervisor, detached, and wait until it listens. */
async function spawnSupervisor(dataDir: string): Promise<void> {
  makePrivateDir(dataDir);
  let log: number;
  try {
    log = openSync(supervisorLog(dataDir), 'a', 0o600);
  } catch (err) {
    throw new UserError(`stigmer: cannot start the supervisor: ${describeFsError(err, supervisorLog(dataDir))}`, fsExitCode(err));
  }
  const env = { ...process.env };
  delete env[STACK_VAR];
  delete env[INSTANCE_VAR];
  // (a supervisor whose CLI dies before its first request leaves at once: src/daemon/daemon.ts)
  env[SPAWNER_VAR] = String(process.pid);
  const entry = process.argv[1]!;
  const child = spawn(process.execPath, [...SUPERVISOR_NODE_FLAGS, ...process.execArgv, entry, 'internal', 'supervise', '--data-dir', dataDir], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
    env,
    cwd: dataDir,
  });
  closeSync(log);
  const pipe = child.stdio[3] as Socket;
  let said = '';
  const word = await new Promise<string>((res) => {
    pipe.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('\n')) res(said.slice(0, said.indexOf('\n')));
    });
    pipe.once('end', () => res(said));
    child.once('error', (err) => res(`error stigmer: cannot start the supervisor: ${err.message}`));
  });
  pipe.destroy();
  child.unref();
  if (word === 'ready' || word === 'busy') return;
  if (word.startsWith('error ')) throw new UserError(word.slice(6), EXIT.taskFailed);
  throw new UserError(`stigmer: the supervisor of ${dataDir} exited before it was ready${logTail(dataDir)}`, EXIT.taskFailed);
}

/** The live supervisor of the data dir, started when there is none. */
export async function ensureSupervisor(dataDir: string): Promise<Socket> {
  const live = await connectSupervisor(dataDir);
  if (live) return live;
  await spawnSupervisor(dataDir);
  for (let attempt = 0; attempt < 100; attempt++) {
    const s = await connectSupervisor(dataDir);
    if (s) return s;
    await sleep(50);
  }
  throw new UserError(`stigmer: the supervisor of ${dataDir} does not answer on ${socketPath(dataDir)}${logTail(dataDir)}`, EXIT.taskFailed);
}

/**
 * Wait (bounded) until a process has exited. A leaving supervisor may itself wait up to ~4 s (its
 * lock helpers, then its children): the bound is well past that, and costs nothing when it is quick.
 */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const stat = readProcStat(pid);
    // (a zombie leader whose threads are still exiting is not gone yet)
    if (!stat || hasExited(stat)) return;
    // Its exit takes a few ms once it said it leaves: looked at every 1 ms at first (a read of
    // one small /proc file), not every 5 (which cost a down ~2.5 ms on average).
    await sleep(i < 50 ? 1 : 5);
  }
}

export interface AttachOptions {
  app: App;
  dataDir: string;
  output?: OutputMode;
  onReady?: (outcome: RunOutcome) => void;
  /** where a down's plain view goes (default stdout; a foreground session's teardown: stderr) */
  downTo?: NodeJS.WritableStream;
}

/** Send `req` and render the supervisor's stream until its `exit`; the exit code. */
export async function attach(sock: Socket, req: Request, o: AttachOptions): Promise<number> {
  const code = await exchange(sock, req, o);
  if (code !== undefined) return code;
  process.stderr.write(`stigmer: the supervisor of ${o.dataDir} went away before the command finished; \`stigmer status\` shows what runs${logTail(o.dataDir)}\n`);
  return EXIT.taskFailed;
}

/** attach, but undefined when the supervisor closed the connection without its last message. */
async function exchange(sock: Socket, req: Request, o: AttachOptions): Promise<number | undefined> {
  const { app } = o;
  listenWithForce(app, o.dataDir);
  const send = (v: unknown): void => {
    if (!sock.destroyed) sock.write(encode(v));
  };
  const onAbort = (): void => send({ op: 'interrupt', signal: app.interruptedBy() ?? 'SIGINT' });
  if (app.signal.aborted) onAbort();
  else app.signal.addEventListener('abort', onAbort, { once: true });
  const views = new Map<number, Renderer>();
  let main: Renderer | undefined;
  let error: UserError | undefined;
  let exitCode: number | undefined;
  let leaving: number | undefined;
  let chain: Promise<void> = Promise.resolve();
  const handle = async (m: Message): Promise<void> => {
    switch (m.t) {
      case 'view': {
        const r = await openView(m.kind, o.output, m.tasks, main, o.downTo);
        if (m.kind === 'run') main = r;
        views.set(m.id, r);
        return;
      }
      case 'ev':
        views.get(m.id)?.event(m.ev);
        return;
      case 'end':
        await views.get(m.id)?.end();
        return;
      case 'err':
        process.stderr.write(`${m.text}\n`);
        return;
      case 'out':
        process.stdout.write(m.text);
        return;
      case 'ask': {
        const view = m.view !== undefined ? views.get(m.view) : undefined;
        try {
          const value = await (view?.prompt ? view.prompt(m.task, m.opts) : askOnTerminal(app, m.opts));
          if (m.opts.mask) registerSecret(value);
          send({ op: 'answer', id: m.id, value });
        } catch {
          send({ op: 'answer', id: m.id, interrupted: true });
        }
        return;
      }
      case 'ready':
        o.onReady?.({ ok: true, failed: [], warnings: [], changed: [], status: new Map(), outputs: new Map(m.outputs), services: new Map() });
        return;
      case 'error':
        error = new UserError(m.message, m.exitCode);
        leaving = m.leaving;
        return;
      case 'exit':
        exitCode = m.code;
        leaving = m.leaving;
        return;
      case 'status':
        return;
    }
  };
  await new Promise<void>((res) => {
    sock.on(
      'data',
      lineReader((v) => {
        chain = chain.then(() => handle(v as Message)).catch(() => {});
      }),
    );
    sock.once('close', () => res());
    sock.on('error', () => {});
    send(req);
  });
  await chain;
  app.signal.removeEventListener('abort', onAbort);
  // A supervisor that leaves is gone when this command returns (a script's next step finds nothing of it).
  if (leaving !== undefined) await gone(leaving);
  if (error) throw error;
  return exitCode;
}

export interface UpThroughOptions extends AttachOptions {
  file: string;
  env: Record<string, string | undefined>;
  config?: unknown;
  only?: string[];
  concurrency?: number;
  noInput?: boolean;
}

/** A detached `up`: run the graph in the data dir's supervisor (started if need be). */
export async function upThroughSupervisor(o: UpThroughOptions): Promise<number> {
  // a data dir that can never work (a file, /proc, read-only) is one clear line, before anything starts
  makePrivateDir(o.dataDir);
  makePrivateDir(dataPaths(o.dataDir).logs, 'log dir');
  const sock = await ensureSupervisor(o.dataDir);
  const req: UpRequest = {
    op: 'up',
    ...clientSide(o),
    ...(o.only ? { only: o.only } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  };
  return attach(sock, req, o);
}

export interface RestartThroughOptions extends AttachOptions {
  file: string;
  task: string;
  env: Record<string, string | undefined>;
  config?: unknown;
  noInput?: boolean;
}

/**
 * `restart <task>`: the stack's live supervisor stops the service (its stop signal and grace) and
 * starts it again (its needs reused while satisfied); the tasks that need it keep running.
 */
export async function restartThroughSupervisor(o: RestartThroughOptions): Promise<number> {
  const sock = await connectSupervisor(o.dataDir);
  if (!sock) {
    throw new UserError(
      `stigmer: no supervisor runs the stack in ${o.dataDir}, so there is nothing to restart.\nStart the stack with \`stigmer up\` (\`stigmer local start\` for the local stack); \`stigmer run ${o.task}\` reruns one step without it.`,
      EXIT.taskFailed,
    );
  }
  return attach(sock, { ...taskRequest(o), op: 'restart' } satisfies RestartRequest, o);
}

/** What every request about the stack's file carries: the file, and the client's side (cwd, terminal, environment). */
function clientSide(o: AttachOptions & { file: string; env: Record<string, string | undefined>; config?: unknown; noInput?: boolean }): Omit<UpRequest, 'op' | 'only' | 'concurrency'> {
  return {
    file: o.file,
    dataDir: o.dataDir,
    cwd: process.cwd(),
    noInput: !!o.noInput,
    canPrompt: canPrompt(o.noInput),
    output: (o.output ?? 'auto') as WireOutput,
    env: o.env,
    processEnv: { ...process.env },
    ...(o.config !== undefined ? { config: o.config } : {}),
  };
}

/** What a request naming one task of the stack carries: the task, the file, the client's side. */
function taskRequest(o: RestartThroughOptions): Omit<RestartRequest, 'op'> {
  return { task: o.task, ...clientSide(o) };
}

export interface RunThroughOptions extends RestartThroughOptions {
  noDeps?: boolean;
}

/**
 * `stigmer run <task>` on a stack whose supervisor runs: the supervisor reruns it (it is the one
 * writer of the state while it runs, and a service it starts is supervised); undefined when none
 * runs (the caller runs it in this process).
 */
export async function runThroughSupervisor(o: RunThroughOptions): Promise<number | undefined> {
  const sock = await connectSupervisor(o.dataDir);
  if (!sock) return undefined;
  const req: RunRequest = { ...taskRequest(o), op: 'run', ...(o.noDeps ? { noDeps: true } : {}) };
  return attach(sock, req, o);
}

/**
 * A supervisor that holds the data dir's life lock but does not listen: one starting (its CLI may
 * have been killed while it waited for it) or leaving. Wait (bounded) until it listens, or is gone.
 */
async function supervisorInTransit(dataDir: string): Promise<Socket | undefined> {
  for (let i = 0; i < 400 && liveHolder(supervisorLockPath(dataDir)); i++) {
    const s = await connectSupervisor(dataDir);
    if (s) return s;
    await sleep(25);
  }
  return undefined;
}

/**
 * `down` through the live supervisor; undefined when none runs (the caller undoes from the state).
 * A starting supervisor is waited for, so that nothing runs on after the down; one that closes
 * the connection without a word (it was leaving as the down came) is waited out.
 */
export async function downThroughSupervisor(o: AttachOptions & { quiet?: boolean }): Promise<number | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const sock = (await connectSupervisor(o.dataDir)) ?? (await supervisorInTransit(o.dataDir));
    if (!sock) return undefined;
    const code = await exchange(sock, { op: 'down', dataDir: o.dataDir, cwd: process.cwd(), output: (o.output ?? 'auto') as WireOutput, ...(o.quiet ? { quiet: true } : {}) }, o);
    if (code !== undefined) return code;
  }
  return undefined;
}

/**
 * `up --foreground` (and `local start --foreground`): the same up through the data dir's
 * supervisor as a detached one, then stay attached until the stack stops. Every service's output
 * is streamed, prefixed by task (its log, with the supervisor's `---` restart and health lines);
 * Ctrl-C asks the supervisor to undo everything (the down's view on stderr) and exits 130 (143
 * SIGTERM, 129 SIGHUP); a `down` from elsewhere ends the session with 0; a supervisor that died
 * (kill -9) is said, exit 1. `restart`, `run`, `status` and `down` work from another terminal
 * meanwhile, as on a detached stack.
 */
export async function upInForeground(o: UpThroughOptions): Promise<number> {
  makePrivateDir(o.dataDir);
  makePrivateDir(dataPaths(o.dataDir).logs, 'log dir');
  // Attached before the up: this CLI gone at any point (kill -9) takes the stack down with it.
  const sock = await ensureSupervisor(o.dataDir);
  sock.on('error', () => {});
  sock.write(encode({ op: 'attach', dataDir: o.dataDir, cwd: process.cwd() }));
  // A failed or refused up (undone by the supervisor): what ran before it stays, as after a detached up.
  const leave = (): void => void sock.end(encode({ op: 'detach' }));
  let code: number;
  try {
    // (the attach connection's messages wait, unread, until the session reads them)
    code = await upThroughSupervisor(o);
  } catch (err) {
    leave();
    throw err;
  }
  if (code === EXIT.ok && !o.app.signal.aborted) return stayAttached(o, sock);
  if (!o.app.signal.aborted) {
    leave();
    return code;
  }
  // Ctrl-C during the up: the run was undone; what the stack ran before it is undone too.
  sock.resume();
  const down = await teardown(o);
  sock.destroy();
  if (down !== EXIT.ok) return down;
  // (a Ctrl-C just as the up finished, before it reached the supervisor's run, left the up's 0: it is still 130)
  return code === EXIT.ok ? signalExitCode[o.app.interruptedBy() ?? 'SIGINT'] : code;
}

/** The services the stack records (what the session streams). */
function recordedServices(dataDir: string): string[] {
  const data = StateStore.read(dataPaths(dataDir).state);
  return Object.entries(data?.tasks ?? {})
    .filter(([, r]) => r.undo.some((u) => u.type === 'stop-process'))
    .map(([n]) => n);
}

async function stayAttached(o: AttachOptions, sock: Socket): Promise<number> {
  const { app } = o;
  // What the supervisor says when it leaves: why (err), then exit. Listened for before any await.
  let told: { code: number; leaving?: number } | undefined;
  const lost = new Promise<'lost'>((res) => {
    sock.on(
      'data',
      lineReader((v) => {
        const m = v as Message;
        if (m.t === 'err') process.stderr.write(`${m.text}\n`);
        else if (m.t === 'exit') told = { code: m.code, ...(m.leaving !== undefined ? { leaving: m.leaving } : {}) };
        else if (m.t === 'error') {
          process.stderr.write(`${m.message}\n`);
          told = { code: m.exitCode };
        }
      }),
    );
    // (a supervisor killed -9 may reset the connection at once: closed before this session listens)
    if (sock.destroyed) res('lost');
    else sock.once('close', () => res('lost'));
  });
  const services = recordedServices(o.dataDir);
  // Said at once, with the addresses onReady printed, not after a module load.
  process.stderr.write(`stigmer: ${services.length} service(s) running in the foreground; press Ctrl-C to stop them all\n`);
  const { followLogs } = await import('../engine/logs.js');
  const stopFollowing = new AbortController();
  const following = followLogs(o.dataDir, services, { signal: stopFollowing.signal });
  const interrupted = new Promise<'signal'>((res) => (app.signal.aborted ? res('signal') : app.signal.addEventListener('abort', () => res('signal'), { once: true })));
  const first = await Promise.race([lost, interrupted]);
  // From here on this session's own teardown speaks, not the attach connection.
  if (first === 'signal') sock.removeAllListeners('data').resume();
  stopFollowing.abort();
  await following;
  if (first === 'lost') {
    if (told?.leaving !== undefined) await gone(told.leaving);
    if (told) return told.code;
    const pid = StateStore.read(dataPaths(o.dataDir).state)?.supervisor?.pid;
    process.stderr.write(
      `stigmer: the supervisor of ${o.dataDir}${pid ? ` (pid ${pid})` : ''} died; the services it ran were stopped with it (\`stigmer status\` says when; \`stigmer up\` starts the stack again)${logTail(o.dataDir)}\n`,
    );
    return EXIT.taskFailed;
  }
  const code = await teardown(o);
  sock.destroy();
  return code === EXIT.ok ? signalExitCode[app.interruptedBy() ?? 'SIGINT'] : code;
}

/**
 * Ctrl-C in the foreground: undo everything, through the supervisor (else from the state file),
 * the down's view on stderr. The interrupt is this down's reason, not one to pass on: the
 * services get their stop signals and graces; the second Ctrl-C still kills every recorded group
 * (listenWithForce).
 */
async function teardown(o: AttachOptions): Promise<number> {
  const calm: App = { ...o.app, signal: new AbortController().signal };
  const down = { app: calm, dataDir: o.dataDir, ...(o.output ? { output: o.output } : {}), quiet: true };
  const io = { ...terminalIo(calm, o.output, true), view: (kind: ViewKind, tasks: RenderTask[]) => openView(kind, o.output, tasks, undefined, process.stderr) };
  return (await downThroughSupervisor({ ...down, downTo: process.stderr })) ?? (await (await import('../engine/drivers.js')).runDown({ ...down, io }));
}
