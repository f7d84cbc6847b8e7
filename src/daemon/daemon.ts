/**
 * The supervisor: `stigmer internal supervise --data-dir D`, one detached process per data dir,
 * started by a detached `up` / `local start`. It runs the engine (the same code path as the CLI,
 * src/engine/drivers.ts) and so is the parent of every service it starts; clients attach over
 * `<data-dir>/supervisor.sock` (src/supervisor/protocol.ts) and render what it streams.
 *
 *   start: take `supervisor.lock` (flock, for its whole life: one per data dir) -> listen on the
 *     socket (0600) -> say `ready` on descriptor 3 (the spawning CLI waits for it). Its spawning
 *     CLI gone (kill -9) before any request came: nobody will come, it leaves at once
 *   up:    run the graph for the client (supervised: services' output is piped to their log
 *          writers); the state records the supervisor (`supervisor`); once ready, watch the
 *          services (src/engine/supervise.ts: restart policies, liveness checks)
 *   run, restart: rerun one task for the client; the services it started are watched too
 *   down:  stop watching, then undo everything in reverse (a level in parallel), then exit
 *   attach: `up --foreground` stays connected; when the stack stops it is told why, then `exit`
 *          (its CLI streams the logs meanwhile); its connection closing first is a down
 *   idle:  nothing of the stack runs or is due to restart (a failed first up, every service gone,
 *          or given up on: crash-loop, policy no): exit
 *   SIGTERM/SIGINT/SIGHUP: as down (so is the loss of an attached foreground CLI)
 *
 * One writer of the state at a time. From its first request that runs the engine the supervisor
 * holds the data dir's run lock (`run.lock`) for as long as it lives, so a command that does not
 * go through the socket is refused, naming it (src/engine/lock.ts lockBusy). Requests run one at
 * a time; the watch writes the state between them: before a request it is paused (pending
 * restarts cancelled, one in flight awaited, its store flushed and frozen), the request opens the
 * state afresh, and after it the watch resumes on the request's store with the services it left.
 *
 * Services get the parent-death signal (src/process/parent-death.ts): if the supervisor dies,
 * even by kill -9, the kernel stops them. The state's `supervisor` record is written with every
 * state write of the supervisor's runs (`lastSeen`: that write's time).
 */
import { chmodSync, closeSync, fstatSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InterruptSignal, App } from '../model/app.js';
import { signalExitCode } from '../model/app.js';
import type { KindRegistry, PromptOptions } from '../model/kind.js';
import { TaskError } from '../model/kind.js';
import { fail } from '../model/failure.js';
import type { Renderer } from '../render/types.js';
import { runDown, runTask, runUp, type RunIo, type ViewKind } from '../engine/drivers.js';
import { loadTasksFile } from '../engine/load.js';
import { didYouMean } from '../util/diagnostics.js';
import { acquireLock, lockBusy, SUPERVISOR_HOLDER, type Lock } from '../engine/lock.js';
import { superviseRun, type HostSupervisor } from '../engine/supervise.js';
import type { RunOutcome, ServiceRun } from '../engine/run.js';
import { StateStore } from '../engine/state.js';
import { warmStateValidator, type SupervisorRecord } from '../engine/state-file.js';
import { undoRecorded } from '../engine/rollback.js';
import { openState } from '../engine/open-state.js';
import { isAlive, readProcStat } from '../process/identity.js';
import { setParentDeathSignal } from '../process/parent-death.js';
import { INSTANCE_VAR, STACK_VAR } from '../process/sweep.js';
import { appendEvent } from '../supervisor/events.js';
import { EXIT, UserError } from '../util/errors.js';
import { dataPaths } from '../util/paths.js';
import { makePrivateDir } from '../util/private-dir.js';
import { encode, lineReader, shortSocketDir, socketPath, SPAWNER_VAR, supervisorLockPath, type DownRequest, type FollowUp, type Message, type Request } from './protocol.js';

