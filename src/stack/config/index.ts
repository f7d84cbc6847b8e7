/**
 * The config cascade. Highest precedence first:
 *
 *   flags        --llm-provider, --llm-model, --llm-base-url, --temporal-address
 *   env          STIGMER_LLM_PROVIDER, TEMPORAL_SERVICE_ADDRESS, STIGMER_*_BIN, ... (see keys.ts)
 *   .env         in the working directory; the real environment wins over it
 *   file         <home>/config.yaml
 *   default      mode-aware: ollama qwen2.5-coder:7b, managed Temporal 1.8.2 on 7233/8233
 *
 * Two rules keep the result coherent:
 * - Setting a Temporal address (flag or environment) means an external Temporal (managed: false).
 * - A model or base URL belongs to a provider: one set at a level whose provider (the one in
 *   effect from that level down) is not the effective provider is ignored, and the effective
 *   provider's default is used. So `STIGMER_LLM_PROVIDER=anthropic` over a file written for Ollama
 *   gives claude-sonnet-4-5, not qwen.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../../util/errors.js';
import { packageRoot, stigmerHome } from '../../util/paths.js';
import { LLM_DEFAULTS, MODE_DEFAULT_PROVIDER, type LlmProvider } from '../llm/defaults.js';
import { CONFIG_KEYS, getPath, keySpec, parseKeyValue, type KeySpec } from './keys.js';
import { readConfigFile } from './file.js';
import { readDotenv } from './dotenv.js';
import {
  CONFIG_FILE_NAME,
  DEFAULT_CLOUD_ENDPOINT,
  DEFAULT_ENDPOINT,
  DEFAULT_TEMPORAL_PORT,
  DEFAULT_TEMPORAL_UI_PORT,
  DEFAULT_TEMPORAL_VERSION,
  DEFAULT_OLLAMA_VERSION,
  OLLAMA_DOWNLOAD_BASE,
  MANAGED_TEMPORAL_HOST,
  TEMPORAL_DOWNLOAD_BASE,
} from './defaults.js';
import type { BackendType, CommandSpec, ConfigFlags, Layer, OllamaManaged, Origin, StigmerConfig } from './types.js';
import { err, ok, type Result } from '../../model/result.js';
import { prepareExternal, resolveConnection, resolveDevOptions, type CascadeView } from './temporal-connection.js';

export type { StigmerConfig, ConfigFile, ConfigFlags, Origin, CommandSpec } from './types.js';
export { CONFIG_KEYS } from './keys.js';
export { readDotenv, loadDotenv } from './dotenv.js';
export { temporalRelease, type TemporalRelease } from './temporal.js';

export interface LoadConfigOptions {
  /** the stigmer home; default STIGMER_HOME, else ~/.stigmer */
  home?: string;
  /** where `.env` is looked for; default process.cwd() */
  cwd?: string;
  /** the real environment; default process.env */
  env?: Record<string, string | undefined>;
  flags?: ConfigFlags;
}

export interface LoadedConfig {
  config: StigmerConfig;
  /** dotted key -> where its effective value came from */
  origins: Record<string, Origin>;
  /** dotted key -> the precise source: "--llm-model", "STIGMER_LLM_PROVIDER", ".env: ...", the file */
  sources: Record<string, string>;
  /** the config file's path */
  file: string;
  /** whether the config file exists */
  exists: boolean;
  /** keys of the real Stigmer CLI the file holds (kept as they are, unused): dotted key -> value */
  kept: Record<string, unknown>;
}

/** `<home>/config.yaml` */
export function configPath(home: string = stigmerHome()): string {
  return join(home, CONFIG_FILE_NAME);
}


