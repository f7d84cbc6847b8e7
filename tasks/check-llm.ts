/**
 * `check-llm`: can the agent-runner use its LLM? Meant to be `optional: true` in the stack: its
 * failure is a warning that blocks nothing.
 *
 *   with: { provider, model, base_url, api_key_set }
 *
 * ollama: is base_url reachable and the model pulled (hint: ollama pull <model>).
 * anthropic / openai: is the key set (no network call: nothing leaves the machine to check it).
 *
 * The Ollama check (`checkOllama`, also used by `stigmer local status`) is one GET of /api/tags
 * through node's own http client, with the findings and wording of `checkProvider`
 * (src/stack/llm/check.ts). It runs on every `local start`, so it stays light: undici would add its
 * import (30-60 ms) and, before the CLI can exit, the background compile of its wasm HTTP parser
 * (~80 ms) to a start that otherwise takes ~200 ms on a running stack.
 */
import { fail, formatMs } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { LLM_DEFAULTS, LLM_PROVIDERS, isLlmProvider } from '../src/stack/llm/defaults.js';
import type { ProviderCheck } from '../src/stack/llm/check.js';

export interface CheckLlmWith {
  provider: string;
  model: string;
  base_url: string;
  /** from gather-secrets' outputs.key_set (a boolean, or "true"/"false" from an expression) */
  api_key_set?: boolean | string;
}

const OLLAMA_TIMEOUT_MS = 3000;
/** More of an /api/tags answer than this is not read. */
const TAGS_LIMIT = 16 * 1024 * 1024;

/** Is Ollama at `baseUrl` reachable, and is `model` pulled? Never throws. */
export async function checkOllama(baseUrl: string, model: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<ProviderCheck> {
  const [{ describeSocketError, joinUrl, parseErrorBody }, { sameModel }] = await Promise.all([import('../src/stack/llm/http.js'), import('../src/stack/llm/ollama.js')]);
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
  const { get } = parsedUrl.protocol === 'https:' ? await import('node:https') : await import('node:http');
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

async function run(ctx: TaskContext<CheckLlmWith>): Promise<TaskResult> {
  const { provider, model, base_url: baseUrl } = ctx.with;
  if (!isLlmProvider(provider)) {
    throw new TaskError(fail.invalidInput(`Expected with.provider to be one of ${LLM_PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`));
  }
  if (provider !== 'ollama') {
    const variable = LLM_DEFAULTS[provider].key_env!;
    const set = ctx.with.api_key_set === true || ctx.with.api_key_set === 'true';
    if (!set) throw new TaskError(fail.missingSecret(variable, `${provider} needs it`));
    return { outputs: { provider, model, base_url: baseUrl, reachable: true, key_set: true }, summary: `${provider} ${model} (${variable} is set)` };
  }
  ctx.output(`checking ollama at ${baseUrl}`);
  const check = await checkOllama(baseUrl, model, { signal: ctx.signal, timeoutMs: OLLAMA_TIMEOUT_MS });
  if (!check.reachable) {
    // "could not reach ollama at <url>: <why>"; keep the why.
    const why = check.message.replace(/^could not reach ollama at \S+: /, '');
    throw new TaskError(
      fail.taskError(
        `Ollama is not reachable at ${baseUrl} (${why})`,
        `Start Ollama (ollama serve), or set backend.local.llm.base_url / STIGMER_LLM_BASE_URL to where it runs; then pull the model: ollama pull ${model}`,
      ),
    );
  }
  if (!check.modelPresent) {
    throw new TaskError(fail.taskError(`Ollama at ${baseUrl} does not have the model ${model}`, `Pull it: ollama pull ${model} (or stigmer llm pull ${model})`));
  }
  return { outputs: { provider, model, base_url: baseUrl, reachable: true, model_present: true }, summary: `ollama at ${baseUrl} has ${model}` };
}

const checkLlm: TaskKind<CheckLlmWith> = { name: 'check-llm', mode: 'oneshot', run };

export default checkLlm;