export interface SuperviseOptions {
  dataDir: string;
  /** the task kinds (src/commands/kinds.ts) */
  kinds: KindRegistry;
  /** the stigmer config, for a tasks file that reads it when the client did not resolve it */
  loadConfig: () => Promise<unknown>;
  /** register the secrets of a request's environment, so everything this process prints masks them */
  registerSecrets: (env: Record<string, string | undefined>) => void;
}

/** How often "is anything of the stack left?" is asked. */
const IDLE_MS = 1_000;

/**
 * The CLI that spawned this supervisor (taken out of the environment: the services never see
 * it), or undefined when it was started otherwise (by hand).
 */
function takeSpawner(): number | undefined {
  const pid = Number(process.env[SPAWNER_VAR]);
  delete process.env[SPAWNER_VAR];
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The descriptor the spawning CLI reads `ready` (or why not) from. */
function tell(word: string): void {
  try {
    fstatSync(3);
  } catch {
    return; // started by hand: nobody waits
  }
  try {
    writeSync(3, `${word}\n`);
    closeSync(3);
  } catch {
    // the CLI went away meanwhile
  }
}

const canConnect = (path: string): Promise<boolean> =>
  new Promise((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });

/** A run's App: aborted by the client's interrupt (or the supervisor's own signal), never exits the process. */
function runApp(): App & { abort(sig: InterruptSignal): void } {
  const controller = new AbortController();
  let first: InterruptSignal | undefined;
  const abort = (sig: InterruptSignal): void => {
    if (first) return;
    first = sig;
    controller.abort(sig);
  };
  return { signal: controller.signal, exitCode: EXIT.ok, interruptedBy: () => first, onForce: () => {}, listen: () => {}, interrupt: abort, abort };
}

/** This process's children that have not exited (zombies not counted). */
function liveChildren(): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      const text = readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim();
      for (const pid of text ? text.split(/\s+/).map(Number) : []) {
        const state = readProcStat(pid)?.state;
        if (state && state !== 'Z' && state !== 'X') out.push(pid);
      }
    }
  } catch {
    // no /proc: nothing to wait for
  }
  return out;
}

/** What the stack still runs: a recorded service that is alive. */
function anythingRunning(dataDir: string): boolean {
  const data = StateStore.read(dataPaths(dataDir).state);
  return Object.values(data?.tasks ?? {}).some((r) => r.undo.some((u) => u.type === 'stop-process' && isAlive(u)));
}

