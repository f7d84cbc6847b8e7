/**
 * `check-llm`: can the agent-runner use its LLM? Meant to be `optional: true` in the stack: its
 * failure is a warning that blocks nothing.
 *
 *   with: { provider, model, base_url, api_key_set }
 *
 * ollama: is base_url reachable and the model pulled (hint: ollama pull <model>).
 * anthropic / openai: is the key set (no network call: nothing leaves the machine to check it).
 *
 * The Ollama check itself is `checkOllama` (src/stack/llm/check.ts), shared with `stigmer local status`.
 */
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { LLM_DEFAULTS, LLM_PROVIDERS, isLlmProvider } from '../src/stack/llm/defaults.js';
import { checkOllama } from '../src/stack/llm/check.js';

export interface CheckLlmWith {
  provider: string;
  model: string;
  base_url: string;
  /** from gather-secrets' outputs.key_set (a boolean, or "true"/"false" from an expression) */
  api_key_set?: boolean | string;
}

const OLLAMA_TIMEOUT_MS = 3000;

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
    throw new TaskError(fail.llmUnreachable(baseUrl, model, why));
  }
  if (!check.modelPresent) {
    throw new TaskError(fail.modelMissing(baseUrl, model));
  }
  return { outputs: { provider, model, base_url: baseUrl, reachable: true, model_present: true }, summary: `ollama at ${baseUrl} has ${model}` };
}

const checkLlm: TaskKind<CheckLlmWith> = { name: 'check-llm', mode: 'oneshot', run };

export default checkLlm;
