/**
 * What every command action shares: the run-wide abort signal driven by SIGINT/SIGTERM/SIGHUP,
 * a hook for the second signal (force), and the exit code to end with.
 *
 *   first signal  -> abort `signal` (reason: the signal name); the command undoes what it did
 *   second signal -> run the force hooks (SIGKILL every process group) and exit at once
 */
import { EXIT } from './util/errors.js';
import { signalExitCode, type App, type InterruptSignal } from './model/app.js';

export function createApp(): App {
  const controller = new AbortController();
  const hooks: (() => void)[] = [];
  let first: InterruptSignal | undefined;
  let listening = false;
  let doingText = 'undoing what was started';
  let quiet = false;
  const app: App = {
    signal: controller.signal,
    exitCode: EXIT.ok,
    interruptedBy: () => first,
    onForce: (hook) => {
      hooks.push(hook);
    },
    interrupt: (sig) => handle(sig),
    listen: (doing, o) => {
      if (doing) doingText = doing;
      if (o?.quiet) quiet = true;
      if (listening) return;
      listening = true;
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => handle(sig));
    },
  };
  function handle(sig: InterruptSignal): void {
    if (!first) {
      first = sig;
      if (!quiet) process.stderr.write(`\nstigmer: ${sig} received, ${doingText} (send it again to force)\n`);
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