export async function runSupervisor(o: SuperviseOptions): Promise<number> {
  const { dataDir } = o;
  const paths = dataPaths(dataDir);
  // Its parent while the spawning CLI lives; once that CLI is gone (kill -9 while it waited for
  // `ready`), this process is reparented and nobody will come to it: see orphanWatch.
  const spawner = takeSpawner();
  const orphaned = (): boolean => spawner !== undefined && process.ppid !== spawner;
  if (orphaned()) return EXIT.ok;
  try {
    makePrivateDir(dataDir);
  } catch (err) {
    tell(`error ${(err as Error).message}`);
    return EXIT.usage;
  }
  // One supervisor per data dir: a second one finds the first listening and leaves it the clients.
  const sock = socketPath(dataDir);
  let life: Lock | undefined;
  for (let attempt = 0; !life; attempt++) {
    try {
      life = await acquireLock(supervisorLockPath(dataDir), 'stigmer supervisor');
    } catch (err) {
      if (await canConnect(sock)) {
        tell('busy');
        return EXIT.ok;
      }
      if (attempt >= 100) {
        tell(`error ${(err as Error).message}`);
        return EXIT.taskFailed;
      }
      await sleep(50); // the previous one is exiting
    }
  }
  // Spawned by a CLI whose request (an up) runs the engine: its run lock is taken meanwhile, while
  // this process listens and the CLI connects (a helper start fewer on the path to the first task).
  // Not when started by hand (it would refuse a run nobody asked it for); busy: taken at the request.
  let early: Promise<Lock | undefined> | undefined = spawner === undefined ? undefined : acquireLock(paths.lock, SUPERVISOR_HOLDER).catch(() => undefined);
  if (dirname(sock) === shortSocketDir()) makePrivateDir(shortSocketDir(), 'socket dir');
  rmSync(sock, { force: true });
  const server = createServer();
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(sock, () => res());
    });
  } catch (err) {
    void early?.then((l) => l?.release());
    life.release();
    tell(`error stigmer: cannot listen on ${sock}: ${(err as Error).message}`);
    return EXIT.taskFailed;
  } finally {
    process.umask(umask);
  }
  chmodSync(sock, 0o600);
  setParentDeathSignal('SIGTERM');
  for (const v of [STACK_VAR, INSTANCE_VAR]) delete process.env[v];

  const startedAt = new Date().toISOString();
  // `stigmer events` shows the supervisor's own life too (sync appends: also from the exit handler).
  appendEvent(dataDir, { task: null, type: 'supervisor-started', pid: process.pid, at: startedAt });
  process.once('exit', () => appendEvent(dataDir, { task: null, type: 'supervisor-stopped', pid: process.pid }));
  const me = (): SupervisorRecord => ({ pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0, startedAt, lastSeen: new Date().toISOString(), socket: sock });
  const recordIn = (state: StateStore): void => {
    state.data.supervisor = me();
    state.touch(false);
  };

  let busy = 0;
  /** open client connections */
  let clients = 0;
  /** the lock helpers of this process's last locks: a leaving supervisor waits until they are gone */
  const helpers: Promise<void>[] = [];
  let served = false;
  let exiting = false;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };
  let current: Run | undefined;
  const ownEnv = { ...process.env };
  /** the data dir's run lock, held from the first request that runs the engine until exit */
  let held: Lock | undefined;
  /** the watch over the stack's services, once an up made it ready */
  let host: HostSupervisor | undefined;
  /** the foreground CLIs attached to the stack (`up --foreground` after its up): told when it stops */
  const attached = new Set<{ send: (m: Message) => void; done: () => Promise<void> }>();
  /** a down is under way (a request, or this process's own signal): nothing else stops the stack */
  let downing = false;
  /** why the stack stopped, for the attached CLIs (none: nothing of it runs any more) */
  let stoppedBy: string | undefined;

  /**
   * The watch holds still, its store flushed and writing no more: `pause` before a request that
   * writes the state (resumed after it, see watchAfter); `stop` for good (down, the supervisor's
   * own signal, idle): no restart pending or in flight behind the undo.
   */
  const haltWatch = async (how: 'pause' | 'stop'): Promise<void> => {
    if (!host) return;
    await (how === 'pause' ? host.pause() : host.stop());
    host.state.save();
    host.state.freeze();
  };
  const stopWatch = (): Promise<void> => haltWatch('stop');
  /**
   * After a request: watch again on its store. What it left running is watched (a service it
   * started again as its new instance); what it ran and stopped is let go; the rest goes on.
   */
  const watchAfter = (opened: StateStore | undefined, over: { outcome: RunOutcome } | undefined): void => {
    const ok = over?.outcome.ok === true;
    const services: ReadonlyMap<string, ServiceRun> = ok ? over.outcome.services : new Map();
    const touched = new Set<string>(over ? (ok ? over.outcome.status.keys() : over.outcome.changed) : []);
    if (host) host.resume(opened ?? new StateStore(paths.state), services, touched);
    else if (opened && services.size) host = superviseRun({ dataDir, state: opened, services });
  };

  /**
   * Out of the data dir's way: no new client, the socket gone, the next supervisor free to start,
   * and no lock helper of this one left (a script's next step finds nothing of it).
   */
  const leave = async (): Promise<void> => {
    exiting = true;
    clearInterval(idle);
    clearInterval(orphanWatch);
    server.close();
    rmSync(sock, { force: true });
    await settleEarly(); // (its CLI died before its request)
    life!.release();
    held?.release();
    // A foreground CLI ends with the stack: 0 when it was stopped on purpose, 1 when nothing of it runs any more.
    const farewell = stoppedBy
      ? `stigmer: the stack was stopped (${stoppedBy})`
      : 'stigmer: nothing of the stack runs any more (every service exited or was given up on; `stigmer status` says why)';
    for (const a of attached) {
      a.send({ t: 'err', text: farewell });
      a.send({ t: 'exit', code: stoppedBy ? EXIT.ok : EXIT.taskFailed, leaving: process.pid });
    }
    const told = Promise.all([...attached].map((a) => a.done()));
    await Promise.race([Promise.all([life!.gone, ...helpers, told]), sleep(2_000)]);
    // the helpers of the run's own locks (killed on release) too: nothing of this process stays
    for (let i = 0; i < 400 && liveChildren().length > 0; i++) await sleep(5);
  };

  /** The run lock taken early (see `early`), once it settled, is `held` from now on. */
  const settleEarly = async (): Promise<void> => {
    if (!early) return;
    const taken = await early;
    early = undefined;
    if (!taken) return;
    if (held) return taken.release();
    held = taken;
    helpers.push(taken.gone);
  };

  /** Take this supervisor's record out of the state (it is exiting with nothing left to run). */
  const forget = async (): Promise<void> => {
    let lock: Lock | undefined;
    try {
      await settleEarly();
      if (!held) {
        lock = await acquireLock(paths.lock, SUPERVISOR_HOLDER);
        helpers.push(lock.gone);
      }
      const loaded = new StateStore(paths.state);
      if (loaded.data.supervisor?.pid === process.pid) {
        delete loaded.data.supervisor;
        loaded.touch(true);
      }
    } catch {
      // a run holds the lock: it records no supervisor of its own, and status checks the pid
    } finally {
      lock?.release();
    }
  };

  /**
   * One request. The last message (exit or error) says whether this supervisor is leaving (a down,
   * or nothing of the stack runs any more): it leaves the data dir first (record, socket, lock), so
   * the client, which waits for this pid to end, finds the next command free to start a new one.
   */
  const handle = async (req: Request, send: (m: Message) => void, follow: FollowUps, done: (leaving?: boolean) => Promise<void>): Promise<void> => {
    if (req.op === 'status') {
      send({ t: 'status', pid: process.pid, startedAt, busy: busy > 0 });
      return done();
    }
    if (req.op === 'health') {
      // a check, not a run: answered at once, busy or not (see HealthRequest)
      const { GrpcChannel } = await import('../process/grpc-client.js');
      const channel = new GrpcChannel({ address: String(req.address) });
      const timeoutMs = Math.min(Math.max(Number(req.timeoutMs) || 0, 1), 10_000);
      try {
        send({ t: 'health', answer: await channel.health(String(req.service), { signal: AbortSignal.timeout(timeoutMs + 200), timeoutMs }) });
      } finally {
        channel.close();
      }
      return done();
    }
    const refused: Message = { t: 'error', message: 'stigmer: the supervisor of this stack is stopping; run the command again', exitCode: EXIT.taskFailed };
    if (exiting) {
      send(refused);
      return done();
    }
    if (req.op === 'attach') {
      // Stays open until this supervisor leaves (see leave); a CLI gone first takes the stack down.
      const entry = { send, done };
      attached.add(entry);
      follow.onClose = () => {
        attached.delete(entry);
        stopAll('its foreground CLI went away', EXIT.ok);
      };
      follow.onDetach = () => {
        attached.delete(entry);
        delete follow.onClose;
      };
      return;
    }
    if (req.op === 'down') {
      downing = true;
      stoppedBy ??= 'by `stigmer down`';
    }
    if (req.op === 'up' && busy > 0) {
      // One run at a time, as in the CLI: refused at once, naming the run in progress.
      const holder = { pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0, command: 'stigmer up' };
      const refusal = lockBusy(dataPaths(req.dataDir).lock, holder);
      send({ t: 'error', message: refusal.message, exitCode: refusal.exitCode });
      return done();
    }
    // counted from here to the end: the timers and a concurrent request see it at once
    busy++;
    const running = current;
    const last =
      req.op === 'down' && running
        ? await takeOver(running, { dataDir: resolve(req.cwd, req.dataDir), output: req.output, ...(req.quiet ? { quiet: true } : {}) }, send, follow).then((code): Message => {
            exiting = true;
            return { t: 'exit', code };
          })
        : await perform(req, send, follow, refused);
    busy--;
    const downed = exiting;
    const leaving = downed || (busy === 0 && !host?.active && !anythingRunning(dataDir));
    if (leaving) {
      exiting = true;
      if (!downed) {
        await stopWatch();
        await forget();
      }
      await leave();
    }
    send(leaving && (last.t === 'exit' || last.t === 'error') ? { ...last, leaving: process.pid } : last);
    await done(leaving);
    if (leaving) process.exit(EXIT.ok);
    // idle now: what the next `down` reads the state with is loaded before it comes
    setImmediate(warmStateValidator);
  };

  /**
   * A down while a run is in progress (its CLI killed, or still attached): the down takes the
   * state file over from the run (whose store writes no more, and whose client hears no more),
   * undoes everything it records in reverse, in its own view; then the run is aborted and undoes
   * in memory whatever it started meanwhile.
   */
  const takeOver = async (run: Run, down: { dataDir: string; output: DownRequest['output']; quiet?: boolean }, send: (m: Message) => void, follow: FollowUps): Promise<number> => {
    run.send({ t: 'err', text: 'stigmer: `stigmer down` is stopping the stack' });
    run.handOver = true;
    run.state?.freeze();
    // the watch was paused for the run; now for good: no restart behind the undo
    await stopWatch();
    const app = runApp();
    follow.onInterrupt = (sig) => app.abort(sig);
    const code = await runDown({ ...down, app, heldLock: true, io: remoteIo(send, follow, app, false) });
    run.app.abort('SIGTERM');
    await run.finished;
    return code;
  };

  const perform = (req: Request, send: (m: Message) => void, follow: FollowUps, refused: Message): Promise<Message> =>
    serial(async (): Promise<Message> => {
      if (exiting) return refused;
      const app = runApp();
      const run: Run = { app, handOver: false, send, finished: Promise.resolve() };
      let finish = (): void => {};
      run.finished = new Promise<void>((res) => (finish = res));
      current = run;
      follow.onInterrupt = (sig) => app.abort(sig);
      // what a run sends once a down took it over goes nowhere (its own client was told)
      const runSend = (m: Message): void => void (run.handOver || send(m));
      try {
        const io = remoteIo(runSend, follow, app, req.op === 'up' ? req.canPrompt : false);
        inDirectory((req as { cwd: string }).cwd);
        const named = req.op !== 'status' && req.op !== 'health' ? sameDir(req.dataDir, dataDir) : undefined;
        if (named === undefined) return { t: 'error', message: `stigmer: this supervisor runs ${dataDir}, not ${(req as { dataDir?: string }).dataDir}`, exitCode: EXIT.usage };
        /**
         * A request that runs the engine: under the lock this supervisor holds from now on, with
         * the watch paused; it writes the state with its own store, which the watch resumes on.
         */
        const engine = async (go: (common: { heldLock: true; onState: (s: StateStore) => void; onOutcome: (s: StateStore, outcome: RunOutcome) => void }) => Promise<number>): Promise<Message> => {
          await settleEarly();
          if (!held) {
            held = await acquireLock(paths.lock, SUPERVISOR_HOLDER);
            helpers.push(held.gone);
          }
          await haltWatch('pause');
          let opened: StateStore | undefined;
          let over: { outcome: RunOutcome } | undefined;
          try {
            if (run.handOver) return refused;
            const code = await go({
              heldLock: true,
              onState: (state) => {
                recordIn(state);
                run.state = state;
                opened = state;
                if (run.handOver) state.freeze(); // a down took the file over meanwhile
              },
              onOutcome: (_state, outcome) => (over = { outcome }),
            });
            return { t: 'exit', code };
          } finally {
            if (!exiting && !run.handOver) watchAfter(opened, over);
          }
        };
        if (req.op === 'up') {
          useEnvironment(req.processEnv);
          o.registerSecrets(req.env);
          return await engine(async (common) => {
            await stopWhatADeadSupervisorLeft(named, io.err);
            return runUp({
              file: req.file,
              kinds: o.kinds,
              dataDir: named,
              config: req.config !== undefined ? () => Promise.resolve(req.config) : o.loadConfig,
              env: req.env,
              app,
              output: req.output,
              noInput: req.noInput,
              supervised: true,
              ...(req.only ? { only: req.only } : {}),
              ...(req.concurrency ? { concurrency: req.concurrency } : {}),
              io,
              ...common,
            });
          });
        }
        if (req.op === 'restart' || req.op === 'run') {
          useEnvironment(req.processEnv);
          o.registerSecrets(req.env);
          const config = req.config !== undefined ? () => Promise.resolve(req.config) : o.loadConfig;
          if (req.op === 'restart') await checkRestartable(named, req.file, req.task, { kinds: o.kinds, config });
          return await engine((common) =>
            runTask({
              file: req.file,
              kinds: o.kinds,
              dataDir: named,
              config,
              env: req.env,
              app,
              output: req.output,
              noInput: req.noInput,
              task: req.task,
              supervised: true,
              ...(req.op === 'run' && req.noDeps ? { noDeps: true } : {}),
              io,
              ...common,
            }),
          );
        }
        if (req.op === 'down') {
          await stopWatch();
          await settleEarly();
          let undone: StateStore | undefined;
          const code = await runDown({ dataDir: named, app, output: req.output, ...(req.quiet ? { quiet: true } : {}), io, heldLock: !!held, onState: (s) => (undone = s) });
          if (host && undone && code === EXIT.ok) {
            // a `stopped` event for each service it watched (their records are gone with the stack)
            host.writeTo(undone);
            host.stopped();
          }
          exiting = true;
          return { t: 'exit', code };
        }
        return { t: 'error', message: `stigmer: the supervisor does not know "${(req as { op: string }).op}" (an older or newer stigmer?)`, exitCode: EXIT.usage };
      } catch (err) {
        if (err instanceof UserError) return { t: 'error', message: err.message, exitCode: err.exitCode };
        return { t: 'error', message: `stigmer: internal error in the supervisor: ${(err as Error)?.stack ?? String(err)}`, exitCode: 70 };
      } finally {
        useEnvironment(ownEnv);
        inDirectory(dataDir);
        current = undefined;
        served = true;
        finish();
      }
    });

  server.on('connection', (conn) => {
    clients++;
    const follow: FollowUps = { answers: new Map(), closed: false };
    const send = (m: Message): void => {
      if (!follow.closed && !conn.destroyed) conn.write(encode(m));
    };
    let request: Request | undefined;
    conn.on('data', lineReader((value) => {
      if (!request) {
        request = value as Request;
        void handle(request, send, follow, (leaving) => endConnection(conn, leaving));
        return;
      }
      const f = value as FollowUp;
      if (f.op === 'interrupt') follow.onInterrupt?.(f.signal);
      else if (f.op === 'answer') follow.answers.get(f.id)?.(f);
      else if (f.op === 'detach') follow.onDetach?.();
    }));
    // The client went away (Ctrl-C twice, kill -9): the run goes on; a prompt nobody can answer fails it.
    conn.on('close', () => {
      clients--;
      follow.closed = true;
      for (const answer of follow.answers.values()) answer({ op: 'answer', id: -1, interrupted: true });
      follow.onClose?.();
    });
    conn.on('error', () => {});
  });

  /** Stop the stack (as a down, in its own quiet view), then exit with `code`. */
  const stopAll = (why: string, code: number): void => {
    if (exiting || downing) return;
    downing = true;
    stoppedBy ??= why;
    const quiet = { answers: new Map(), closed: true };
    const down = { dataDir, output: 'plain' as const, quiet: true };
    const app = runApp();
    const stopping = current
      ? takeOver(current, down, () => {}, quiet)
      : serial(async () => {
          await stopWatch();
          await settleEarly();
          return runDown({ ...down, app, heldLock: !!held, io: remoteIo(() => {}, quiet, app, false) });
        });
    void stopping
      .catch(() => {})
      .then(leave)
      .finally(() => process.exit(code));
  };
  // The supervisor's own signal: stop the stack, then exit.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => stopAll(`by ${sig} to the supervisor`, signalExitCode[sig]));

  const startedMs = Date.now();
  const idle = setInterval(() => {
    // (a client connected has a request on its way)
    if (busy > 0 || clients > 0 || exiting) return;
    // Nobody came (started by hand, or its CLI died after its connection closed): give up after a while.
    if (!served && Date.now() - startedMs < 30_000) return;
    // A service between restarts keeps it; one given up on (crash-loop, policy no) does not.
    if (host?.active || anythingRunning(dataDir)) return;
    exiting = true;
    void stopWatch()
      .then(forget)
      .then(leave)
      .finally(() => process.exit(EXIT.ok));
  }, IDLE_MS);
  /**
   * Until its first request is served: the spawning CLI gone (kill -9 at any point before its
   * request) with no client connected leaves a supervisor nobody will come to, which nothing
   * started yet: it leaves at once (a `down` meanwhile finds it by its lock, src/daemon/client.ts).
   */
  const orphanWatch = setInterval(() => {
    if (served) return clearInterval(orphanWatch);
    if (exiting || busy > 0 || clients > 0 || !orphaned()) return;
    exiting = true;
    void leave().finally(() => process.exit(EXIT.ok));
  }, 50);
  tell('ready');
  return new Promise<number>(() => {});
}

