/**
 * Ollama's model management: `GET /api/tags` (what is pulled) and `POST /api/pull` (an NDJSON
 * progress stream). Chat lives in chat.ts with the other providers.
 */
import type { Dispatcher } from 'undici';
import { LlmError, isLlmError } from './errors.js';
import { readLines } from './frames.js';
import { CallScope, describeSocketError, joinUrl, parseErrorBody, readText, send } from './http.js';

export interface OllamaModel {
  /** e.g. "qwen2.5-coder:7b" */
  name: string;
  /** bytes on disk */
  size?: number;
  modified_at?: string;
  digest?: string;
  parameter_size?: string;
  quantization_level?: string;
}

export interface OllamaCallOptions {
  baseUrl: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** "llama3.2" and "llama3.2:latest" name the same model. */
export function normalizeModelName(name: string): string {
  const trimmed = name.trim();
  const lastSegment = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? trimmed : `${trimmed}:latest`;
}

export function sameModel(a: string, b: string): boolean {
  return normalizeModelName(a) === normalizeModelName(b);
}

function unreachable(baseUrl: string, e: unknown): LlmError {
  const socket = describeSocketError(e);
  return new LlmError({
    provider: 'ollama',
    kind: 'connection',
    message: `could not reach ollama at ${baseUrl}: ${socket.text}`,
    retryable: true,
    ...(socket.code === 'ECONNREFUSED' ? { hint: 'Is Ollama running? Start it (ollama serve), or pass --base-url / set STIGMER_LLM_BASE_URL.' } : {}),
  });
}

/**
 * One call to Ollama within its scope: a stop (abort or deadline) is reported as such, an LlmError
 * as it is, anything else as Ollama not being reachable.
 */
async function inScope<T>(scope: CallScope, baseUrl: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (scope.stopped) throw scope.error();
    if (isLlmError(e)) throw e;
    throw unreachable(baseUrl, e);
  } finally {
    scope.dispose();
  }
}

async function httpFailure(status: number, body: Dispatcher.ResponseData['body'], what: string): Promise<LlmError> {
  const parsed = parseErrorBody(await readText(body));
  return new LlmError({
    provider: 'ollama',
    kind: 'http',
    status,
    message: `ollama ${what} returned ${status}: ${parsed.message ?? 'no error message'}`,
    ...(parsed.message !== undefined ? { providerMessage: parsed.message } : {}),
    retryable: status === 429 || status >= 500,
  });
}

/** The models Ollama has pulled, as `/api/tags` lists them. */
export async function listModels(opts: OllamaCallOptions): Promise<OllamaModel[]> {
  const scope = new CallScope('ollama', `ollama /api/tags at ${opts.baseUrl}`, opts.timeoutMs ?? 10_000, opts.signal);
  return inScope(scope, opts.baseUrl, async () => {
    const res = await send({ method: 'GET', url: joinUrl(opts.baseUrl, '/api/tags'), scope, ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
    if (res.statusCode !== 200) throw await httpFailure(res.statusCode, res.body, '/api/tags');
    const text = await readText(res.body, 16 * 1024 * 1024);
    let parsed: { models?: unknown };
    try {
      parsed = JSON.parse(text) as { models?: unknown };
    } catch {
      throw new LlmError({ provider: 'ollama', kind: 'protocol', message: `ollama /api/tags at ${opts.baseUrl} did not answer JSON` });
    }
    const models = Array.isArray(parsed.models) ? parsed.models : [];
    return models
      .filter((m): m is Record<string, unknown> => !!m && typeof m === 'object' && typeof (m as { name?: unknown }).name === 'string')
      .map((m) => {
        const details = (m['details'] ?? {}) as Record<string, unknown>;
        return {
          name: m['name'] as string,
          ...(typeof m['size'] === 'number' ? { size: m['size'] } : {}),
          ...(typeof m['modified_at'] === 'string' ? { modified_at: m['modified_at'] } : {}),
          ...(typeof m['digest'] === 'string' ? { digest: m['digest'] } : {}),
          ...(typeof details['parameter_size'] === 'string' ? { parameter_size: details['parameter_size'] } : {}),
          ...(typeof details['quantization_level'] === 'string' ? { quantization_level: details['quantization_level'] } : {}),
        };
      });
  });
}

/** One line of Ollama's pull stream. */
export interface PullProgress {
  /** "pulling manifest", "pulling 6a0746a1ec1a", "verifying sha256 digest", "success", ... */
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullOptions extends OllamaCallOptions {
  model: string;
}

/**
 * Pull a model, reporting each progress line. Resolves on the `success` line; an `{"error"}` line,
 * an error status or a stream that ends early rejects with LlmError.
 */
export async function pullModel(opts: PullOptions, onProgress: (p: PullProgress) => void): Promise<void> {
  // A pull can take many minutes: no deadline unless the caller sets one.
  const scope = new CallScope('ollama', `pull of ${opts.model}`, opts.timeoutMs, opts.signal);
  return inScope(scope, opts.baseUrl, async () => {
    const res = await send({
      method: 'POST',
      url: joinUrl(opts.baseUrl, '/api/pull'),
      body: { model: opts.model, stream: true },
      scope,
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    if (res.statusCode === 404 || res.statusCode === 405) {
      // Ollama answers an unknown model with 200 and an {"error"} line: a 404 here means no such route
      await res.body.dump().catch(() => undefined);
      throw new LlmError({
        provider: 'ollama',
        kind: 'http',
        status: res.statusCode,
        message: `the server at ${opts.baseUrl} has no /api/pull (HTTP ${res.statusCode}): it is not Ollama, or something in front of it does not pass pulls on`,
        retryable: false,
      });
    }
    if (res.statusCode !== 200) throw await httpFailure(res.statusCode, res.body, `pull of ${opts.model}`);
    try {
      for await (const line of readLines(res.body)) {
        if (line.trim() === '') continue;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new LlmError({ provider: 'ollama', kind: 'protocol', message: `ollama sent something that is not JSON while pulling: ${line.slice(0, 120)}` });
        }
        if (typeof obj['error'] === 'string') {
          throw new LlmError({ provider: 'ollama', kind: 'stream', message: `pull of ${opts.model} failed: ${obj['error']}`, providerMessage: obj['error'] });
        }
        if (typeof obj['status'] !== 'string') continue;
        onProgress({
          status: obj['status'],
          ...(typeof obj['digest'] === 'string' ? { digest: obj['digest'] } : {}),
          ...(typeof obj['total'] === 'number' ? { total: obj['total'] } : {}),
          ...(typeof obj['completed'] === 'number' ? { completed: obj['completed'] } : {}),
        });
        if (obj['status'] === 'success') return;
      }
    } catch (e) {
      if (scope.stopped || isLlmError(e)) throw e;
      throw new LlmError({ provider: 'ollama', kind: 'stream-cut', message: `pull of ${opts.model} was cut off (${describeSocketError(e).text})` });
    } finally {
      res.body.destroy();
    }
    throw new LlmError({ provider: 'ollama', kind: 'stream-cut', message: `pull of ${opts.model} ended before ollama reported success` });
  });
}
