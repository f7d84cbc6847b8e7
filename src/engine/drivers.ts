/**
 * What the commands do, on any tasks file: up, down, run one task. Each returns the exit code.
 * (status, logs and graph live in src/engine/inspect.ts: they never take the lock.)
 *
 *   load + check the file (exit 2) -> lock the data dir -> run the graph with a renderer
 *     -> ok: return (services keep running; in the supervisor, which watches them: src/daemon/)
 *     -> failed / interrupted: undo what this run started, in reverse, report, exit 1 / 129-143
 */
import { signalExitCode, type App } from '../model/app.js';
import { didYouMean } from '../util/diagnostics.js';
import { runGraph, type RunOutcome } from './run.js';
import type { EngineEvent } from '../model/event.js';
import { EXIT, UserError } from '../util/errors.js';
import { describeFailure, fail, type Failure } from '../model/failure.js';
import { TaskError, type KindRegistry, type PromptOptions } from '../model/kind.js';
import { buildGraph, type Graph } from './graph.js';
import type { TasksFile } from './load.js';
import { acquireLock, LockUnwritable, type Lock } from './lock.js';
import { openState, StateUnreadable } from './open-state.js';
import { makePrivateDir } from '../util/private-dir.js';
import { mask } from '../util/mask.js';
import { dataPaths } from '../util/paths.js';
import { undoRecorded } from './rollback.js';
import type { Renderer, OutputMode, RenderTask } from '../render/types.js';
import { StateStore } from './state.js';
import { recordStack } from './stacks.js';
import { describeFsError } from '../util/fs-error.js';
import { askOnTerminal, canPrompt, listenWithForce, openView, terminalIo, type RunIo, type ViewKind } from './terminal.js';
import { nothingToStop, nothingToStopLine, stopLeftovers, type Undone } from './leftovers.js';

export { askOnTerminal, canPrompt, listenWithForce, openView, terminalIo, type RunIo, type ViewKind };

export interface CommonOptions {
  dataDir: string;
  app: App;
  output?: OutputMode;
  /**
   * Where the run's output goes and how it asks (default: this process's terminal). The
   * supervisor runs the engine with an `io` that forwards all of it to the attached client.
   */
  io?: RunIo;
  /** called with the state once it is open under the lock (the supervisor records itself in it) */
  onState?: (state: StateStore) => void;
  /**
   * The caller holds the data dir's lock (the supervisor, for as long as it runs a stack, or a
   * `down` taking over a run of its own): the command takes none.
   */
  heldLock?: boolean;
  /**
   * Called once the run is over (ready, or failed and undone), with its state and outcome: the
   * supervisor watches the services it left running.
   */
  onOutcome?: (state: StateStore, outcome: RunOutcome) => void;
}

export interface UpOptions extends CommonOptions {
  file: string;
  /** the task kinds the file may use (src/commands/kinds.ts) */
  kinds: KindRegistry;
  /**
   * The resolved stigmer config, for `${{ config.* }}`: asked for only when the tasks file reads it
   * (call it as often as you like; the caller loads it once).
   */
  config: () => Promise<unknown>;
  /** the environment for `${{ env.* }}` (real environment over .env) */
  env: Record<string, string | undefined>;
  /** the process running the engine stays after ready (the supervisor): services are supervised */
  supervised?: boolean;
  only?: string[];
  noInput?: boolean;
  concurrency?: number;
  /** called once everything is ready, with every task's outputs */
  onReady?: (outcome: RunOutcome) => void;
}

export interface RunTaskOptions extends Omit<UpOptions, 'only'> {
  task: string;
  noDeps?: boolean;
}

/** The renderer for this run: json when asked, listr2 on a terminal, plain lines otherwise. */
export async function pickRenderer(mode: OutputMode | undefined, graph: Graph): Promise<Renderer> {
  return openView('run', mode, renderTasks(graph));
}

const renderTasks = (graph: Graph): RenderTask[] => graph.order.map((n) => ({ name: n, needs: graph.nodes.get(n)!.needs }));


