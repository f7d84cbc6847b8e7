/**
 * Two shapes of the stigmer config: what `config.yaml` says (every key optional), and the
 * resolved config after the cascade (every key filled in). `schemas/config.schema.json` is the
 * source of truth for the first; keep them in step.
 */
import type { LlmProvider } from '../llm/defaults.js';

export type BackendType = 'local' | 'cloud';

/** What `config.yaml` holds. */
export interface ConfigFile {
  backend?: {
    type?: BackendType;
    local?: {
      endpoint?: string;
      data_dir?: string;
      llm?: { provider?: LlmProvider; model?: string; base_url?: string };
      temporal?: {
        managed?: boolean;
        address?: string;
        version?: string;
        port?: number;
        ui_port?: number;
        download_url?: string;
      };
      server?: { command?: string; args?: string[] };
      agent_runner?: { command?: string; args?: string[] };
    };
    cloud?: { endpoint?: string };
  };
}

export interface CommandSpec {
  /** the executable */
  command: string;
  /** its arguments (never secrets: those travel in the environment) */
  args: string[];
}

/** The effective config: the cascade applied, paths absolute. `${{ config.* }}` reads this. */
export interface StigmerConfig {
  /** the stigmer home (`STIGMER_HOME`, else ~/.stigmer); not a file key */
  home: string;
  backend: {
    type: BackendType;
    local: {
      endpoint: string;
      /** absolute */
      data_dir: string;
      llm: { provider: LlmProvider; model: string; base_url: string };
      temporal: {
        managed: boolean;
        /** the address in use: 127.0.0.1:<port> when managed, else the external one */
        address: string;
        version: string;
        port: number;
        ui_port: number;
        /** release base URL, without a trailing slash */
        download_url: string;
      };
      server: CommandSpec;
      agent_runner: CommandSpec;
    };
    cloud: { endpoint: string };
  };
}

/** Where an effective value came from, highest precedence first. */
export type Origin = 'flag' | 'env' | '.env' | 'file' | 'default';

/** The command-line flags that take part in the cascade. */
export interface ConfigFlags {
  llmProvider?: string | undefined;
  llmModel?: string | undefined;
  llmBaseUrl?: string | undefined;
  /** an external Temporal: implies managed false */
  temporalAddress?: string | undefined;
}
