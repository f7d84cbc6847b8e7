/**
 * What every command action shares: the run-wide abort signal driven by SIGINT/SIGTERM/SIGHUP,
 * a hook for the second signal (force), and the exit code to end with.
 *
 *   first signal  -> abort `signal` (reason: the signal name); the command undoes what it did
 *   second signal -> run the force hooks (SIGKILL every process group) and exit at once
 */
import { EXIT } from './util/errors.js';

export type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

export interface App {
  /** aborted on the first SIGINT/SIGTERM/SIGHUP; `signal.reason` is the signal name */
  readonly signal: AbortSignal;
  /** the signal that interrupted the run, if any */
  interruptedBy(): InterruptSignal | undefined;
  /** run on the second signal, before exiting */
  onForce(hook: () => void): void;
  /**
   * Start listening for signals (commands that run tasks call this). `doing` says what the first
   * signal starts, e.g. "cancelling the execution" (default: undoing what was started).
   */
  listen(doing?: string): void;
  /** simulate a signal (used by the prompt's Ctrl-C) */
  interrupt(sig: InterruptSignal): void;
  exitCode: number;
}

export const signalExitCode: Record<InterruptSignal, number> = {
  SIGINT: EXIT.sigint,
  SIGTERM: EXIT.sigterm,
  SIGHUP: EXIT.sighup,
};

export function createApp(): App {
  const controller = new AbortController();
  const hooks: (() => void)[] = [];
  let first: InterruptSignal | undefined;
  let listening = false;
  let doingText = 'undoing what was started';
  const app: App = {
    signal: controller.signal,
    exitCode: EXIT.ok,
    interruptedBy: () => first,
    onForce: (hook) => {
      hooks.push(hook);
    },
    interrupt: (sig) => handle(sig),
    listen: (doing) => {
      if (doing) doingText = doing;
      if (listening) return;
      listening = true;
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => handle(sig));
    },
  };
  function handle(sig: InterruptSignal): void {
    if (!first) {
      first = sig;
      process.stderr.write(`\nstigmer: ${sig} received, ${doingText} (send it again to force)\n`);
      controller.abort(sig);
      return;
    }
    process.stderr.write(`stigmer: ${sig} again, ${hooks.length ? 'killing every process group without grace' : 'exiting now'}\n`);
    for (const hook of hooks) {
      try {
        hook();
      } catch {
        // forcing: keep going
      }
    }
    process.exit(signalExitCode[first]);
  }
  return app;
}
