/**
 * The agent-runner's environment contract (zero-config analysis, "Pass Config to Agent Runner"),
 * read and checked before anything else happens. A missing or invalid variable is one line that
 * names it; the runner then exits 2 without touching the network.
 */
import { hostname } from 'node:os';
import type { GrpcTls } from '../../process/grpc-client.js';
import { parseDuration } from '../../util/duration.js';
import { parseAddress } from '../../util/address.js';
import { LLM_DEFAULTS, LLM_PROVIDERS, MODE_DEFAULT_PROVIDER, isLlmProvider, type LlmProvider } from '../llm/defaults.js';

export interface HostPort {
  host: string;
  port: number;
  /** as given, for messages */
  text: string;
}

export interface RunnerConfig {
  mode: 'local' | 'cloud';
  /** STIGMER_BACKEND_ENDPOINT: the stigmer-server */
  server: HostPort;
  /** TEMPORAL_SERVICE_ADDRESS */
  temporal: HostPort;
  /** TEMPORAL_NAMESPACE (default "default") */
  temporalNamespace: string;
  /** TEMPORAL_TLS and TEMPORAL_TLS_* (Temporal's environment configuration names) */
  temporalTls: GrpcTls;
  /** TEMPORAL_API_KEY: sent as `authorization: Bearer`, turns TLS on unless TEMPORAL_TLS=false */
  temporalApiKey?: string;
  llm: {
    provider: LlmProvider;
    model: string;
    baseUrl: string;
    apiKey?: string;
  };
  /** STIGMER_RUNNER_SLOTS: executions run at once (default 4) */
  slots: number;
  /** STIGMER_LLM_TIMEOUT: deadline of one LLM call, retries included (default 10 min) */
  llmTimeoutMs: number;
  /** STIGMER_TEMPORAL_CONNECT_TIMEOUT: how long to wait for Temporal's port (default 30 s) */
  temporalConnectTimeoutMs: number;
  /** STIGMER_SERVER_CONNECT_TIMEOUT: how long to wait for the server's /healthz (default 30 s) */
  serverConnectTimeoutMs: number;
  /** STIGMER_RUNNER_GRACE: on SIGTERM, how long in-flight executions may finish (default 5 s) */
  graceMs: number;
  /** STIGMER_RUNNER_ID, else host-pid: how the server tells runners apart */
  runnerId: string;
}

/** A variable is missing or invalid; the message names it. */
export class RunnerEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunnerEnvError';
  }
}

