/**
 * The values the stack graph needs, computed from the stigmer config in one place, so the tasks
 * file stays declarative (`${{ tasks.resolve-config.outputs.temporal.port }}`).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { parseAddress, type Address } from '../util/address.js';
import { LLM_DEFAULTS } from './llm/defaults.js';
import { chooseTemporalCli, temporalRelease, type TemporalRelease } from './config/temporal.js';
import type { StigmerConfig } from './config/types.js';
import { ollamaRelease } from './config/ollama.js';

const DEFAULT_WAIT_TIMEOUT = '30s';

/** host and port of "host:port" (also "[::1]:7233"). */
function splitAddress(address: string): Address {
  const parsed = parseAddress(address);
  if (!parsed || parsed.port < 1) throw new UserError(`Expected an address like host:port, got ${JSON.stringify(address)}`);
  return parsed;
}

/**
 * The stack's values, computed from the config: what the resolve-config task outputs and what
 * `stigmer local status` describes a stopped stack by. Throws UserError for a value that cannot
 * work (an address that is not host:port, a Temporal version with no release).
 */
export function stackValues(config: StigmerConfig, env: Record<string, string | undefined> = process.env): Record<string, unknown> {
  const local = config.backend.local;
  const t = local.temporal;
  const { host, port } = t.managed ? { host: '127.0.0.1', port: t.port } : splitAddress(t.address);
  const release: TemporalRelease | undefined = t.managed ? temporalRelease(config) : undefined;
  // A CLI the user has (configured, or on PATH) is run as it is: nothing to download.
  const cli = release ? chooseTemporalCli(config, release, env) : undefined;
  const { ollama: ollamaSettings, ...llmSettings } = local.llm;
  const llm = { ...llmSettings, key_env: LLM_DEFAULTS[local.llm.provider].key_env ?? null };
  const server = {
    address: local.endpoint,
    url: `http://${local.endpoint}`,
    health_url: `http://${local.endpoint}/healthz`,
    port: splitAddress(local.endpoint).port,
    command: local.server.command,
    args: local.server.args,
    data_dir: local.data_dir,
  };
  const tls = t.tls;
  const on = (v: boolean): string | null => (v ? 'true' : null);
  const agentRunner = {
    command: local.agent_runner.command,
    args: local.agent_runner.args,
    // The environment contract of the agent-runner, by the names Temporal's environment
    // configuration uses (null ones are left out; the keys come from gather-secrets).
    env: {
      MODE: 'local',
      STIGMER_BACKEND_ENDPOINT: local.endpoint,
      TEMPORAL_SERVICE_ADDRESS: t.address,
      TEMPORAL_ADDRESS: t.address,
      TEMPORAL_NAMESPACE: t.namespace,
      TEMPORAL_TLS: on(tls.enabled),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: tls.enabled ? tls.server_ca_cert : null,
      TEMPORAL_TLS_SERVER_NAME: tls.enabled ? tls.server_name : null,
      TEMPORAL_TLS_CLIENT_CERT_PATH: tls.enabled ? tls.client_cert : null,
      TEMPORAL_TLS_CLIENT_KEY_PATH: tls.enabled ? tls.client_key : null,
      TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: on(tls.enabled && tls.disable_host_verification),
      STIGMER_LLM_PROVIDER: llm.provider,
      STIGMER_LLM_MODEL: llm.model,
      STIGMER_LLM_BASE_URL: llm.base_url,
    },
  };
  const dbFile = join(local.data_dir, 'temporal.db');
  const temporal = {
    managed: t.managed,
    /** which Temporal this is, for messages: a wait on an external one must say so */
    label: t.managed ? 'the managed Temporal' : 'the external Temporal',
    address: t.address,
    host,
    port,
    ui_port: t.managed && !t.headless ? t.ui_port : null,
    ui_url: t.managed && !t.headless ? `http://localhost:${t.ui_port}` : null,
    version: cli?.version ?? t.version,
    /** where the CLI comes from: download (stigmer's own, verified), configured, path */
    cli_source: cli?.source ?? null,
    /** download-temporal runs only for stigmer's own install */
    download: cli?.source === 'download',
    namespace: t.namespace,
    auth: t.auth,
    /** the grpc probe's tls block: null fields left out by the probe */
    tls: { enabled: tls.enabled, server_ca_cert: tls.server_ca_cert, server_name: tls.server_name, client_cert: tls.client_cert, client_key: tls.client_key, disable_host_verification: tls.disable_host_verification },
    profile: t.profile,
    profile_file: t.profile_file,
    /** where the API key is found (a name, never the key) */
    api_key_from: t.api_key_from,
    /** what set the address, for messages */
    address_source: t.managed ? 'managed by stigmer' : `from ${t.address_from}`,
    /** `temporal server start-dev ...` with the options of the config */
    start_args: t.managed ? startDevArgs(config, dbFile) : null,
    /** the ports start-dev binds (the UI's only when not headless) */
    ports: t.managed ? (t.headless ? [t.port] : [t.port, t.ui_port]) : [],
    archive_url: release?.archiveUrl ?? null,
    checksums_url: release?.checksumsUrl ?? null,
    install_dir: release?.installDir ?? null,
    bin: cli?.bin ?? null,
    db_file: dbFile,
    /** how long wait-port waits for the Temporal frontend (STIGMER_TEMPORAL_WAIT_TIMEOUT) */
    wait_timeout: env['STIGMER_TEMPORAL_WAIT_TIMEOUT'] || DEFAULT_WAIT_TIMEOUT,
  };
  const ollama = ollamaValues(config, ollamaSettings, env);
  return { temporal, llm, ollama, server, agent_runner: agentRunner, data_dir: local.data_dir, home: config.home };
}

