/**
 * Expected failures: a union keyed on a kebab-case `reason`, each carrying its own typed fields
 * (the JSON renderer emits them as they are). What a person reads about a failure is rendered in
 * one place, `describeFailure`, so the wording stays consistent. Kinds build failures through the
 * `fail` factories and throw them as `TaskError`.
 *
 * Every failure may carry a `hint` that overrides the reason's own: a kind's better guess, or the
 * tasks file's `hints:` for that reason.
 */
import { unreachable } from '../util/errors.js';
import { formatMs } from '../util/format.js';
interface Base {
  /** what to do about it, when the one `describeFailure` gives is not the best guess */
  hint?: string;
}

/** The last lines of a process's log, and where the whole of it is. */
interface WithLog {
  logTail: string[];
  logFile?: string;
}

/** A one-shot command exited with a code other than 0 (or was killed by a signal). */
export interface ExitNonZero extends Base, WithLog {
  reason: 'exit-non-zero';
  command: string;
  exitCode: number | null;
  signal: string | null;
}

/** A service exited before its readiness probe passed. */
export interface ExitedBeforeReady extends Base, WithLog {
  reason: 'exited-before-ready';
  exitCode: number | null;
  signal: string | null;
}

/** A service's readiness probe did not pass before its deadline. */
export interface ReadyTimeout extends Base, WithLog {
  reason: 'ready-timeout';
  probe: string;
  timeoutMs: number;
  lastProbe?: string;
}

/** A one-shot wait (no process of its own) got no good answer before its deadline. */
export interface WaitTimeout extends Base {
  reason: 'ready-timeout';
  /** what was asked, e.g. "127.0.0.1:7233" */
  target: string;
  /** the answer waited for, e.g. "SERVING", "HTTP 200" */
  expected: string;
  timeoutMs: number;
  lastProbe?: string;
}

/** A readiness probe got an answer waiting cannot change (refused credentials, TLS, unknown service or namespace). */
export interface ProbeRejected extends Base {
  reason: 'probe-rejected';
  probe: string;
  /** what the probe was told */
  detail: string;
  logTail?: string[];
  logFile?: string;
}

/** A TCP port did not accept connections before the deadline. */
export interface PortTimeout extends Base {
  reason: 'port-timeout';
  host: string;
  port: number;
  timeoutMs: number;
  detail?: string;
}

/** A declared port is held by another process. */
export interface PortInUse extends Base {
  reason: 'port-in-use';
  port: number;
  /** the process holding it, when this user can see it */
  holder?: { pid: number; command: string };
}

/** The command could not be started at all (not found, not executable). */
export interface SpawnFailed extends Base {
  reason: 'spawn-failed';
  command: string;
  error: string;
}

/** The task's own `timeout` passed. */
export interface Timeout extends Base {
  reason: 'timeout';
  timeoutMs: number;
}

/** The run was interrupted, or another task failed. */
export interface Aborted extends Base {
  reason: 'aborted';
  why: string;
}

/** An HTTP download failed (status, network, truncated body), or the checksums file lacks the file. */
export interface DownloadFailed extends Base {
  reason: 'download-failed';
  url: string;
  error: string;
  /** set when `url` is a checksums file without a line for this file (nothing else was fetched) */
  checksumFor?: string;
}

/** The downloaded bytes do not match the expected sha256. */
export interface ChecksumMismatch extends Base {
  reason: 'checksum-mismatch';
  url: string;
  expected: string;
  actual: string;
}

/** An archive holds absolute paths, `..` or links escaping the destination. */
export interface UnsafeArchive extends Base {
  reason: 'unsafe-archive';
  entry: string;
  why: string;
}

/** A downloaded file is not a readable archive of the expected kind, or holds no files. */
export interface BadArchive extends Base {
  reason: 'bad-archive';
  file: string;
  /** what is wrong; undefined for an archive without files */
  error?: string;
}

/** An install destination holds files stigmer did not install: it is never replaced. */
export interface DestNotOurs extends Base {
  reason: 'dest-not-ours';
  dest: string;
}

/** Writing to the file system failed (a download, an install, the data dir). */
export interface WriteFailed extends Base {
  reason: 'write-failed';
  /** "write", "install into", "create the data dir" */
  action: string;
  path: string;
  error: string;
}

/** A secret the task needs is not set and cannot be asked for. */
export interface MissingSecret extends Base {
  reason: 'missing-secret';
  variable: string;
  why: string;
}

/** The LLM server (Ollama) did not answer. */
export interface LlmUnreachable extends Base {
  reason: 'llm-unreachable';
  baseUrl: string;
  model: string;
  error: string;
}

/** The LLM server answered, but does not have the model. */
export interface ModelMissing extends Base {
  reason: 'model-missing';
  baseUrl: string;
  model: string;
}

/** An expression or parameter could not be resolved at run time. */
export interface InvalidInput extends Base {
  reason: 'invalid-input';
  message: string;
}

