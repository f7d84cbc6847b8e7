/**
 * A command's terminal side, apart from the engine (src/engine/drivers.ts re-exports it): its views,
 * its prompts, and the force hook of the second signal. A command that only attaches to the
 * supervisor (down) loads this, not the engine.
 */
import type { App } from '../model/app.js';
import { TaskError, type PromptOptions } from '../model/kind.js';
import { fail } from '../model/failure.js';
import type { Renderer, OutputMode, RenderTask } from '../render/types.js';
import type { RunOutcome } from './run.js';
import { StateStore } from './state.js';
import { forceKillAll } from './undo.js';
import { dataPaths } from '../util/paths.js';

/** What a view shows: the run's tasks (`run`), the undo of a failed run (`undo`), a `down` (`down`). */
export type ViewKind = 'run' | 'undo' | 'down';

/** The terminal side of a run: its views, its stderr/stdout lines, its prompts. */
export interface RunIo {
  /** one line (or several) for stderr, without the final newline */
  err(line: string): void;
  /** text for stdout, as is */
  out(text: string): void;
  view(kind: ViewKind, tasks: RenderTask[]): Promise<Renderer>;
  /** whether prompting is possible at all */
  canPrompt: boolean;
  /** a masked prompt on the bare terminal (before the view starts) */
  ask(opts: PromptOptions): Promise<string>;
  /** everything is ready: the run's outputs */
  ready?(outcome: RunOutcome): void;
}

/**
 * A view on this process's terminal: a run's (json, listr2 on a terminal, plain lines), the undo
 * of a failed run (the run's json stream, else plain lines on stderr), a down's (json or plain on
 * stdout, or `downTo`: a foreground session's teardown goes to stderr, beside the streamed
 * services). `previous`: the run's view, which a json undo goes on with.
 */
export async function openView(kind: ViewKind, mode: OutputMode | undefined, tasks: RenderTask[], previous?: Renderer, downTo: NodeJS.WritableStream = process.stdout): Promise<Renderer> {
  if (kind === 'undo') return mode === 'json' && previous ? previous : (await import('../render/plain.js')).createPlainRenderer(process.stderr, { timestamps: false });
  if (mode === 'json') return (await import('../render/json.js')).createJsonRenderer();
  if (kind === 'down') return (await import('../render/plain.js')).createPlainRenderer(downTo, { timestamps: false });
  const tty = mode === 'tty' || (mode !== 'plain' && process.stdout.isTTY && !process.env['CI'] && (process.stdout.columns ?? 0) > 0);
  if (tty) return (await import('../render/tty.js')).createTtyRenderer(tasks);
  return (await import('../render/plain.js')).createPlainRenderer();
}

/** The io of a run on this process's own terminal. */
export function terminalIo(app: App, mode: OutputMode | undefined, noInput: boolean | undefined, onReady?: (outcome: RunOutcome) => void): RunIo {
  let main: Renderer | undefined;
  return {
    err: (line) => void process.stderr.write(`${line}\n`),
    out: (text) => void process.stdout.write(text),
    view: async (kind, tasks) => {
      const r = await openView(kind, mode, tasks, main);
      if (kind === 'run') main = r;
      return r;
    },
    canPrompt: canPrompt(noInput),
    ask: (opts) => askOnTerminal(app, opts),
    ...(onReady ? { ready: onReady } : {}),
  };
}

export function canPrompt(noInput?: boolean): boolean {
  return !noInput && !process.env['CI'] && !!process.stdin.isTTY && !!(process.stdout.isTTY || process.stderr.isTTY);
}

/**
 * A masked prompt on the bare terminal. Ctrl-C there (the prompt library reports it as an
 * ExitPromptError, not as a signal) is the user's interrupt: the run stops and exits 130.
 */
export async function askOnTerminal(app: App, opts: PromptOptions): Promise<string> {
  try {
    return await (await import('../render/tty.js')).askDirect(opts);
  } catch (err) {
    if ((err as Error)?.name === 'ExitPromptError') {
      app.interrupt('SIGINT');
      throw new TaskError(fail.aborted('SIGINT'));
    }
    throw err;
  }
}

/**
 * Listen for signals; on the second one, SIGKILL every process group the state file records.
 * The hook reads the file at that moment, so it also covers what was recorded a millisecond ago.
 */
export function listenWithForce(app: App, dataDir: string): void {
  app.listen();
  app.onForce(() => {
    const data = StateStore.read(dataPaths(dataDir).state);
    if (data) forceKillAll(Object.values(data.tasks).flatMap((r) => r.undo.filter((u) => u.type === 'stop-process')));
  });
}
