/**
 * What every command action shares (created by src/app.ts, handed to the engine and the stack):
 * the run-wide abort signal driven by SIGINT/SIGTERM/SIGHUP, a hook for the second signal
 * (force), and the exit code to end with.
 */
import { EXIT } from '../util/errors.js';

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
   * signal starts, e.g. "cancelling the execution" (default: undoing what was started). `quiet`:
   * the first signal just ends the command (nothing to undo, nothing said: `logs -f`).
   */
  listen(doing?: string, o?: { quiet?: boolean }): void;
  /** simulate a signal (used by the prompt's Ctrl-C) */
  interrupt(sig: InterruptSignal): void;
  exitCode: number;
}

export const signalExitCode: Record<InterruptSignal, number> = {
  SIGINT: EXIT.sigint,
  SIGTERM: EXIT.sigterm,
  SIGHUP: EXIT.sighup,
};
