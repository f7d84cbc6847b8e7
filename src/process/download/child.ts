/**
 * A fresh install in a child process (`stigmer internal install-download`), for the supervisor:
 * the fetching path (undici and its llhttp WebAssembly, tar, the zstd decoder, the streams'
 * buffers) cost the long-lived supervisor ~45 MB of peak RSS on a first `local start`, and much
 * of it stayed (code space, malloc arenas). In a child all of it goes when the child exits.
 *
 *   parent -> child   stdin: the DownloadParams, one JSON line
 *   child -> parent   stdout: JSON lines, {t:'progress',p} / {t:'output',line} / then one of
 *                     {t:'done',outputs} or {t:'failed',failure} (a TaskError's Failure, kept whole)
 *   abort             the parent's signal SIGTERMs the child, which aborts its install (removing
 *                     its stage dir) and exits; the parent waits for that, then throws the abort
 *   parent gone       the child aborts its install too (it watches its parent pid)
 *
 * Its stderr is the parent's (the supervisor's log).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fail, type Failure } from '../../model/failure.js';
import type { Progress } from '../../model/kind.js';
import { TaskError } from '../../model/kind.js';
import { packageRoot } from '../../util/paths.js';
import type { InstallOptions } from './install.js';
import type { DownloadParams } from './params.js';
import type { DownloadOutputs } from './tree.js';

type ChildMessage = { t: 'progress'; p: Progress } | { t: 'output'; line: string } | { t: 'done'; outputs: DownloadOutputs } | { t: 'failed'; failure: Failure };

/** Install `params` from a child process (always fresh: the caller found no verified install). */
export async function installInChild(params: DownloadParams, opts: InstallOptions): Promise<DownloadOutputs> {
  const { abortFailure } = await import('./fetch.js');
  if (opts.signal?.aborted) throw abortFailure(opts.signal);
  const child = spawn(process.execPath, [join(packageRoot, 'bin', 'stigmer.js'), 'internal', 'install-download'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let last: ChildMessage | undefined;
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let msg: ChildMessage;
      try {
        msg = JSON.parse(line) as ChildMessage;
      } catch {
        continue; // not one of its messages
      }
      if (msg.t === 'progress') opts.onProgress?.(msg.p);
      else if (msg.t === 'output') opts.onOutput?.(msg.line);
      else last = msg;
    }
  });
  const onAbort = (): void => void child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  child.stdin!.on('error', () => {}); // a child that died at once: its exit says so
  child.stdin!.end(`${JSON.stringify(params)}\n`);
  try {
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((res) => {
      child.once('error', (error) => res({ code: null, signal: null, error }));
      // 'close': its stdout read to the end
      child.once('close', (code, signal) => res({ code, signal }));
    });
    if (opts.signal?.aborted) throw abortFailure(opts.signal);
    const done = last as ChildMessage | undefined;
    if (done?.t === 'done') return done.outputs;
    if (done?.t === 'failed') throw new TaskError(done.failure);
    const how = exit.error ? exit.error.message : exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    throw new TaskError(fail.downloadFailed(params.url, `the install process ${how} (its output is in the supervisor's log)`, 'Retry; if it keeps failing, run the command without the supervisor (`stigmer run <task>`) to see why.'));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** The child's side: read the params, install, report. The exit code: 0 done, 1 failed. */
export async function runInstallChild(): Promise<number> {
  const { installDownload } = await import('./install.js');
  let input = '';
  for await (const chunk of process.stdin) input += (chunk as Buffer).toString();
  const params = JSON.parse(input) as DownloadParams;
  const say = (m: ChildMessage): void => void process.stdout.write(`${JSON.stringify(m)}\n`);
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort('interrupted'));
  const parent = process.ppid;
  const orphan = setInterval(() => {
    if (process.ppid !== parent) controller.abort('the supervisor went away');
  }, 500);
  orphan.unref();
  try {
    const { outputs } = await installDownload(params, {
      force: true,
      signal: controller.signal,
      onProgress: (p) => say({ t: 'progress', p }),
      onOutput: (line) => say({ t: 'output', line }),
    });
    say({ t: 'done', outputs });
    return 0;
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    say({ t: 'failed', failure: err.failure });
    return 1;
  } finally {
    clearInterval(orphan);
  }
}