/** Apply the cascade. Throws UserError (exit 2) for an invalid file, flag or variable. */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const home = resolve(options.home ?? stigmerHome(env as NodeJS.ProcessEnv));
  const cwd = options.cwd ?? process.cwd();
  const flags = options.flags ?? {};
  const file = configPath(home);
  const read = readConfigFile(file);
  const dotenv = readDotenv(cwd);
  const dotenvFile = join(cwd, '.env');

  const layersOf = (spec: KeySpec): Layer[] => {
    const out: Layer[] = [];
    const flagRaw = spec.flag ? flags[spec.flag] : undefined;
    if (flagRaw !== undefined && flagRaw !== '') {
      out.push({ origin: 'flag', rank: 0, value: parsed(spec, flagRaw, spec.flagName ?? spec.key), source: spec.flagName ?? spec.key });
    }
    if (spec.env) {
      // The first variable set wins, the real environment before .env.
      const names = [spec.env, ...(spec.envAliases ?? [])];
      const real = names.find((n) => env[n] !== undefined && env[n] !== '');
      const inDotenv = names.find((n) => dotenv[n] !== undefined && dotenv[n] !== '');
      if (real) {
        out.push({ origin: 'env', rank: 1, value: parsed(spec, env[real]!, real), source: real });
      } else if (inDotenv) {
        const what = `${inDotenv} in ${dotenvFile}`;
        out.push({ origin: '.env', rank: 1, value: parsed(spec, dotenv[inDotenv]!, what), source: what });
      }
    }
    const fromFile = getPath(read.data, spec.key);
    if (fromFile !== undefined) out.push({ origin: 'file', rank: 2, value: fromFile, source: file });
    return out;
  };

  const origins: Record<string, Origin> = {};
  const sources: Record<string, string> = {};
  const layers: Record<string, Layer[]> = {};
  for (const spec of CONFIG_KEYS) layers[spec.key] = layersOf(spec);
  const pick = (key: string, fallback: unknown, fallbackSource = 'default', accept: (l: Layer) => boolean = () => true): unknown => {
    const layer = layers[key]!.find(accept);
    origins[key] = layer ? layer.origin : 'default';
    sources[key] = layer ? layer.source : fallbackSource;
    return layer ? layer.value : fallback;
  };

  const type = pick('backend.type', 'local') as BackendType;
  const endpoint = pick('backend.local.endpoint', DEFAULT_ENDPOINT) as string;
  const dataDir = expandPath(pick('backend.local.data_dir', join(home, 'data')) as string, home);

  // LLM: the model and base URL follow the provider.
  const providerLayers = layers['backend.local.llm.provider']!;
  const defaultProvider = MODE_DEFAULT_PROVIDER.local;
  const provider = pick('backend.local.llm.provider', defaultProvider) as LlmProvider;
  const providerAt = (rank: number): LlmProvider => (providerLayers.find((l) => l.rank >= rank)?.value as LlmProvider | undefined) ?? defaultProvider;
  const belongs = (l: Layer): boolean => providerAt(l.rank) === provider;
  const llmDefaults = LLM_DEFAULTS[provider];
  const model = pick('backend.local.llm.model', llmDefaults.model, `for ${provider}`, belongs) as string;
  const baseUrl = stripSlash(pick('backend.local.llm.base_url', llmDefaults.base_url, `for ${provider}`, belongs) as string);
  // the file may say `managed: true` (a YAML boolean) as well as "true"
  const ollamaManaged = String(pick('backend.local.llm.ollama.managed', 'auto')) as OllamaManaged;
  const ollama = {
    managed: ollamaManaged,
    version: pick('backend.local.llm.ollama.version', DEFAULT_OLLAMA_VERSION) as string,
    download_url: stripSlash(pick('backend.local.llm.ollama.download_url', OLLAMA_DOWNLOAD_BASE) as string),
  };

  // Temporal: an address given by flag or environment means an external server.
  const port = pick('backend.local.temporal.port', DEFAULT_TEMPORAL_PORT) as number;
  const uiPort = pick('backend.local.temporal.ui_port', DEFAULT_TEMPORAL_UI_PORT) as number;
  const version = pick('backend.local.temporal.version', DEFAULT_TEMPORAL_VERSION) as string;
  const downloadUrl = stripSlash(pick('backend.local.temporal.download_url', TEMPORAL_DOWNLOAD_BASE) as string);
  const ownBin = pick('backend.local.temporal.bin', null) as string | null;
  const addressOverride = layers['backend.local.temporal.address']!.find((l) => l.rank < 2);
  let managed: boolean;
  if (addressOverride) {
    managed = false;
    origins['backend.local.temporal.managed'] = addressOverride.origin;
    sources['backend.local.temporal.managed'] = `${addressOverride.source} (an address means external Temporal)`;
  } else {
    managed = pick('backend.local.temporal.managed', true) as boolean;
  }
  const view: CascadeView = { layers, pick, origins, sources, env, dotenv, dotenvFile, cwd, home };
  let address: string;
  let profile = { name: null as string | null, file: null as string | null, hasApiKey: false };
  if (managed) {
    address = `${MANAGED_TEMPORAL_HOST}:${port}`;
    origins['backend.local.temporal.address'] = origins['backend.local.temporal.port']!;
    sources['backend.local.temporal.address'] = 'managed: 127.0.0.1 and backend.local.temporal.port';
  } else {
    profile = prepareExternal(view);
    address = pick('backend.local.temporal.address', `${MANAGED_TEMPORAL_HOST}:${port}`) as string;
  }
  const connection = resolveConnection(view, managed, profile, managed ? 'managed' : sources['backend.local.temporal.address']!);
  const devOptions = resolveDevOptions(view);

  const server = commandFor('server', pick, layers);
  const agentRunner = commandFor('agent-runner', pick, layers);
  const cloudEndpoint = pick('backend.cloud.endpoint', DEFAULT_CLOUD_ENDPOINT) as string;

  const config: StigmerConfig = {
    home,
    backend: {
      type,
      local: {
        endpoint,
        data_dir: dataDir,
        llm: { provider, model, base_url: baseUrl, ollama },
        temporal: { managed, address, version, port, ui_port: uiPort, download_url: downloadUrl, bin: ownBin === null ? null : expandPath(ownBin, home), ...connection, ...devOptions },
        server,
        agent_runner: agentRunner,
      },
      cloud: { endpoint: cloudEndpoint },
    },
  };
  const kept: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) {
    if (!spec.kept) continue;
    const value = getPath(read.data, spec.key);
    origins[spec.key] = value === undefined ? 'default' : 'file';
    sources[spec.key] = 'kept for the Stigmer CLI';
    if (value !== undefined) kept[spec.key] = value;
  }
  return { config, origins, sources, file, exists: read.exists, kept };
}

