/**
 * The commented default config `stigmer init` writes. Only what names the mode is set; every
 * other key is shown commented out with its default, so a newer stigmer's defaults still apply.
 */
import { chmodSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../util/paths.js';
import { makePrivateDir } from '../../util/private-dir.js';
import { LLM_DEFAULTS } from '../llm/defaults.js';
import {
  DEFAULT_CLOUD_ENDPOINT,
  DEFAULT_ENDPOINT,
  DEFAULT_TEMPORAL_PORT,
  DEFAULT_TEMPORAL_UI_PORT,
  DEFAULT_TEMPORAL_VERSION,
  TEMPORAL_DOWNLOAD_BASE,
} from './defaults.js';

/**
 * Where the config's `$schema` comment points: a copy of the schema kept under the stigmer home,
 * refreshed whenever stigmer writes the config, so it survives an upgrade or an npx cache clean
 * (a path into the install folder would not).
 */
export function schemaCopyPath(home: string): string {
  return join(home, 'config.schema.json');
}

/** Copy the package's config schema next to the config (private, like the config). */
export function refreshSchemaCopy(home: string): void {
  try {
    makePrivateDir(home, 'STIGMER_HOME');
    copyFileSync(join(packageRoot, 'schemas', 'config.schema.json'), schemaCopyPath(home));
    chmodSync(schemaCopyPath(home), 0o600);
  } catch {
    // only editors read it: a read-only home must not stop anything
  }
}

/**
 * Write the commented default config when there is none (what `init` and `local start` do);
 * true when it was written.
 */
export function ensureConfigFile(home: string, file: string, write: (file: string, text: string) => void): boolean {
  makePrivateDir(home, 'STIGMER_HOME'); // a home that can never work is one clear line here
  refreshSchemaCopy(home);
  if (existsSync(file)) return false;
  write(file, defaultConfigText(home));
  return true;
}

export function defaultConfigText(home: string): string {
  const schema = schemaCopyPath(home);
  const { ollama, anthropic, openai } = LLM_DEFAULTS;
  return `# yaml-language-server: $schema=${schema}
#
# stigmer config. Every key is optional; a commented key shows its default.
# Precedence, highest first: flags of \`stigmer local start\`, environment variables,
# .env in the working directory, this file, defaults. See: stigmer config list --show-origin
backend:
  type: local                       # local | cloud
  local:
    # endpoint: ${DEFAULT_ENDPOINT}     # stigmer-server address (env STIGMER_SERVER_ADDRESS)
    # data_dir: data                # relative to this directory (env STIGMER_DATA_DIR)
    llm:
      # ollama needs no API key. anthropic needs ANTHROPIC_API_KEY, openai OPENAI_API_KEY
      # (from the environment or .env, or asked for when you start the stack).
      provider: ollama              # ollama | anthropic | openai (env STIGMER_LLM_PROVIDER)
      # model: ${ollama.model}       # default follows the provider: ${anthropic.model} (anthropic), ${openai.model} (openai)
      # base_url: ${ollama.base_url}   # default follows the provider
    temporal:
      # managed: stigmer downloads the Temporal CLI and runs its dev server on 127.0.0.1.
      # For your own server: managed: false and address: host:port (or TEMPORAL_SERVICE_ADDRESS).
      managed: true
      # version: ${DEFAULT_TEMPORAL_VERSION}              # Temporal CLI release (env STIGMER_TEMPORAL_VERSION)
      # port: ${DEFAULT_TEMPORAL_PORT}                   # gRPC frontend
      # ui_port: ${DEFAULT_TEMPORAL_UI_PORT}                # web UI
      # download_url: ${TEMPORAL_DOWNLOAD_BASE}   # or a mirror (env STIGMER_TEMPORAL_DOWNLOAD_URL)
    # server:
    #   command: /path/to/stigmer-server   # env STIGMER_SERVER_BIN; default: the bundled reference server
    #   args: []
    # agent_runner:
    #   command: /path/to/agent-runner     # env STIGMER_AGENT_RUNNER_BIN; default: the bundled reference agent-runner
    #   args: []
  # cloud:
  #   endpoint: ${DEFAULT_CLOUD_ENDPOINT}
`;
}
