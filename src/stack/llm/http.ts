/**
 * The HTTP plumbing shared by the clients: undici (loaded on first use), one deadline + abort scope
 * per call, `retry-after` parsing, backoff, and turning error bodies and socket errors into
 * `LlmError`s with the provider's own message.
 */
import type { Dispatcher } from 'undici';
import { formatMs } from '../../util/format.js';
import type { LlmProvider } from './defaults.js';
import { LlmError } from './errors.js';

type Undici = typeof import('undici');
let undici: Promise<Undici> | undefined;

/** undici, imported once and only when a request is made (it costs ~30 ms to load). */
export function loadUndici(): Promise<Undici> {
  undici ??= import('undici');
  return undici;
}

export type Headers = Record<string, string | string[] | undefined>;

/** `base` + `path`, tolerating a trailing slash on the base. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * How long the provider asked us to wait: `retry-after-ms`, else `retry-after` in seconds or as an
 * HTTP date. Undefined when neither is there or parses.
 */
export function parseRetryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Math.round(Number(ms));
  const ra = header(headers, 'retry-after');
  if (ra === undefined || ra.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.round(Number(ra.trim()) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * 0.5 s, 1 s, 2 s, ... capped at 8 s, less up to 25 % jitter so that many clients refused at
 * the same moment do not all come back at the same moment (the providers' SDKs do the same).
 */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  return Math.round(Math.min(500 * 2 ** (retry - 1), 8000) * (1 - random() * 0.25));
}

/** The statuses worth trying again: timeouts, conflicts, rate limits, server errors, Anthropic's 529. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * A 429 that waiting will not clear: the account's quota or spend cap is used up (OpenAI's
 * `insufficient_quota`, "You exceeded your current quota"; Anthropic's spend-cap 429s, which come
 * without `retry-after`). Retrying only burns the attempts.
 */
export function isSpendCap(status: number, code: string | undefined, message: string | undefined): boolean {
  if (status !== 429) return false;
  if (code === 'insufficient_quota' || code === 'billing_error') return true;
  return /\b(quota|spend(ing)? (cap|limit)|credit balance|billing)\b/i.test(message ?? '');
}

/** The provider's request id from the response headers (Anthropic `request-id`, OpenAI `x-request-id`). */
export function requestIdOf(headers: Headers): string | undefined {
  const id = header(headers, 'request-id') ?? header(headers, 'x-request-id');
  return id && id.trim() !== '' ? id.trim() : undefined;
}

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  UND_ERR_SOCKET: 'connection closed by the other side',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_CLOSED: 'connection closed',
};

/** A short description of a socket-level error, e.g. "connection refused". */
export function describeSocketError(err: unknown): { text: string; code?: string } {
  let e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] } | undefined;
  // undici wraps the OS error in `cause`; Node's happy-eyeballs wraps several in `errors`.
  for (let depth = 0; e && depth < 4; depth++) {
    if (e.code && CONNECTION_CODES[e.code]) return { text: CONNECTION_CODES[e.code]!, code: e.code };
    if (Array.isArray(e.errors) && e.errors.length) e = e.errors[0] as typeof e;
    else e = e.cause as typeof e;
  }
  const msg = (err as Error | undefined)?.message;
  return { text: msg && msg.length < 200 ? msg : 'connection failed' };
}

/** The provider's own message and type out of an error body, in any of the three formats. */
export function parseErrorBody(text: string): { message?: string; code?: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const e = body.error;
    if (typeof e === 'string') return { message: e };
    if (e && typeof e === 'object') {
      const o = e as { message?: unknown; type?: unknown; code?: unknown };
      const code = typeof o.type === 'string' ? o.type : typeof o.code === 'string' ? o.code : undefined;
      return { ...(typeof o.message === 'string' ? { message: o.message } : {}), ...(code ? { code } : {}) };
    }
    if (typeof body.message === 'string') return { message: body.message };
  } catch {
    // not JSON: fall through to the raw text
  }
  const raw = text.trim().replace(/\s+/g, ' ');
  return raw ? { message: raw.length > 300 ? `${raw.slice(0, 300)}...` : raw } : {};
}

/** Why a call scope was aborted. */
type StopReason = { kind: 'timeout' } | { kind: 'aborted'; reason: unknown };

/**
 * One call's deadline and cancellation. `signal` fires when the caller aborts or the deadline
 * passes; `error()` says which, as an LlmError.
 */
export class CallScope {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private stop: StopReason | undefined;
  private readonly onAbort: () => void;

  constructor(
    private readonly provider: LlmProvider,
    private readonly what: string,
    private readonly timeoutMs: number | undefined,
    private readonly outer: AbortSignal | undefined,
  ) {
    this.signal = this.controller.signal;
    this.onAbort = () => this.abort({ kind: 'aborted', reason: outer?.reason });
    if (outer?.aborted) this.onAbort();
    else outer?.addEventListener('abort', this.onAbort, { once: true });
    if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.abort({ kind: 'timeout' }), timeoutMs);
    }
  }

  private abort(why: StopReason): void {
    if (this.stop) return;
    this.stop = why;
    this.controller.abort(new Error(why.kind));
  }

  get stopped(): boolean {
    return this.stop !== undefined;
  }

  /** The LlmError for a stopped scope, or undefined while it runs. */
  error(): LlmError | undefined {
    if (!this.stop) return undefined;
    if (this.stop.kind === 'timeout') {
      return new LlmError({
        provider: this.provider,
        kind: 'timeout',
        message: `${this.what} did not finish within ${formatMs(this.timeoutMs ?? 0)}`,
        hint: 'Raise the per-call timeout (STIGMER_LLM_TIMEOUT) if answers take longer.',
      });
    }
    return new LlmError({ provider: this.provider, kind: 'aborted', message: `${this.what} was cancelled` });
  }

  /** Wait `ms`, unless the scope stops first (then throw its error). */
  async sleep(ms: number): Promise<void> {
    if (this.stopped) throw this.error();
    const signal = this.signal;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
    if (this.stopped) throw this.error();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onAbort);
  }
}

export interface SendOptions {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  scope: CallScope;
  dispatcher?: Dispatcher;
}

/** Send one request; the response body is left for the caller to stream or read. */
export async function send(opts: SendOptions): Promise<Dispatcher.ResponseData> {
  const { request } = await loadUndici();
  return request(opts.url, {
    method: opts.method,
    headers: { accept: 'application/json, application/x-ndjson, text/event-stream', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    signal: opts.scope.signal,
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
}

/** Read at most `limit` bytes of a body as text, then drop the rest. */
export async function readText(body: Dispatcher.ResponseData['body'], limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (size + b.length > limit) {
        chunks.push(b.subarray(0, limit - size));
        break;
      }
      chunks.push(b);
      size += b.length;
    }
  } catch {
    // a body that breaks while reading an error is still an error; keep what arrived
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

export { header as firstHeader };
