/** The LLM clients: one streaming chat call for every provider, Ollama model management, a check. */
export { LLM_DEFAULTS, LLM_PROVIDERS, MODE_DEFAULT_PROVIDER, isLlmProvider, type LlmProvider, type LlmProviderDefaults } from './defaults.js';
export { LlmError, isLlmError, type LlmErrorKind } from './errors.js';
export { streamChat, describeRetry, DEFAULT_MAX_ATTEMPTS, type ChatRequest, type ChatMessage, type RetryInfo } from './chat.js';
export { listModels, pullModel, normalizeModelName, sameModel, type OllamaModel, type PullProgress, type PullOptions, type OllamaCallOptions } from './ollama.js';
export { checkOllama, type ProviderCheck } from './check.js';