/** Print what failed, with its log tail and hint, on stderr. */
export function reportFailures(outcome: RunOutcome, failures: Map<string, Failure>, err: (line: string) => void = (line) => void process.stderr.write(`${line}\n`)): void {
  for (const name of outcome.failed) {
    const failure = failures.get(name);
    if (!failure) continue;
    const f = describeFailure(failure);
    const lines = [`stigmer: ${name} failed: ${f.message}`];
    if ('logTail' in failure && failure.logTail?.length) lines.push('  last lines of its log:', ...failure.logTail.map((l) => `    ${l}`));
    if ('logFile' in failure && failure.logFile) lines.push(`  full log: ${failure.logFile}`);
    if (f.hint) lines.push(`  hint: ${f.hint}`);
    // Only here, and only with STIGMER_DEBUG=1: never in a task line, an event or the state.
    if (failure.reason === 'internal-error' && failure.stack) lines.push(failure.stack);
    err(mask(lines.join('\n')));
  }
  for (const name of outcome.warnings) {
    const failure = failures.get(name);
    if (!failure) continue;
    const f = describeFailure(failure);
    err(mask(`stigmer: warning: ${name}: ${f.message}${f.hint ? `\n  hint: ${f.hint}` : ''}`));
  }
}


interface Execution {
  graph: Graph;
  file: TasksFile;
  force?: Set<string>;
  useRecorded?: Set<string>;
}

async function execute(o: UpOptions, x: Execution): Promise<number> {
  const { app } = o;
  const io = o.io ?? terminalIo(app, o.output, o.noInput, o.onReady);
  listenWithForce(app, o.dataDir);
  // a data dir that can never work (a file, /proc, read-only) is one clear line, before the lock
  makePrivateDir(o.dataDir);
  makePrivateDir(dataPaths(o.dataDir).logs, 'log dir');
  const lock = o.heldLock ? undefined : await acquireLock(dataPaths(o.dataDir).lock, 'stigmer up');
  app.onForce(() => lock?.release());
  try {
    const { state } = openState(o.dataDir, io.err, x.file);
    o.onState?.(state);
    state.reserve();
    try {
      recordStack(o.dataDir, x.file.path);
    } catch (err) {
      // Only `stigmer ls` needs it: a full disk must not stop the run here (the state write will say).
      io.err(`stigmer: warning: cannot record the stack for \`stigmer ls\`: ${describeFsError(err)}`);
    }
    // What a killed run left without a record would hold ports and files this run needs.
    const leftovers = await stopLeftovers(o.dataDir, Object.values(state.tasks), (line) => o.output !== 'json' && io.err(`stigmer: ${line}`));
    if (leftovers.survived.length) return EXIT.taskFailed;
    const failures = new Map<string, Failure>();
    const prompting = io.canPrompt;
    const common = {
      kinds: o.kinds,
      baseDir: x.file.dir,
      dataDir: o.dataDir,
      state,
      config: x.file.usesConfig ? await o.config() : undefined,
      env: o.env,
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      signal: app.signal,
      ...(x.useRecorded ? { useRecorded: x.useRecorded } : {}),
      canPrompt: prompting,
      ...(o.noInput ? { noInput: true } : {}),
    };
    // Prompts are asked before the view starts (on the bare terminal); nothing asks twice.
    const { preflight } = await import('./preflight.js');
    const ask = (opts: PromptOptions): Promise<string> => io.ask(opts);
    const pre = await preflight({ ...common, ...(prompting ? { prompt: (_task: string, opts: PromptOptions) => ask(opts) } : {}) }, x.file, x.graph);
    if (pre.interrupted) return signalExitCode[app.interruptedBy() ?? 'SIGINT'];
    const renderer = await io.view('run', renderTasks(pre.graph));
    const emit = (ev: EngineEvent): void => {
      if (ev.type === 'failed') failures.set(ev.task, ev.failure);
      renderer.event(ev);
    };
    const outcome = await runGraph({
      ...common,
      graph: pre.graph,
      ...(x.force ? { force: x.force } : {}),
      ...(prompting ? { prompt: async (task: string, opts: PromptOptions) => pre.answered(task, opts) ?? (renderer.prompt ? renderer.prompt(task, opts) : ask(opts)) } : {}),
      emit,
      // The supervisor stays: it reads the services' output (pipes) and supervises them.
      ...(o.supervised ? { supervised: true } : {}),
    });
    await renderer.end();

    if (!outcome.ok) {
      const undoRenderer = await io.view('undo', []);
      // Undo what this run started (a stack that was already up stays up), newest first.
      await undoRecorded(state, { only: new Set(outcome.changed), emit: (ev) => undoRenderer.event(ev) });
      for (const [name, rec] of Object.entries(state.tasks)) if (x.graph.nodes.has(name) && rec.undo.length === 0 && rec.status !== 'ready') state.remove(name, false);
      state.save();
      // What this run started and no record holds any more (a finished command's descendants).
      await stopLeftovers(o.dataDir, Object.values(state.tasks), (line) => io.err(`stigmer: ${line}`), { force: app.signal.aborted && !!app.interruptedBy() });
      reportFailures(outcome, failures, io.err);
      const lost = state.firstWriteError;
      if (lost) io.err(`stigmer: cannot write ${lost.message}; what this run started was stopped from memory`);
      o.onOutcome?.(state, outcome);
      const sig = app.interruptedBy();
      if (sig) return signalExitCode[sig];
      return EXIT.taskFailed;
    }
    reportFailures(outcome, failures, io.err);
    o.onOutcome?.(state, outcome);

    io.ready?.(outcome);
    return EXIT.ok;
  } finally {
    lock?.release();
  }
}

