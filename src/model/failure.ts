/**
 * Expected failures, keyed on a kebab-case `reason`. Every message a person reads about a failed
 * task is written here, in one place, so the wording stays consistent; kinds build failures
 * through the `fail` factories and throw them as `TaskError`.
 */

export type FailureReason =
  /** a one-shot command exited with a code other than 0 */
  | 'exit-non-zero'
  /** a service exited before its readiness probe passed */
  | 'exited-before-ready'
  /** a service's readiness probe did not pass before its deadline */
  | 'ready-timeout'
  /** a readiness probe got an answer waiting cannot change (refused credentials, TLS, unknown service or namespace) */
  | 'probe-rejected'
  /** a TCP port did not accept connections before the deadline */
  | 'port-timeout'
  /** a declared port is held by another process */
  | 'port-in-use'
  /** the command could not be started at all (not found, not executable) */
  | 'spawn-failed'
  /** the task's own `timeout` passed */
  | 'timeout'
  /** the run was interrupted or another task failed */
  | 'aborted'
  /** an HTTP download failed (status, network, truncated body) */
  | 'download-failed'
  /** the downloaded bytes do not match the expected sha256 */
  | 'checksum-mismatch'
  /** an archive holds absolute paths, `..` or links escaping the destination */
  | 'unsafe-archive'
  /** a secret the task needs is not set and cannot be asked for */
  | 'missing-secret'
  /** an expression or parameter could not be resolved at run time */
  | 'invalid-input'
  /** an undo step failed */
  | 'rollback-failed'
  /** anything else a kind reports, with its own message */
  | 'task-error';

export interface Failure {
  reason: FailureReason;
  /** one line, without the task name (the reporter prefixes it) */
  message: string;
  /** what to do about it, when there is a likely cause */
  hint?: string;
  /** the last lines of the task's log */
  logTail?: string[];
  /** the full log */
  logFile?: string;
  /** exit code of the process, when one exited */
  exitCode?: number | null;
}

function exitText(code: number | null | undefined, signal?: string | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code ?? 'unknown'}`;
}

export const fail = {
  exitNonZero(command: string, code: number | null, signal: string | null, logTail: string[], logFile?: string): Failure {
    return { reason: 'exit-non-zero', message: `${command} ${exitText(code, signal)}`, exitCode: code, logTail, ...(logFile ? { logFile } : {}) };
  },
  exitedBeforeReady(code: number | null, signal: string | null, logTail: string[], logFile: string): Failure {
    return { reason: 'exited-before-ready', message: `${exitText(code, signal)} before it was ready`, exitCode: code, logTail, logFile };
  },
  readyTimeout(probe: string, ms: number, lastProbe: string | undefined, logTail: string[], logFile: string): Failure {
    return {
      reason: 'ready-timeout',
      message: `not ready after ${formatMs(ms)}: ${probe}${lastProbe ? ` (last probe: ${lastProbe})` : ''}`,
      hint: 'The process is still running but its readiness probe never passed; check its log, or raise ready.timeout.',
      logTail,
      logFile,
    };
  },
  probeRejected(probe: string, detail: string, hint: string | undefined, logTail?: string[], logFile?: string): Failure {
    return {
      reason: 'probe-rejected',
      message: `${detail} [${probe}]`,
      hint: hint ?? 'Waiting longer cannot help: fix the setting the message names.',
      ...(logTail ? { logTail } : {}),
      ...(logFile ? { logFile } : {}),
    };
  },
  /** a one-shot wait (no process of its own) ran out of time */
  waitTimeout(target: string, expected: string, ms: number, lastProbe: string | undefined): Failure {
    return {
      reason: 'ready-timeout',
      message: `${target} did not answer ${expected} within ${formatMs(ms)}${lastProbe ? ` (last probe: ${lastProbe})` : ''}`,
      hint: 'Check that the service is running and reachable, or raise the wait\'s timeout.',
    };
  },
  portTimeout(host: string, port: number, ms: number, detail?: string): Failure {
    return {
      reason: 'port-timeout',
      message: `nothing accepted connections on ${host}:${port} within ${formatMs(ms)}${detail ? ` (${detail})` : ''}`,
      hint: `Check that the service at ${host}:${port} is running and reachable.`,
    };
  },
  portInUse(port: number, holder: { pid: number; command: string } | undefined, hint?: string): Failure {
    const who = holder ? `pid ${holder.pid} (${holder.command})` : 'another process (its pid is not visible to this user)';
    return { reason: 'port-in-use', message: `port ${port} is held by ${who}`, hint: hint ?? `Stop that process, or change the port.` };
  },
  spawnFailed(command: string, message: string): Failure {
    return { reason: 'spawn-failed', message: `could not start ${command}: ${message}`, hint: 'Check that the command exists and is executable (and on PATH).' };
  },
  timeout(ms: number): Failure {
    return { reason: 'timeout', message: `timed out after ${formatMs(ms)}`, hint: 'Raise the task\'s timeout if it needs longer.' };
  },
  aborted(why: string): Failure {
    return { reason: 'aborted', message: `aborted: ${why}` };
  },
  downloadFailed(url: string, message: string, hint?: string): Failure {
    return { reason: 'download-failed', message: `download of ${url} failed: ${message}`, ...(hint ? { hint } : {}) };
  },
  /** the checksums file has no line for the file being downloaded (reason download-failed: nothing was fetched) */
  checksumMissing(file: string, checksumsUrl: string): Failure {
    return {
      reason: 'download-failed',
      message: `no checksum for ${file} in ${checksumsUrl}`,
      hint: 'Check the version, the OS/architecture and the download mirror: a release\'s checksums file lists each of its files.',
    };
  },
  checksumMismatch(url: string, expected: string, actual: string): Failure {
    return {
      reason: 'checksum-mismatch',
      message: `checksum mismatch for ${url}: expected sha256 ${expected}, got ${actual}`,
      hint: 'The file is corrupt or was tampered with; nothing was installed. Retry, or check the mirror.',
    };
  },
  unsafeArchive(entry: string, why: string): Failure {
    return { reason: 'unsafe-archive', message: `refused archive: entry "${entry}" ${why}`, hint: 'Nothing was extracted. Use a trusted archive.' };
  },
  missingSecret(variable: string, why: string): Failure {
    return {
      reason: 'missing-secret',
      message: `${variable} is not set (${why})`,
      hint: `Set ${variable} in the environment or in .env, or run interactively to be asked for it.`,
    };
  },
  invalidInput(message: string, hint?: string): Failure {
    return { reason: 'invalid-input', message, ...(hint ? { hint } : {}) };
  },
  rollbackFailed(message: string): Failure {
    return { reason: 'rollback-failed', message };
  },
  taskError(message: string, hint?: string): Failure {
    return { reason: 'task-error', message, ...(hint ? { hint } : {}) };
  },
};

/** "250 ms", "1.2 s", "2 min" */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