/** An undo step failed (stopping an earlier instance, removing what a task created). */
export interface RollbackFailed extends Base {
  reason: 'rollback-failed';
  /** what could not be done, e.g. "stop its previous instance"; absent for a step of `down` */
  action?: string;
  error: string;
}

/** A task kind could not be loaded, or threw something it did not mean to: a bug in stigmer. */
export interface InternalError extends Base {
  reason: 'internal-error';
  kind: string;
  message: string;
  /** the stack trace, kept only with STIGMER_DEBUG=1 and never written to the state or events */
  stack?: string;
}

export type Failure =
  | ExitNonZero
  | ExitedBeforeReady
  | ReadyTimeout
  | WaitTimeout
  | ProbeRejected
  | PortTimeout
  | PortInUse
  | SpawnFailed
  | Timeout
  | Aborted
  | DownloadFailed
  | ChecksumMismatch
  | UnsafeArchive
  | BadArchive
  | DestNotOurs
  | WriteFailed
  | MissingSecret
  | LlmUnreachable
  | ModelMissing
  | InvalidInput
  | RollbackFailed
  | InternalError;

export type FailureReason = Failure['reason'];

function exitText(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code ?? 'unknown'}`;
}

/** One line without the task name (the reporter prefixes it), and what to do about it. */
export function describeFailure(f: Failure): { message: string; hint?: string } {
  const d = ((message: string, hint?: string) => (f.hint ?? hint) === undefined ? { message } : { message, hint: (f.hint ?? hint)! });
  switch (f.reason) {
    case 'exit-non-zero':
      return d(`${f.command} ${exitText(f.exitCode, f.signal)}`);
    case 'exited-before-ready':
      return d(`${exitText(f.exitCode, f.signal)} before it was ready`);
    case 'ready-timeout':
      if ('target' in f) {
        return d(
          `${f.target} did not answer ${f.expected} within ${formatMs(f.timeoutMs)}${f.lastProbe ? ` (last probe: ${f.lastProbe})` : ''}`,
          "Check that the service is running and reachable, or raise the wait's timeout.",
        );
      }
      return d(
        `not ready after ${formatMs(f.timeoutMs)}: ${f.probe}${f.lastProbe ? ` (last probe: ${f.lastProbe})` : ''}`,
        'The process is still running but its readiness probe never passed; check its log, or raise ready.timeout.',
      );
    case 'probe-rejected':
      return d(`${f.detail} [${f.probe}]`, 'Waiting longer cannot help: fix the setting the message names.');
    case 'port-timeout':
      return d(
        `nothing accepted connections on ${f.host}:${f.port} within ${formatMs(f.timeoutMs)}${f.detail ? ` (${f.detail})` : ''}`,
        `Check that the service at ${f.host}:${f.port} is running and reachable.`,
      );
    case 'port-in-use':
      return d(`port ${f.port} is held by ${f.holder ? `pid ${f.holder.pid} (${f.holder.command})` : 'another process (its pid is not visible to this user)'}`, 'Stop that process, or change the port.');
    case 'spawn-failed':
      return d(`could not start ${f.command}: ${f.error}`, 'Check that the command exists and is executable (and on PATH).');
    case 'timeout':
      return d(`timed out after ${formatMs(f.timeoutMs)}`, "Raise the task's timeout if it needs longer.");
    case 'aborted':
      return d(`aborted: ${f.why}`);
    case 'download-failed':
      if (f.checksumFor !== undefined) {
        return d(`no checksum for ${f.checksumFor} in ${f.url}`, "Check the version, the OS/architecture and the download mirror: a release's checksums file lists each of its files.");
      }
      return d(`download of ${f.url} failed: ${f.error}`);
    case 'checksum-mismatch':
      return d(`checksum mismatch for ${f.url}: expected sha256 ${f.expected}, got ${f.actual}`, 'The file is corrupt or was tampered with; nothing was installed. Retry, or check the mirror.');
    case 'unsafe-archive':
      return d(`refused archive: entry "${f.entry}" ${f.why}`, 'Nothing was extracted. Use a trusted archive.');
    case 'bad-archive':
      return f.error === undefined
        ? d(`the archive ${f.file} holds no files`, 'Check the URL and the `extract` setting.')
        : d(`could not read the archive ${f.file}: ${f.error}`, 'The download is not the archive expected; check the URL and the `extract` setting.');
    case 'dest-not-ours':
      return d(`${f.dest} already exists and holds files stigmer did not install`, 'Remove it, or choose another dest: stigmer only replaces its own installs.');
    case 'write-failed':
      return d(`could not ${f.action} ${f.path}: ${f.error}`, 'Check free disk space and the permissions of the destination directory.');
    case 'missing-secret':
      return d(`${f.variable} is not set (${f.why})`, `Set ${f.variable} in the environment or in .env, or run interactively to be asked for it.`);
    case 'llm-unreachable':
      return d(`Ollama is not reachable at ${f.baseUrl} (${f.error})`, `Start Ollama (ollama serve), or set backend.local.llm.base_url / STIGMER_LLM_BASE_URL to where it runs; then pull the model: ollama pull ${f.model}`);
    case 'model-missing':
      return d(`Ollama at ${f.baseUrl} does not have the model ${f.model}`, `Pull it: ollama pull ${f.model} (or stigmer llm pull ${f.model})`);
    case 'invalid-input':
      return d(f.message);
    case 'rollback-failed':
      return d(f.action ? `could not ${f.action}: ${f.error}` : f.error);
    case 'internal-error':
      return d(`Internal error in task kind ${f.kind}: ${f.message}`, 'This is a bug in stigmer; run again with STIGMER_DEBUG=1 for its stack trace.');
    default:
      return unreachable(f, 'failure reason');
  }
}

export const fail = {
  exitNonZero: (command: string, exitCode: number | null, signal: string | null, logTail: string[], logFile?: string): ExitNonZero => ({
    reason: 'exit-non-zero',
    command,
    exitCode,
    signal,
    logTail,
    ...(logFile ? { logFile } : {}),
  }),
  exitedBeforeReady: (exitCode: number | null, signal: string | null, logTail: string[], logFile: string): ExitedBeforeReady => ({ reason: 'exited-before-ready', exitCode, signal, logTail, logFile }),
  readyTimeout: (probe: string, timeoutMs: number, lastProbe: string | undefined, logTail: string[], logFile: string): ReadyTimeout => ({
    reason: 'ready-timeout',
    probe,
    timeoutMs,
    ...(lastProbe ? { lastProbe } : {}),
    logTail,
    logFile,
  }),
  probeRejected: (probe: string, detail: string, hint: string | undefined, logTail?: string[], logFile?: string): ProbeRejected => ({
    reason: 'probe-rejected',
    probe,
    detail,
    ...(hint ? { hint } : {}),
    ...(logTail ? { logTail } : {}),
    ...(logFile ? { logFile } : {}),
  }),
  /** a one-shot wait (no process of its own) ran out of time */
  waitTimeout: (target: string, expected: string, timeoutMs: number, lastProbe: string | undefined): WaitTimeout => ({
    reason: 'ready-timeout',
    target,
    expected,
    timeoutMs,
    ...(lastProbe ? { lastProbe } : {}),
  }),
  portTimeout: (host: string, port: number, timeoutMs: number, detail?: string): PortTimeout => ({ reason: 'port-timeout', host, port, timeoutMs, ...(detail ? { detail } : {}) }),
  portInUse: (port: number, holder: { pid: number; command: string } | undefined, hint?: string): PortInUse => ({ reason: 'port-in-use', port, ...(holder ? { holder } : {}), ...(hint ? { hint } : {}) }),
  spawnFailed: (command: string, error: string): SpawnFailed => ({ reason: 'spawn-failed', command, error }),
  timeout: (timeoutMs: number): Timeout => ({ reason: 'timeout', timeoutMs }),
  aborted: (why: string): Aborted => ({ reason: 'aborted', why }),
  downloadFailed: (url: string, error: string, hint?: string): DownloadFailed => ({ reason: 'download-failed', url, error, ...(hint ? { hint } : {}) }),
  /** the checksums file has no line for the file being downloaded (nothing else was fetched) */
  checksumMissing: (file: string, checksumsUrl: string): DownloadFailed => ({ reason: 'download-failed', url: checksumsUrl, error: 'no checksum line', checksumFor: file }),
  checksumMismatch: (url: string, expected: string, actual: string): ChecksumMismatch => ({ reason: 'checksum-mismatch', url, expected, actual }),
  unsafeArchive: (entry: string, why: string): UnsafeArchive => ({ reason: 'unsafe-archive', entry, why }),
  badArchive: (file: string, error?: string): BadArchive => ({ reason: 'bad-archive', file, ...(error !== undefined ? { error } : {}) }),
  destNotOurs: (dest: string): DestNotOurs => ({ reason: 'dest-not-ours', dest }),
  writeFailed: (action: string, path: string, error: string): WriteFailed => ({ reason: 'write-failed', action, path, error }),
  missingSecret: (variable: string, why: string): MissingSecret => ({ reason: 'missing-secret', variable, why }),
  llmUnreachable: (baseUrl: string, model: string, error: string): LlmUnreachable => ({ reason: 'llm-unreachable', baseUrl, model, error }),
  modelMissing: (baseUrl: string, model: string): ModelMissing => ({ reason: 'model-missing', baseUrl, model }),
  invalidInput: (message: string, hint?: string): InvalidInput => ({ reason: 'invalid-input', message, ...(hint ? { hint } : {}) }),
  rollbackFailed: (error: string, action?: string): RollbackFailed => ({ reason: 'rollback-failed', error, ...(action ? { action } : {}) }),
  /** a kind that could not be loaded or threw unexpectedly; the stack is kept only when debugging */
  internalError: (kind: string, err: unknown): InternalError => {
    const e = err instanceof Error ? err : undefined;
    const stack = process.env['STIGMER_DEBUG'] === '1' ? e?.stack : undefined;
    return { reason: 'internal-error', kind, message: e ? e.message : String(err), ...(stack ? { stack } : {}) };
  },
};
