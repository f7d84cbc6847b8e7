/**
 * A failed command's report: a user error as its message and exit code, anything else as an
 * internal error (70). src/cli.ts uses it, and so do the files bundled on their own (validate and
 * graph's src/commands/engine-light.ts, status's, local status's, down's src/down-cli.ts), each with
 * its own copy of it.
 */
import { UserError } from './errors.js';
import { mask } from './mask.js';
import { printable } from './diagnostics.js';

export function reportError(err: unknown): number {
  if (err instanceof UserError) {
    // a message may quote what the user gave (a path, a value): never let it drive the terminal
    if (err.message) process.stderr.write(`${mask(err.message).split('\n').map(printable).join('\n')}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`stigmer: internal error: ${mask(e?.stack ?? String(err))}\n`);
  return 70;
}
