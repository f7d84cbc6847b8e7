/**
 * The one place that knows each LLM provider's default model, endpoint and key variable. The
 * config cascade, the agent-runner and `stigmer llm` all read it, so a default changes here only.
 */

export type LlmProvider = 'ollama' | 'anthropic' | 'openai';

export const LLM_PROVIDERS: readonly LlmProvider[] = ['ollama', 'anthropic', 'openai'];

export interface LlmProviderDefaults {
  /** model used when none is configured */
  model: string;
  /** API root; the client appends `/api/chat`, `/v1/messages` or `/chat/completions` */
  base_url: string;
  /** environment variable holding the API key (none for Ollama) */
  key_env?: 'ANTHROPIC_API_KEY' | 'OPENAI_API_KEY';
}

export const LLM_DEFAULTS: Record<LlmProvider, LlmProviderDefaults> = {
  ollama: { model: 'qwen2.5-coder:7b', base_url: 'http://localhost:11434' },
  // The Anthropic API takes hyphenated ids; "claude-sonnet-4.5" is not one of them.
  anthropic: { model: 'claude-sonnet-4-5', base_url: 'https://api.anthropic.com', key_env: 'ANTHROPIC_API_KEY' },
  openai: { model: 'gpt-4.1-mini', base_url: 'https://api.openai.com/v1', key_env: 'OPENAI_API_KEY' },
};

/** The provider each backend mode uses when none is configured. */
export const MODE_DEFAULT_PROVIDER: Record<'local' | 'cloud', LlmProvider> = { local: 'ollama', cloud: 'anthropic' };

/** `max_tokens` is required by the Anthropic Messages API; this bounds one answer. */
export const ANTHROPIC_MAX_TOKENS = 8192;

/** The `anthropic-version` header the client speaks. */
export const ANTHROPIC_VERSION = '2023-06-01';

export function isLlmProvider(value: unknown): value is LlmProvider {
  return typeof value === 'string' && (LLM_PROVIDERS as readonly string[]).includes(value);
}

/**
 * The provider a model id plainly belongs to, or undefined when it does not tell: `claude-*` is
 * Anthropic's, `gpt-*`, `chatgpt-*` and the `o1`/`o3`/`o4` families OpenAI's, and a `name:tag`
 * id or a well-known open model family (llama, qwen, mistral, ...) Ollama's.
 */
export function providerOfModel(model: string): LlmProvider | undefined {
  const m = model.trim().toLowerCase();
  if (/^claude-/.test(m)) return 'anthropic';
  if (/^(gpt-|chatgpt-|o[134](-|$))/.test(m)) return 'openai';
  if (m.includes(':') || /^(llama|qwen|mistral|mixtral|gemma|phi|deepseek|codellama|starcoder|granite|smollm|command-r|nomic-)/.test(m)) return 'ollama';
  return undefined;
}

/** A warning when `model` looks like another provider's than `provider`, else undefined. */
export function modelMismatch(model: string, provider: LlmProvider): string | undefined {
  const owner = providerOfModel(model);
  if (!owner || owner === provider) return undefined;
  const names = { ollama: 'an Ollama', anthropic: 'an Anthropic', openai: 'an OpenAI' } as const;
  return `model "${model}" looks like ${names[owner]} model, but the stack uses ${provider}: the provider will likely refuse it. Use a model of ${provider} (default ${LLM_DEFAULTS[provider].model}), or leave model out to use the runner's default.`;
}
