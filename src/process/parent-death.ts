/**
 * The parent-death signal for services: a service started by the supervisor gets a signal from
 * the kernel when the supervisor dies (PR_SET_PDEATHSIG), even by kill -9 or the OOM killer, so
 * no service runs on with nobody reading its output. Node cannot call prctl, so util-linux
 * `setpriv --pdeathsig SIG -- command args...` sets it and execs the command: same pid, same
 * process group, and the setting survives the exec.
 *
 * Only the supervisor turns it on (a CLI run that detaches must leave its services running).
 * Without setpriv (macOS, busybox) nothing is wrapped: the next stigmer command stops what a dead
 * supervisor left, from the state file. A command that cannot be found is not wrapped either, so
 * its spawn fails exactly as before (ENOENT, not setpriv's exit 127).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export type DeathSignal = 'SIGTERM' | 'SIGKILL';

let signal: DeathSignal | undefined;
let setpriv: string | null | undefined;

/** Turn the parent-death signal on for every service this process spawns from now on. */
export function setParentDeathSignal(sig: DeathSignal | undefined): void {
  signal = sig;
}

/** util-linux setpriv, when present (test hook: STIGMER_FAULT_NO_SETPRIV=1 behaves as without it). */
export function setprivPath(): string | undefined {
  if (process.env['STIGMER_FAULT_NO_SETPRIV'] === '1') return undefined;
  if (setpriv === undefined) setpriv = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'].find((p) => existsSync(p)) ?? null;
  return setpriv ?? undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `command` names an executable, as execvp would find it. */
function findable(command: string, cwd: string, env: NodeJS.ProcessEnv): boolean {
  if (command.includes('/')) return executable(isAbsolute(command) ? command : resolve(cwd, command));
  return (env['PATH'] ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(isAbsolute(dir) ? dir : resolve(cwd, dir), command)));
}

/** The command line to spawn: the service's own, or setpriv wrapping it when the signal is on. */
export function withParentDeath(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): { command: string; args: string[] } {
  const wrapper = signal ? setprivPath() : undefined;
  if (!signal || !wrapper || !findable(command, cwd, env)) return { command, args: [...args] };
  return { command: wrapper, args: ['--pdeathsig', signal, '--', command, ...args] };
}