export async function runUp(o: UpOptions): Promise<number> {
  // the YAML reader is loaded only by the commands that read a tasks file (not down)
  const { loadTasksFile } = await import('./load.js');
  const file = await loadTasksFile(o.file, { config: o.config, kinds: o.kinds });
  for (const t of o.only ?? []) if (!file.tasks.has(t)) throw new UserError(`--only ${t}: no such task in ${file.displayPath}${didYouMean(t, file.tasks.keys())}`, EXIT.usage);
  const graph = buildGraph(file, o.only);
  return execute(o, { graph, file });
}

/** `stigmer run <task>`: rerun one step (its previous instance is undone first). */
export async function runTask(o: RunTaskOptions): Promise<number> {
  const { loadTasksFile } = await import('./load.js');
  const file = await loadTasksFile(o.file, { config: o.config, kinds: o.kinds });
  if (!file.tasks.has(o.task)) {
    throw new UserError(`stigmer: no task "${o.task}" in ${file.displayPath}${didYouMean(o.task, file.tasks.keys())}\nTasks: ${[...file.tasks.keys()].join(', ')}`, EXIT.usage);
  }
  const graph = buildGraph(file, [o.task]);
  let useRecorded: Set<string> | undefined;
  if (o.noDeps) {
    useRecorded = new Set(graph.order.filter((n) => n !== o.task));
    const state = StateStore.read(dataPaths(o.dataDir).state);
    const missing: string[] = [];
    for (const n of useRecorded) {
      const kind = await o.kinds.load(graph.nodes.get(n)!.spec.uses);
      const rec = state?.tasks[n];
      if (!kind.pure && !(rec && (rec.status === 'ready' || rec.status === 'done') && rec.outputs)) missing.push(n);
    }
    if (missing.length) {
      throw new UserError(
        `stigmer: --no-deps: ${missing.map((m) => `"${m}"`).join(', ')} ${missing.length === 1 ? 'has' : 'have'} no recorded outputs (not run yet, or stopped).\n` +
          `Run \`stigmer run ${o.task}\` without --no-deps to run its needs first.`,
        EXIT.taskFailed,
      );
    }
  }
  return execute(o, { graph, file, force: new Set([o.task]), ...(useRecorded ? { useRecorded } : {}) });
}

