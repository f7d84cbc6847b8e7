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
      llm?: { provider?: LlmProvider; model?: string; base_url?: string; ollama?: { managed?: 'auto' | boolean; version?: string; download_url?: string } };
      temporal?: {
        managed?: boolean;
        address?: string;
        version?: string;
        port?: number;
        ui_port?: number;
        download_url?: string;
        namespace?: string;
        auth?: TemporalAuth;
        tls?: Partial<TemporalTls>;
        profile?: string;
        namespaces?: string[];
        search_attributes?: Record<string, string>;
        dynamic_config?: Record<string, unknown>;
        headless?: boolean;
        log_level?: TemporalLogLevel;
        extra_args?: string[];
        bin?: string;
      };
      server?: { command?: string; args?: string[] };
      agent_runner?: { command?: string; args?: string[] };
    };
    cloud?: { endpoint?: string };
  };
}

export type TemporalAuth = 'none' | 'api-key' | 'mtls';
export type TemporalLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'never';

/** TLS to an external Temporal (file paths absolute once resolved). */
export interface TemporalTls {
  enabled: boolean;
  server_ca_cert: string | null;
  server_name: string | null;
  client_cert: string | null;
  client_key: string | null;
  disable_host_verification: boolean;
}

/** How stigmer connects to the Temporal in use (external settings; a managed one: plaintext, no key). */
export interface TemporalConnection {
  namespace: string;
  auth: TemporalAuth;
  tls: TemporalTls;
  /** the Temporal profile in use, and the TOML file it was read from */
  profile: string | null;
  profile_file: string | null;
  /** where an API key is found (a name: TEMPORAL_API_KEY, .env, the profile), never the key */
  api_key_from: string | null;
  /** what set the address, for messages: "TEMPORAL_ADDRESS", the config file, "managed" */
  address_from: string;
}

/** start-dev options of the managed server, passed through. */
export interface TemporalDevOptions {
  /** extra namespaces (default is always created) */
  namespaces: string[];
  /** KEY: Type */
  search_attributes: Record<string, string>;
  /** KEY: value (passed as JSON) */
  dynamic_config: Record<string, unknown>;
  headless: boolean;
  log_level: TemporalLogLevel | null;
  extra_args: string[];
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
      llm: { provider: LlmProvider; model: string; base_url: string; ollama: OllamaSettings };
      temporal: {
        managed: boolean;
        /** the address in use: 127.0.0.1:<port> when managed, else the external one */
        address: string;
        version: string;
        port: number;
        ui_port: number;
        /** release base URL, without a trailing slash */
        download_url: string;
        /** a Temporal CLI of the user's to run instead of downloading one (absolute), or null */
        bin: string | null;
      } & TemporalConnection &
        TemporalDevOptions;
      server: CommandSpec;
      agent_runner: CommandSpec;
    };
    cloud: { endpoint: string };
  };
}

/** How stigmer treats Ollama (used when the provider is ollama). */
export interface OllamaSettings {
  /** auto: use one answering at base_url, else run `ollama` from PATH, else download it; true: always run its own; false: never */
  managed: OllamaManaged;
  /** the release downloaded when there is no Ollama */
  version: string;
  /** release base URL, without a trailing slash */
  download_url: string;
}

export type OllamaManaged = 'auto' | 'true' | 'false';

/** Where an effective value came from, highest precedence first. */
export type Origin = 'flag' | 'env' | '.env' | 'file' | 'profile' | 'default';

/** One source of a key's value in the cascade. */
export interface Layer {
  origin: Origin;
  /** 0 flag, 1 environment (env and .env), 2 file, 3 Temporal profile */
  rank: number;
  value: unknown;
  source: string;
}

/** The command-line flags that take part in the cascade. */
export interface ConfigFlags {
  llmProvider?: string | undefined;
  llmModel?: string | undefined;
  llmBaseUrl?: string | undefined;
  /** an external Temporal: implies managed false */
  temporalAddress?: string | undefined;
}