/** End a client's connection and wait (bounded) until it is closed: the last messages are delivered. */
function endConnection(conn: Socket, leaving = false): Promise<void> {
  return new Promise((res) => {
    if (conn.destroyed) return res();
    const timer = setTimeout(() => {
      conn.destroy();
      res();
    }, 1_000);
    const ended = (): void => {
      clearTimeout(timer);
      res();
    };
    conn.once('close', ended);
    // A supervisor that leaves waits for its last words to reach the kernel, not for the client
    // to close its side too (a round trip, ~3 ms): the client reads them after this process is
    // gone as well, and it waits for this process to end anyway.
    conn.end(leaving ? ended : undefined);
  });
}

/** A run in progress; `handOver`: a down took it over (see takeOver). */
interface Run {
  app: App & { abort(sig: InterruptSignal): void };
  handOver: boolean;
  /** to its client */
  send: (m: Message) => void;
  /** its state, once open under the lock */
  state?: StateStore;
  finished: Promise<void>;
}

interface FollowUps {
  answers: Map<number, (f: FollowUp & { op: 'answer' }) => void>;
  onInterrupt?: (sig: InterruptSignal) => void;
  /** the client closed the connection */
  onClose?: () => void;
  /** an attached client leaves without taking the stack down */
  onDetach?: () => void;
  closed: boolean;
}

