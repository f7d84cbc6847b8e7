/**
 * `streamChat`: one chat completion, streamed, against any of the three providers.
 *
 *   request -> non-2xx ------------------> LlmError (retry if 429/5xx/529 and attempts remain)
 *           -> 200 -> chunk, chunk, ...  -> done marker -> end
 *                  -> error frame / cut  -> LlmError (retried only if no chunk was yielded yet)
 *
 * A retry after a chunk was handed out would repeat text the caller already forwarded, so once
 * the first chunk is out every failure is final.
 */
import type { Dispatcher } from 'undici';
import { registerSecret } from '../../util/mask.js';
import { formatMs } from '../../util/format.js';
import { LlmError, isLlmError } from './errors.js';
import { CallScope, backoffMs, describeSocketError, firstHeader, isRetryableStatus, isSpendCap, parseErrorBody, parseRetryAfter, readText, requestIdOf, send } from './http.js';
import { PROTOCOLS, type ChatEnd, type ChatTarget } from './protocols.js';

export type { ChatEnd, ChatMessage } from './protocols.js';

export interface ChatRequest extends ChatTarget {
  signal?: AbortSignal;
  /** deadline for the whole call, retries and streaming included */
  timeoutMs?: number;
  /** attempts in all, first one included (default 3) */
  maxAttempts?: number;
  /** longest `retry-after` worth waiting for (default 60 s); longer ones fail at once */
  maxRetryAfterMs?: number;
  /** undici dispatcher (connection pool) to use instead of the global one */
  dispatcher?: Dispatcher;
  /** told before each retry, e.g. to log it */
  onRetry?: (info: RetryInfo) => void;
  /** told once the whole answer arrived: how it ended (e.g. cut at the length limit) */
  onEnd?: (end: ChatEnd) => void;
}

export interface RetryInfo {
  /** the attempt about to start (2 = first retry) */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  error: LlmError;
}

