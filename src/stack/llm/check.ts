/**
 * `checkProvider`: can the configured provider be used? The stack's `check-llm` task and
 * `stigmer local status` call it. It never throws and never prints a key.
 */
import type { Dispatcher } from 'undici';
import { LLM_DEFAULTS, type LlmProvider } from './defaults.js';
import { isLlmError } from './errors.js';
import { listModels, sameModel } from './ollama.js';

export interface CheckProviderOptions {
  provider: LlmProvider;
  model: string;
  baseUrl: string;
  apiKey?: string;
  signal?: AbortSignal;
  /** for the Ollama probe (default 3 s) */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export interface ProviderCheck {
  /** ollama: /api/tags answered; anthropic/openai: the key is set (no network call is made) */
  reachable: boolean;
  /** ollama only: the model is among the pulled ones */
  modelPresent?: boolean;
  /** anthropic/openai: whether the key variable has a value */
  keySet?: boolean;
  /** one line saying what was found */
  message: string;
  /** what to do about it, when something is missing */
  hint?: string;
}

export async function checkProvider(opts: CheckProviderOptions): Promise<ProviderCheck> {
  if (opts.provider !== 'ollama') {
    const variable = LLM_DEFAULTS[opts.provider].key_env!;
    if (!opts.apiKey) {
      return {
        reachable: false,
        keySet: false,
        message: `${variable} is not set (needed for ${opts.provider})`,
        hint: `Set ${variable} in the environment or in .env.`,
      };
    }
    return { reachable: true, keySet: true, message: `${opts.provider} ${opts.model} (${variable} is set)` };
  }
  try {
    const models = await listModels({
      baseUrl: opts.baseUrl,
      timeoutMs: opts.timeoutMs ?? 3000,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    if (models.some((m) => sameModel(m.name, opts.model))) {
      return { reachable: true, modelPresent: true, message: `ollama at ${opts.baseUrl} has ${opts.model}` };
    }
    return {
      reachable: true,
      modelPresent: false,
      message: `ollama at ${opts.baseUrl} does not have ${opts.model} pulled`,
      hint: `stigmer llm pull ${opts.model}`,
    };
  } catch (e) {
    const message = isLlmError(e) ? e.message : `could not reach ollama at ${opts.baseUrl}: ${String(e)}`;
    return {
      reachable: false,
      message,
      hint: `Start Ollama (ollama serve), or point backend.local.llm.base_url / STIGMER_LLM_BASE_URL at it; then stigmer llm pull ${opts.model}`,
    };
  }
}