/** The client's name for the data dir, when it names this one (same device and inode), else undefined. */
function sameDir(named: string, own: string): string | undefined {
  try {
    const [a, b] = [statSync(named), statSync(own)];
    return a.dev === b.dev && a.ino === b.ino ? named : undefined;
  } catch {
    return undefined;
  }
}

/** Work from the client's directory for its request (requests run one at a time). */
function inDirectory(dir: string): void {
  try {
    process.chdir(dir);
  } catch {
    // gone meanwhile: stay where we are
  }
}

/** Replace this process's environment (the services a request starts inherit its client's). */
function useEnvironment(env: Record<string, string | undefined>): void {
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) if (v !== undefined && k !== STACK_VAR && k !== INSTANCE_VAR) process.env[k] = v;
}

/** The run's terminal is the client's: every view, line and prompt goes over the socket. */
function remoteIo(send: (m: Message) => void, follow: FollowUps, app: App, canPrompt: boolean): RunIo {
  let ids = 0;
  let asks = 0;
  const ask = async (task: string, opts: PromptOptions, view?: number): Promise<string> => {
    if (follow.closed) throw new TaskError(fail.aborted('nobody is attached to answer the prompt'));
    const id = ++asks;
    const answer = await new Promise<FollowUp & { op: 'answer' }>((res) => {
      follow.answers.set(id, res);
      send({ t: 'ask', id, task, opts: { message: opts.message, ...(opts.mask ? { mask: true } : {}) }, ...(view !== undefined ? { view } : {}) });
    });
    follow.answers.delete(id);
    if (answer.interrupted || typeof answer.value !== 'string') {
      app.interrupt('SIGINT');
      throw new TaskError(fail.aborted('SIGINT'));
    }
    return answer.value;
  };
  return {
    err: (text) => send({ t: 'err', text }),
    out: (text) => send({ t: 'out', text }),
    view: (kind: ViewKind, tasks) => {
      const id = ++ids;
      send({ t: 'view', id, kind, tasks });
      const r: Renderer = {
        event: (ev) => send({ t: 'ev', id, ev }),
        prompt: (task, opts) => ask(task, opts, id),
        end: () => {
          send({ t: 'end', id });
          return Promise.resolve();
        },
      };
      return Promise.resolve(r);
    },
    canPrompt,
    ask: (opts) => ask('', opts),
    ready: (outcome) => send({ t: 'ready', outputs: [...outcome.outputs.entries()] }),
  };
}