/** The start-dev command line: stigmer's own flags, then the config's options, extra_args last. */
export function startDevArgs(config: StigmerConfig, dbFile: string): string[] {
  const t = config.backend.local.temporal;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(t.port)];
  if (t.headless) args.push('--headless');
  else args.push('--ui-port', String(t.ui_port));
  args.push('--db-filename', dbFile);
  const namespaces = new Set(['default', ...t.namespaces, ...(t.namespace ? [t.namespace] : [])]);
  for (const ns of namespaces) args.push('--namespace', ns);
  for (const [key, type] of Object.entries(t.search_attributes)) args.push('--search-attribute', `${key}=${type}`);
  for (const [key, value] of Object.entries(t.dynamic_config)) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  if (t.log_level) args.push('--log-level', t.log_level);
  args.push(...t.extra_args);
  return args;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * What find-ollama needs: the settings, where a managed `ollama serve` listens (base_url's port,
 * on 127.0.0.1 only) and the release to download. `used` is false for the hosted providers.
 */
function ollamaValues(config: StigmerConfig, o: StigmerConfig['backend']['local']['llm']['ollama'], env: Record<string, string | undefined>): Record<string, unknown> {
  const baseUrl = config.backend.local.llm.base_url;
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    url = undefined;
  }
  const port = url ? Number(url.port || (url.protocol === 'https:' ? 443 : 80)) : null;
  // a managed Ollama is one the stack can reach where the agent-runner looks: a loopback http URL
  const local = !!url && url.protocol === 'http:' && LOOPBACK.has(url.hostname) && (url.pathname === '/' || url.pathname === '');
  const release = ollamaRelease(config);
  return {
    used: config.backend.local.llm.provider === 'ollama',
    managed: o.managed,
    base_url: baseUrl,
    model: config.backend.local.llm.model,
    /** whether stigmer may run its own Ollama for this base_url */
    local,
    port,
    host: port ? `127.0.0.1:${port}` : null,
    version: o.version,
    archive_url: release?.archiveUrl ?? null,
    checksums_url: release?.checksumsUrl ?? null,
    install_dir: release?.installDir ?? null,
    install_bin: release?.bin ?? null,
    /** where Ollama keeps models: the user's own store, shared with an ollama they run themselves */
    models_dir: env['OLLAMA_MODELS'] || join(env['HOME'] || homedir(), '.ollama', 'models'),
  };
}
