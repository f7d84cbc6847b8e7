/**
 * `checkOllama`: is Ollama reachable, and is the model pulled? The stack's `check-llm` task and
 * `stigmer local status` call it. It never throws.
 *
 * One GET of /api/tags through node's own http client. It runs on every `local start`, so it
 * stays light: undici would add its import (30-60 ms) and, before the CLI can exit, the background
 * compile of its wasm HTTP parser (~80 ms) to a start that otherwise takes ~200 ms on a running
 * stack.
 */
import { formatMs } from '../../util/format.js';

export interface ProviderCheck {
  /** /api/tags answered */
  reachable: boolean;
  /** the model is among the pulled ones */
  modelPresent?: boolean;
  /** one line saying what was found */
  message: string;
  /** what to do about it, when something is missing */
  hint?: string;
}

/** More of an /api/tags answer than this is not read. */
const TAGS_LIMIT = 16 * 1024 * 1024;

/** The modules checkOllama loads, in one pass of the loader (node:https loads node:http too). */
const modules = (): Promise<[typeof import('./http.js'), typeof import('./ollama.js'), typeof import('node:http')]> =>
  Promise.all([import('./http.js'), import('./ollama.js'), import('node:http')]);

/** Load what checkOllama needs, so that a caller can start it later without waiting on the loader. */
export async function preloadOllamaCheck(): Promise<void> {
  await modules();
}

/** Is Ollama at `baseUrl` reachable, and is `model` pulled? Never throws. */
export async function checkOllama(baseUrl: string, model: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<ProviderCheck> {
  const [{ describeSocketError, joinUrl, parseErrorBody }, { sameModel }, http] = await modules();
  const what = `ollama /api/tags at ${baseUrl}`;
  const unreachable = (message: string): ProviderCheck => ({
    reachable: false,
    message,
    hint: `Start Ollama (ollama serve), or point backend.local.llm.base_url / STIGMER_LLM_BASE_URL at it; then stigmer llm pull ${model}`,
  });
  const url = joinUrl(baseUrl, '/api/tags');
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    return unreachable(`could not reach ollama at ${baseUrl}: not a URL`);
  }
  const { get } = parsedUrl.protocol === 'https:' ? await import('node:https') : http;
  const answer = await new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
    const socketError = (err: unknown): void => resolve({ error: `could not reach ollama at ${baseUrl}: ${describeSocketError(err).text}` });
    const req = get(parsedUrl, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < TAGS_LIMIT) body += d;
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', socketError);
    });
    const stop = (error: string): void => {
      resolve({ error });
      req.destroy();
    };
    const timer = setTimeout(() => stop(`${what} did not finish within ${formatMs(o.timeoutMs)}`), o.timeoutMs);
    const onAbort = (): void => stop(`${what} was cancelled`);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    });
    req.once('error', socketError);
    if (o.signal?.aborted) onAbort();
  });
  if ('error' in answer) return unreachable(answer.error);
  if (answer.status !== 200) return unreachable(`ollama /api/tags returned ${answer.status}: ${parseErrorBody(answer.body).message ?? 'no error message'}`);
  let names: string[];
  try {
    const models = (JSON.parse(answer.body) as { models?: unknown }).models;
    names = (Array.isArray(models) ? models : []).flatMap((m: unknown) => {
      const name = m && typeof m === 'object' ? (m as { name?: unknown }).name : undefined;
      return typeof name === 'string' ? [name] : [];
    });
  } catch {
    return unreachable(`${what} did not answer JSON`);
  }
  if (names.some((n) => sameModel(n, model))) return { reachable: true, modelPresent: true, message: `ollama at ${baseUrl} has ${model}` };
  return { reachable: true, modelPresent: false, message: `ollama at ${baseUrl} does not have ${model} pulled`, hint: `stigmer llm pull ${model}` };
}