function get(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function hostPort(env: NodeJS.ProcessEnv, name: string, what: string, example: string): HostPort {
  const value = get(env, name);
  if (value === undefined) throw new RunnerEnvError(`${name} is not set; expected ${what} as host:port, e.g. ${example}`);
  const address = parseAddress(value);
  if (!address || address.port < 1) throw new RunnerEnvError(`Expected ${name} to be host:port (e.g. ${example}), got ${JSON.stringify(value)}`);
  return { ...address, text: value };
}

function duration(env: NodeJS.ProcessEnv, name: string, fallbackMs: number): number {
  const value = get(env, name);
  if (value === undefined) return fallbackMs;
  let ms: number;
  try {
    ms = parseDuration(value, name);
  } catch (e) {
    throw new RunnerEnvError((e as Error).message);
  }
  if (ms <= 0) throw new RunnerEnvError(`Expected ${name} to be a duration above zero, got ${JSON.stringify(value)}`);
  return ms;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = get(env, name)?.toLowerCase();
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new RunnerEnvError(`Expected ${name} to be true or false, got ${JSON.stringify(get(env, name))}`);
}

/** TLS by Temporal's environment configuration names; a client certificate needs its key. */
function readTls(env: NodeJS.ProcessEnv): GrpcTls {
  const tls: GrpcTls = {};
  const enabled = flag(env, 'TEMPORAL_TLS');
  if (enabled !== undefined) tls.enabled = enabled;
  const set = (k: 'server_ca_cert' | 'server_name' | 'client_cert' | 'client_key', name: string): void => {
    const v = get(env, name);
    if (v !== undefined) tls[k] = v;
  };
  set('server_ca_cert', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  set('server_name', 'TEMPORAL_TLS_SERVER_NAME');
  set('client_cert', 'TEMPORAL_TLS_CLIENT_CERT_PATH');
  set('client_key', 'TEMPORAL_TLS_CLIENT_KEY_PATH');
  if (flag(env, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION')) tls.disable_host_verification = true;
  if (!!tls.client_cert !== !!tls.client_key) {
    throw new RunnerEnvError(`${tls.client_cert ? 'TEMPORAL_TLS_CLIENT_CERT_PATH' : 'TEMPORAL_TLS_CLIENT_KEY_PATH'} is set without ${tls.client_cert ? 'TEMPORAL_TLS_CLIENT_KEY_PATH' : 'TEMPORAL_TLS_CLIENT_CERT_PATH'}: a client certificate needs its key`);
  }
  return tls;
}

/** Read the environment; throws RunnerEnvError naming the first bad variable. */
export function readRunnerEnv(env: NodeJS.ProcessEnv): RunnerConfig {
  const modeText = get(env, 'MODE');
  if (modeText === undefined) throw new RunnerEnvError('MODE is not set; expected local or cloud');
  if (modeText !== 'local' && modeText !== 'cloud') throw new RunnerEnvError(`Expected MODE to be local or cloud, got ${JSON.stringify(modeText)}`);
  const mode = modeText;

  const server = hostPort(env, 'STIGMER_BACKEND_ENDPOINT', 'the stigmer-server address', 'localhost:50051');
  const temporal = hostPort(env, get(env, 'TEMPORAL_SERVICE_ADDRESS') || !get(env, 'TEMPORAL_ADDRESS') ? 'TEMPORAL_SERVICE_ADDRESS' : 'TEMPORAL_ADDRESS', 'the Temporal frontend address', 'localhost:7233');
  const temporalNamespace = get(env, 'TEMPORAL_NAMESPACE') ?? 'default';
  const temporalApiKey = get(env, 'TEMPORAL_API_KEY');
  const temporalTls = readTls(env);

  const providerText = get(env, 'STIGMER_LLM_PROVIDER');
  if (providerText !== undefined && !isLlmProvider(providerText)) {
    throw new RunnerEnvError(`Expected STIGMER_LLM_PROVIDER to be one of ${LLM_PROVIDERS.join(', ')}, got ${JSON.stringify(providerText)}`);
  }
  const provider: LlmProvider = providerText ?? MODE_DEFAULT_PROVIDER[mode];
  const defaults = LLM_DEFAULTS[provider];
  const model = get(env, 'STIGMER_LLM_MODEL') ?? defaults.model;
  const baseUrl = get(env, 'STIGMER_LLM_BASE_URL') ?? defaults.base_url;
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new RunnerEnvError(`Expected STIGMER_LLM_BASE_URL to be an http:// or https:// URL, got ${JSON.stringify(baseUrl)}`);
  }
  let apiKey: string | undefined;
  if (defaults.key_env) {
    apiKey = get(env, defaults.key_env);
    if (apiKey === undefined) {
      const why = providerText ? `when STIGMER_LLM_PROVIDER is ${provider}` : `for ${provider}, the provider MODE=${mode} uses when STIGMER_LLM_PROVIDER is not set`;
      throw new RunnerEnvError(`${defaults.key_env} is not set; it is required ${why}`);
    }
  }

  const slotsText = get(env, 'STIGMER_RUNNER_SLOTS');
  const slots = slotsText === undefined ? 4 : Number(slotsText);
  if (!Number.isInteger(slots) || slots < 1 || slots > 256) {
    throw new RunnerEnvError(`Expected STIGMER_RUNNER_SLOTS to be a whole number from 1 to 256, got ${JSON.stringify(slotsText)}`);
  }

  return {
    mode,
    server,
    temporal,
    temporalNamespace,
    temporalTls,
    ...(temporalApiKey ? { temporalApiKey } : {}),
    llm: { provider, model, baseUrl, ...(apiKey ? { apiKey } : {}) },
    slots,
    llmTimeoutMs: duration(env, 'STIGMER_LLM_TIMEOUT', 600_000),
    temporalConnectTimeoutMs: duration(env, 'STIGMER_TEMPORAL_CONNECT_TIMEOUT', 30_000),
    serverConnectTimeoutMs: duration(env, 'STIGMER_SERVER_CONNECT_TIMEOUT', 30_000),
    graceMs: duration(env, 'STIGMER_RUNNER_GRACE', 5_000),
    runnerId: get(env, 'STIGMER_RUNNER_ID') ?? `${hostname()}-${process.pid}`,
  };
}