/** Why the config could not be loaded, and which file it is. */
export interface ConfigProblem {
  error: UserError;
  file: string;
}

/** `loadConfig` that reports an invalid config instead of throwing (for stop, status, logs). */
export function tryLoadConfig(options: LoadConfigOptions = {}): Result<LoadedConfig, ConfigProblem> {
  try {
    return ok(loadConfig(options));
  } catch (e) {
    if (e instanceof UserError) {
      const home = resolve(options.home ?? stigmerHome((options.env ?? process.env) as NodeJS.ProcessEnv));
      return err({ error: e, file: configPath(home) });
    }
    throw e;
  }
}

/** The effective value of a dotted key (leaf or section) of a resolved config. */
export function configValue(config: StigmerConfig, key: string): unknown {
  return getPath(config, key);
}

function parsed(spec: KeySpec, raw: string, what: string): unknown {
  const r = parseKeyValue(spec, raw, what);
  if (!r.ok) throw new UserError(r.error);
  return r.value;
}

type Pick = (key: string, fallback: unknown, fallbackSource?: string, accept?: (l: Layer) => boolean) => unknown;

/**
 * The server or agent-runner command: the reference one shipped in this package unless an
 * executable is named (env or file); a named one gets the file's args only if the file named it.
 */
function commandFor(which: 'server' | 'agent-runner', pick: Pick, layers: Record<string, Layer[]>): CommandSpec {
  const section = which === 'server' ? 'server' : 'agent_runner';
  const cmdKey = `backend.local.${section}.command`;
  const argsKey = `backend.local.${section}.args`;
  const reference = { command: process.execPath, args: [join(packageRoot, 'bin', 'stigmer.js'), 'internal', which] };
  const command = pick(cmdKey, reference.command, `the reference ${which}: stigmer internal ${which}`) as string;
  const cmdLayer = layers[cmdKey]!.find(() => true);
  const fileArgs = layers[argsKey]!.find((l) => l.origin === 'file');
  let args: string[];
  if (!cmdLayer) {
    args = fileArgs ? (fileArgs.value as string[]) : reference.args;
    pick(argsKey, reference.args);
  } else if (cmdLayer.origin === 'file') {
    args = pick(argsKey, []) as string[];
  } else {
    args = pick(argsKey, [], 'default', () => false) as string[];
  }
  return { command, args: [...args] };
}

function expandPath(p: string, home: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? resolve(p) : resolve(home, p);
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export { keySpec, type KeySpec };