export const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/** Text chunks of the answer, in order, as they arrive. Throws LlmError. */
export async function* streamChat(req: ChatRequest): AsyncGenerator<string, void, undefined> {
  const protocol = PROTOCOLS[req.provider];
  if (!protocol) throw new Error(`Internal error: unknown LLM provider "${String(req.provider)}"`);
  registerSecret(req.apiKey);
  const target = {
    provider: req.provider,
    model: req.model,
    baseUrl: req.baseUrl,
    system: req.system,
    messages: req.messages,
    ...(req.apiKey ? { apiKey: req.apiKey } : {}),
    ...(req.maxTokens ? { maxTokens: req.maxTokens } : {}),
  };
  const maxAttempts = Math.max(1, req.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const maxRetryAfter = req.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  const scope = new CallScope(req.provider, `${req.provider} call (model ${req.model})`, req.timeoutMs, req.signal);
  const started = Date.now();
  const url = protocol.url(target);
  let emitted = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      let body: Dispatcher.ResponseData['body'] | undefined;
      let complete = false;
      let answered = false;
      let requestId: string | undefined;
      try {
        const res = await send({ method: 'POST', url, headers: protocol.headers(target), body: protocol.body(target), scope, ...(req.dispatcher ? { dispatcher: req.dispatcher } : {}) });
        body = res.body;
        answered = true;
        requestId = requestIdOf(res.headers);
        if (res.statusCode < 200 || res.statusCode >= 300) {
          throw httpError(res.statusCode, res.headers, await readText(res.body));
        }
        const chunks = protocol.parse(res.body, target);
        for (;;) {
          const next = await chunks.next();
          if (next.done) {
            complete = true;
            req.onEnd?.(next.value);
            return;
          }
          emitted++;
          yield next.value;
        }
      } catch (e) {
        const error = withRequestId(classify(e, answered), requestId);
        if (emitted > 0 || !error.retryable || attempt >= maxAttempts) throw error;
        const delay = error.retryAfterMs ?? backoffMs(attempt);
        const left = req.timeoutMs ? req.timeoutMs - (Date.now() - started) : Infinity;
        if (delay > maxRetryAfter || delay >= left) throw error;
        req.onRetry?.({ attempt: attempt + 1, maxAttempts, delayMs: delay, error });
        await scope.sleep(delay);
      } finally {
        // After the done marker only the stream's tail is left: read it so the connection can be
        // reused. Anything else (error, early return by the caller) drops the connection.
        if (complete) body?.dump().catch(() => undefined);
        else body?.destroy();
      }
    }
  } finally {
    scope.dispose();
  }

  function httpError(status: number, headers: Record<string, string | string[] | undefined>, text: string): LlmError {
    const parsed = parseErrorBody(text);
    const shouldRetry = firstHeader(headers, 'x-should-retry');
    const spendCap = isSpendCap(status, parsed.code, parsed.message);
    const retryable = spendCap ? false : shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : isRetryableStatus(status);
    const retryAfterMs = parseRetryAfter(headers);
    const requestId = requestIdOf(headers);
    const hint = spendCap ? 'The account is out of quota or at its spend limit: raise it with the provider; retrying will not help.' : protocol.hint(status, target, parsed.code);
    return new LlmError({
      provider: req.provider,
      kind: 'http',
      status,
      message: `${req.provider} returned ${status}${parsed.code ? ` (${parsed.code})` : ''}: ${parsed.message ?? 'no error message'}`,
      ...(parsed.message !== undefined ? { providerMessage: parsed.message } : {}),
      ...(parsed.code !== undefined ? { providerCode: parsed.code } : {}),
      retryable,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(requestId ? { requestId } : {}),
      ...(hint ? { hint } : {}),
      ...(req.apiKey ? { apiKey: req.apiKey } : {}),
    });
  }

  /** A failure inside an answered request names the provider's request id, if it sent one. */
  function withRequestId(e: LlmError, requestId: string | undefined): LlmError {
    if (!requestId || e.requestId || e.kind === 'aborted' || e.kind === 'timeout') return e;
    return new LlmError({
      provider: e.provider,
      kind: e.kind,
      message: e.message,
      ...(e.status !== undefined ? { status: e.status } : {}),
      ...(e.providerMessage !== undefined ? { providerMessage: e.providerMessage } : {}),
      ...(e.providerCode !== undefined ? { providerCode: e.providerCode } : {}),
      retryable: e.retryable,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
      requestId,
      ...(e.hint !== undefined ? { hint: e.hint } : {}),
    });
  }

  /** Any failure of an attempt as an LlmError; `answered`: the response had started. */
  function classify(e: unknown, answered: boolean): LlmError {
    if (scope.stopped) return scope.error()!;
    if (isLlmError(e)) return e;
    const socket = describeSocketError(e);
    if (answered) {
      return new LlmError({
        provider: req.provider,
        kind: 'stream-cut',
        message: `${req.provider} stream was cut off after ${emitted} chunk${emitted === 1 ? '' : 's'} (${socket.text})`,
        retryable: true,
        ...(req.apiKey ? { apiKey: req.apiKey } : {}),
      });
    }
    const hint =
      req.provider === 'ollama' && socket.code === 'ECONNREFUSED'
        ? 'Is Ollama running? Start it (ollama serve), or point STIGMER_LLM_BASE_URL / backend.local.llm.base_url at it.'
        : undefined;
    return new LlmError({
      provider: req.provider,
      kind: 'connection',
      message: `could not reach ${req.provider} at ${req.baseUrl}: ${socket.text}`,
      retryable: socket.code !== 'ENOTFOUND',
      ...(hint ? { hint } : {}),
      ...(req.apiKey ? { apiKey: req.apiKey } : {}),
    });
  }
}

/** "retrying in 1.0 s (attempt 2 of 3)": for logs. */
export function describeRetry(info: RetryInfo): string {
  return `${info.error.message}; retrying in ${formatMs(info.delayMs)} (attempt ${info.attempt} of ${info.maxAttempts})`;
}