/**
 * The state names a supervisor that died (kill -9, OOM): the kernel stopped its services, but one
 * that ignores the parent-death signal (or a system without setpriv) may still run, with nobody
 * reading its output. Stop what the dead one's records still hold, so this up starts them again
 * under this supervisor.
 */
async function stopWhatADeadSupervisorLeft(dataDir: string, say: (line: string) => void): Promise<void> {
  const paths = dataPaths(dataDir);
  const prev = StateStore.read(paths.state)?.supervisor;
  if (!prev || prev.pid === process.pid || isAlive(prev)) return;
  // (the caller holds the data dir's lock)
  const { state } = openState(dataDir, say);
  const services = new Set(Object.entries(state.tasks).filter(([, r]) => r.undo.some((u) => u.type === 'stop-process')).map(([n]) => n));
  const alive = [...services].filter((n) => state.record(n)!.undo.some((u) => u.type === 'stop-process' && isAlive(u)));
  say(`stigmer: the supervisor of this stack (pid ${prev.pid}) died (last seen ${prev.lastSeen}); ${alive.length ? `stopping what it left (${alive.join(', ')}) and ` : ''}starting the stack again`);
  await undoRecorded(state, { only: services, emit: () => {} });
  delete state.data.supervisor;
  state.touch(true);
}

/**
 * `restart <task>` restarts a service of the running stack: a task of the file (else a usage error
 * with did-you-mean) that the state records as a process (a one-shot is rerun by `stigmer run`).
 */
async function checkRestartable(dataDir: string, file: string, task: string, o: { kinds: KindRegistry; config: () => Promise<unknown> }): Promise<void> {
  const loaded = await loadTasksFile(file, o);
  if (!loaded.tasks.has(task)) throw new UserError(`stigmer: no task "${task}" in ${loaded.displayPath}${didYouMean(task, loaded.tasks.keys())}`, EXIT.usage);
  const rec = StateStore.read(dataPaths(dataDir).state)?.tasks[task];
  if (!rec?.undo.some((u) => u.type === 'stop-process')) {
    throw new UserError(`stigmer: ${task} is not a service this stack runs, so there is nothing to restart (\`stigmer up\` starts the stack; \`stigmer run ${task}\` reruns a step)`, EXIT.taskFailed);
  }
}

