/** Defaults of the local stack that are not the LLM's (those live in src/stack/llm/defaults.ts). */

/** The newest stable Temporal CLI release we verified (1.25.1 is a server version, not a CLI one). */
export const DEFAULT_TEMPORAL_VERSION = '1.8.2';
/** Official release location; a mirror has the same layout under its own base. */
export const TEMPORAL_DOWNLOAD_BASE = 'https://github.com/temporalio/cli/releases/download';
export const DEFAULT_TEMPORAL_PORT = 7233;
export const DEFAULT_TEMPORAL_UI_PORT = 8233;
/** The managed Temporal binds here only: nothing reaches beyond loopback. */
export const MANAGED_TEMPORAL_HOST = '127.0.0.1';
/** The newest stable Ollama release verified (contracts.md section 8). */
export const DEFAULT_OLLAMA_VERSION = '0.32.15';
/** Official Ollama release location; a mirror has the same layout: {base}/v{V}/<asset> and sha256sum.txt. */
export const OLLAMA_DOWNLOAD_BASE = 'https://github.com/ollama/ollama/releases/download';
export const DEFAULT_ENDPOINT = 'localhost:50051';
export const DEFAULT_CLOUD_ENDPOINT = 'api.stigmer.ai:443';
export const TEMPORAL_NAMESPACE = 'default';
export const CONFIG_FILE_NAME = 'config.yaml';