/** `stigmer down`: undo everything the state recorded, in reverse. Needs no tasks file. */
export async function runDown(o: CommonOptions & { quiet?: boolean }): Promise<number> {
  listenWithForce(o.app, o.dataDir);
  const io = o.io ?? terminalIo(o.app, o.output, true);
  const paths = dataPaths(o.dataDir);
  // No state and nothing carrying the stack's marker: nothing to do, and no lock to take.
  if (nothingToStop(o.dataDir)) {
    if (!o.quiet && o.output !== 'json') io.err(nothingToStopLine(o.dataDir));
    return EXIT.ok;
  }
  const say = io.err;
  let troubled = false;
  let lock: Lock | undefined;
  try {
    // `heldLock`: the supervisor holds it (or takes over a run of its own that holds it, and writes no more)
    if (!o.heldLock) lock = await acquireLock(paths.lock, 'stigmer down');
  } catch (err) {
    if (!(err instanceof LockUnwritable)) throw err;
    // Stopping must work on a read-only or full disk: best effort, and say so.
    say(`${err.message}; stopping what the state records anyway (no lock)`);
    troubled = true;
  }
  o.app.onForce(() => lock?.release());
  try {
    let state: StateStore;
    try {
      const opened = openState(o.dataDir, say);
      state = opened.state;
      troubled ||= opened.troubled;
    } catch (err) {
      if (!(err instanceof StateUnreadable)) throw err;
      say(`${err.message}; stopping what carries this stack's marker`);
      await stopLeftovers(o.dataDir, [], (line) => say(`stigmer: ${line}`), { force: o.app.signal.aborted });
      return err.exitCode;
    }
    o.onState?.(state);
    const renderer = await io.view('down', []);
    const force = o.app.signal.aborted;
    // One marker sweep for the whole down, after every undo (not one per stopped service): the
    // escapees of what it stopped are told as their task's.
    const spawns = new Map<string, Undone>();
    for (const [task, rec] of Object.entries(state.tasks)) {
      for (const u of rec.undo) if (u.type === 'stop-process' && typeof u.instance === 'string') spawns.set(u.instance, { task, signal: u.signal, graceMs: u.graceMs });
    }
    const res = await undoRecorded(state, { emit: (ev) => renderer.event(ev), force, sweepAfter: true });
    for (const [name, rec] of Object.entries(state.tasks)) if (rec.undo.length === 0) state.remove(name, false);
    // The stack is down: no supervisor runs it any more (one that asked for this down is exiting).
    if (state.data.supervisor) {
      delete state.data.supervisor;
      state.touch(false);
    }
    state.save();
    // Whatever still carries the marker escaped its record: stop it too.
    const report = (line: string): void => {
      if (o.output === 'json') io.out(`${JSON.stringify({ event: 'leftover', message: line, timestamp: new Date().toISOString() })}\n`);
      else io.out(`${line}\n`);
    };
    const leftovers = await stopLeftovers(o.dataDir, Object.values(state.tasks), report, {
      force,
      undone: new Map([...spawns].filter(([, s]) => res.undone.includes(s.task))),
      sayEscaped: (task, line) => renderer.event({ type: 'output', task, time: Date.now(), line }),
    });
    if (state.writeError) {
      say(`stigmer: cannot write ${state.writeError.message}; everything recorded was stopped, but the state on disk is stale`);
      troubled = true;
    }
    if (res.failed.length) {
      say(`stigmer: could not undo ${res.failed.join(', ')}; they stay recorded: run \`stigmer down\` again`);
      return EXIT.taskFailed;
    }
    if (leftovers.survived.length || troubled) return EXIT.taskFailed;
    if (!o.quiet && o.output !== 'json' && res.undone.length === 0 && leftovers.found.length === 0) io.out('nothing was running\n');
    return EXIT.ok;
  } finally {
    lock?.release();
  }
}

export type { RunOutcome };
