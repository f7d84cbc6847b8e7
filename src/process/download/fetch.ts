/**
 * HTTP GET with undici: redirects followed (GitHub answers 302 for release assets), an idle
 * timeout on connect, headers and body, abort through a signal, the sha256 computed while the
 * bytes stream to disk, and a truncated body detected. undici loads lazily, on the first fetch.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { fail } from '../../model/failure.js';
import { formatMs } from '../../util/format.js';
import type { Progress } from '../../model/kind.js';
import { TaskError } from '../../model/kind.js';
import { rateMeter } from '../../util/rate.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;
const PROGRESS_EVERY_MS = 100;
/** a checksums file is a few lines; anything far bigger is not one */
const MAX_TEXT_BYTES = 1 << 20;

export interface FetchOptions {
  signal?: AbortSignal | undefined;
  /** fail when connecting, the headers or the next body bytes take longer than this */
  idleTimeoutMs?: number | undefined;
}

export interface FetchedFile {
  sha256: string;
  bytes: number;
}

/** Turn a failed or aborted request into the failure a person reads. */
export function abortFailure(signal: AbortSignal): TaskError {
  const reason: unknown = signal.reason;
  if (reason instanceof TaskError) return reason;
  const why = typeof reason === 'string' ? reason : reason instanceof Error && reason.name !== 'AbortError' ? reason.message : 'interrupted';
  return new TaskError(fail.aborted(why));
}

function networkFailure(url: string, err: unknown, idleMs: number, got?: { bytes: number; total: number | undefined }): TaskError {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const mirrorHint = 'Check your network connection and the download mirror.';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new TaskError(fail.downloadFailed(url, `could not connect within ${formatMs(idleMs)}`, mirrorHint));
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new TaskError(fail.downloadFailed(url, `no response within ${formatMs(idleMs)}`, mirrorHint));
    case 'UND_ERR_BODY_TIMEOUT':
      return new TaskError(fail.downloadFailed(url, `no data for ${formatMs(idleMs)}${got ? ` after ${got.bytes} bytes` : ''}`, mirrorHint));
    case 'ECONNREFUSED':
      return new TaskError(fail.downloadFailed(url, 'connection refused', mirrorHint));
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new TaskError(fail.downloadFailed(url, 'host not found', mirrorHint));
  }
  if (got) {
    const of = got.total !== undefined ? ` of ${got.total}` : '';
    return new TaskError(fail.downloadFailed(url, `the connection was cut after ${got.bytes}${of} bytes`, 'Retry; if it keeps failing, check the download mirror.'));
  }
  const detail = e.cause?.message ?? e.message ?? String(err);
  return new TaskError(fail.downloadFailed(url, `${detail}${code ? ` (${code})` : ''}`, mirrorHint));
}

function statusFailure(url: string, status: number): TaskError {
  if (status >= 300 && status < 400) {
    return new TaskError(fail.downloadFailed(url, `HTTP ${status}: more than ${MAX_REDIRECTS} redirects`, 'Check the URL and the download mirror.'));
  }
  const hint =
    status === 404 || status === 410
      ? 'Check the version and the download mirror.'
      : status === 401 || status === 403
        ? 'The server refused access; check the URL and the download mirror.'
        : status === 429 || status >= 500
          ? 'The server had a problem; retry in a moment.'
          : 'Check the URL and the download mirror.';
  return new TaskError(fail.downloadFailed(url, `HTTP ${status}`, hint));
}

/** One dispatcher per download: idle timeouts plus the redirect interceptor. */
async function openRequest(url: string, opts: FetchOptions): Promise<{ res: Dispatcher.ResponseData; close(): Promise<void> }> {
  const { Agent, interceptors, request } = await import('undici');
  const idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const agent = new Agent({ connectTimeout: idle, headersTimeout: idle, bodyTimeout: idle });
  const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
  const close = (): Promise<void> => agent.destroy().catch(() => undefined);
  if (opts.signal?.aborted) {
    await close();
    throw abortFailure(opts.signal);
  }
  try {
    const res = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { 'user-agent': 'stigmer', accept: '*/*' },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { res, close };
  } catch (err) {
    await close();
    if (opts.signal?.aborted) throw abortFailure(opts.signal);
    throw networkFailure(url, err, idle);
  }
}

/** GET `url` into memory as text (a checksums file). */
export async function fetchText(url: string, opts: FetchOptions = {}): Promise<string> {
  const { res, close } = await openRequest(url, opts);
  try {
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump().catch(() => undefined);
      throw statusFailure(url, res.statusCode);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_TEXT_BYTES) throw new TaskError(fail.downloadFailed(url, `larger than ${MAX_TEXT_BYTES} bytes; expected a checksums file`));
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof TaskError) throw err;
    if (opts.signal?.aborted) throw abortFailure(opts.signal);
    throw networkFailure(url, err, opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  } finally {
    await close();
  }
}

/**
 * GET `url` into `file` (created, must not exist), hashing the bytes as they are written.
 * `onProgress` gets `{done, total}` at most every 100 ms, plus the start and the end.
 */
export function fetchToFile(
  url: string,
  file: string,
  opts: FetchOptions & { onProgress?: ((p: Progress) => void) | undefined } = {},
): Promise<FetchedFile> {
  return fetchInto(url, () => createWriteStream(file, { flags: 'wx', mode: 0o600 }), opts);
}

/**
 * GET `url` into the Writable `sink()` makes once the server answered 200, hashing the bytes as
 * they pass; backpressure is the sink's (a slow sink slows the download, nothing piles up in
 * memory). The sink's own failures are file-system errors (write-failed); a sink that must not
 * stop the download (an extractor that keeps the body flowing to finish the hash) swallows its
 * own. A body shorter than its Content-Length fails (download-failed).
 */
export async function fetchInto(
  url: string,
  sink: () => Writable,
  opts: FetchOptions & { onProgress?: ((p: Progress) => void) | undefined } = {},
): Promise<FetchedFile> {
  const idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const { res, close } = await openRequest(url, opts);
  const length = Number(res.headers['content-length']);
  const total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
  const hash = createHash('sha256');
  let done = 0;
  let last = 0;
  const meter = rateMeter();
  const report = (force: boolean): void => {
    if (!opts.onProgress) return;
    const now = Date.now();
    if (!force && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    const rate = meter.sample(done, now);
    opts.onProgress({ done, ...(total !== undefined ? { total } : {}), unit: 'bytes', ...(rate !== undefined && done !== total ? { rate } : {}) });
  };
  try {
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump().catch(() => undefined);
      throw statusFailure(url, res.statusCode);
    }
    report(true);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        done += chunk.length;
        report(false);
        cb(null, chunk);
      },
    });
    await pipeline(res.body, counter, sink(), opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    if (err instanceof TaskError) throw err;
    if (opts.signal?.aborted) throw abortFailure(opts.signal);
    const fsErr = err as NodeJS.ErrnoException;
    if (fsErr.path !== undefined && fsErr.syscall !== undefined) {
      throw new TaskError(fail.writeFailed('write', fsErr.path, fsErr.code ?? fsErr.message));
    }
    throw networkFailure(url, err, idle, { bytes: done, total });
  } finally {
    await close();
  }
  if (total !== undefined && done !== total) {
    throw new TaskError(fail.downloadFailed(url, `the connection was cut after ${done} of ${total} bytes`, 'Retry; if it keeps failing, check the download mirror.'));
  }
  report(true);
  return { sha256: hash.digest('hex'), bytes: done };
}
