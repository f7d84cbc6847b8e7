/**
 * Executes undo descriptors: the plain data a task recorded in the state file about what it
 * changed. Runs in whichever process undoes (the run that failed, a later `down`, the next `up`
 * after a `kill -9`), so it relies on nothing but the descriptor.
 */
import { lstat, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { UndoDescriptor } from '../model/kind.js';
import { formatMs } from '../model/failure.js';
import { killForegroundGroups } from '../process/command.js';
import { killGroupNow, shortCommand, stopGroup } from '../process/proc.js';

/** What an undo step will do, for progress titles: "stop pid 123 (node server.js)". */
export function describeUndo(desc: UndoDescriptor): string {
  switch (desc.type) {
    case 'stop-process':
      return `stop pid ${desc.pid} (${shortCommand(desc.command)})`;
    case 'remove-path':
      return `remove ${desc.path}`;
  }
}

/**
 * Undo one step and say in one line what happened. `force` skips the grace period (SIGKILL).
 * Throws on a real failure; the caller reports it and carries on with the other steps.
 */
export async function executeUndo(desc: UndoDescriptor, opts: { force?: boolean } = {}): Promise<string> {
  switch (desc.type) {
    case 'stop-process': {
      const who = `pid ${desc.pid} (${shortCommand(desc.command)})`;
      const result = await stopGroup(desc, opts);
      switch (result) {
        case 'stopped':
          return `stopped ${who}`;
        case 'killed':
          return opts.force || desc.signal === 'SIGKILL'
            ? `killed ${who}`
            : `killed ${who}: it did not stop within ${formatMs(desc.graceMs)} of ${desc.signal}`;
        case 'not-running':
          return `pid ${desc.pid} was no longer running`;
        case 'pid-reused':
          return `pid ${desc.pid} now belongs to another program; not signalled`;
        default:
          return assertNever(result);
      }
    }
    case 'remove-path': {
      const path = resolve(desc.path);
      if (path === resolve('/')) throw new Error(`refused to remove ${path}`);
      const existed = await lstat(path).then(
        () => true,
        () => false,
      );
      await rm(path, { recursive: true, force: true });
      return existed ? `removed ${path}` : `${path} was already gone`;
    }
    default:
      return assertNever(desc);
  }
}

/**
 * SIGKILL, synchronously, every process group these steps name that is still ours, and every
 * foreground command still running (the second Ctrl-C: no grace periods, no awaiting).
 */
export function forceKillAll(descs: readonly UndoDescriptor[]): void {
  for (const desc of descs) if (desc.type === 'stop-process') killGroupNow(desc);
  killForegroundGroups();
}

function assertNever(value: never): never {
  throw new Error(`Internal error: unknown undo step ${JSON.stringify(value)}`);
}
