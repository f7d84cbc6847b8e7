/**
 * Every leaf key of the config, in listing order, with the environment variable and flag that
 * override it and how a string from the command line or the environment becomes its value.
 */
import { parse as parseYaml } from 'yaml';
import type { ConfigFlags } from './types.js';
import { didYouMean } from '../../util/diagnostics.js';
import { err, ok, type Result } from '../../model/result.js';

export type KeyType = 'string' | 'integer' | 'seconds' | 'boolean' | 'enum' | 'list' | 'map';

export interface KeySpec {
  /** dotted path, e.g. backend.local.llm.provider */
  key: string;
  type: KeyType;
  /** allowed values of an enum */
  values?: readonly string[];
  /** completes "Expected <key> to be ..." */
  expect: string;
  /** environment variable that overrides the file */
  env?: string;
  /** more variables meaning the same, tried after `env` (TEMPORAL_ADDRESS beside TEMPORAL_SERVICE_ADDRESS) */
  envAliases?: readonly string[];
  /**
   * Temporal's own client settings (TEMPORAL_NAMESPACE, TEMPORAL_TLS*, the profile): they apply to
   * an external Temporal only; a managed one ignores them wherever they are set.
   */
  externalOnly?: boolean;
  /**
   * A key the real Stigmer CLI writes to the same config.yaml (its GetDefault() and Config
   * struct): valid, kept by `config set`, shown by `config list` as kept, unused by stigmer.
   */
  kept?: boolean;
  /** its value is a secret: masked wherever it is shown */
  secret?: boolean;
  /** flag of `stigmer local start` that overrides everything */
  flag?: keyof ConfigFlags;
  flagName?: string;
  /** for a map: what each value must be */
  valueExpect?: string;
  /** a string check beyond the type (mirrors the schema's pattern) */
  pattern?: RegExp;
}

const HOST_PORT = /^\S+:\d{1,5}$/;
const URL_RE = /^https?:\/\//;

export const CONFIG_KEYS: readonly KeySpec[] = [
  { key: 'backend.type', type: 'enum', values: ['local', 'cloud'], expect: 'one of local, cloud', env: 'STIGMER_BACKEND_TYPE' },
  { key: 'backend.local.endpoint', type: 'string', expect: 'host:port', env: 'STIGMER_SERVER_ADDRESS', pattern: HOST_PORT },
  { key: 'backend.local.data_dir', type: 'string', expect: 'a directory path', env: 'STIGMER_DATA_DIR', pattern: /\S/ },
  {
    key: 'backend.local.llm.provider',
    type: 'enum',
    values: ['ollama', 'anthropic', 'openai'],
    expect: 'one of ollama, anthropic, openai',
    env: 'STIGMER_LLM_PROVIDER',
    flag: 'llmProvider',
    flagName: '--llm-provider',
  },
  { key: 'backend.local.llm.model', type: 'string', expect: 'a model id', env: 'STIGMER_LLM_MODEL', flag: 'llmModel', flagName: '--llm-model', pattern: /\S/ },
  {
    key: 'backend.local.llm.base_url',
    type: 'string',
    expect: 'an http:// or https:// URL',
    env: 'STIGMER_LLM_BASE_URL',
    flag: 'llmBaseUrl',
    flagName: '--llm-base-url',
    pattern: URL_RE,
  },
  {
    key: 'backend.local.llm.ollama.managed',
    type: 'enum',
    values: ['auto', 'true', 'false'],
    expect: 'one of auto, true, false',
    env: 'STIGMER_OLLAMA_MANAGED',
  },
  {
    key: 'backend.local.llm.ollama.version',
    type: 'string',
    expect: 'an Ollama release like 0.32.15',
    env: 'STIGMER_OLLAMA_VERSION',
    pattern: /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/,
  },
  {
    key: 'backend.local.llm.ollama.download_url',
    type: 'string',
    expect: 'an http:// or https:// URL',
    env: 'STIGMER_OLLAMA_DOWNLOAD_URL',
    pattern: URL_RE,
  },
  { key: 'backend.local.temporal.managed', type: 'boolean', expect: 'true or false' },
  {
    key: 'backend.local.temporal.address',
    type: 'string',
    expect: 'host:port',
    env: 'TEMPORAL_SERVICE_ADDRESS',
    envAliases: ['TEMPORAL_ADDRESS'],
    flag: 'temporalAddress',
    flagName: '--temporal-address',
    pattern: HOST_PORT,
  },
  { key: 'backend.local.temporal.namespace', type: 'string', expect: 'a namespace name', env: 'TEMPORAL_NAMESPACE', externalOnly: true, pattern: /^\S+$/ },
  { key: 'backend.local.temporal.auth', type: 'enum', values: ['none', 'api-key', 'mtls'], expect: 'one of none, api-key, mtls', externalOnly: true },
  { key: 'backend.local.temporal.tls.enabled', type: 'boolean', expect: 'true or false', env: 'TEMPORAL_TLS', externalOnly: true },
  { key: 'backend.local.temporal.tls.server_ca_cert', type: 'string', expect: 'a PEM file path', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', externalOnly: true, pattern: /\S/ },
  { key: 'backend.local.temporal.tls.server_name', type: 'string', expect: 'a host name', env: 'TEMPORAL_TLS_SERVER_NAME', externalOnly: true, pattern: /^\S+$/ },
  { key: 'backend.local.temporal.tls.client_cert', type: 'string', expect: 'a PEM file path', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', externalOnly: true, pattern: /\S/ },
  { key: 'backend.local.temporal.tls.client_key', type: 'string', expect: 'a PEM file path', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', externalOnly: true, pattern: /\S/ },
  {
    key: 'backend.local.temporal.tls.disable_host_verification',
    type: 'boolean',
    expect: 'true or false',
    env: 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
    externalOnly: true,
  },
  { key: 'backend.local.temporal.profile', type: 'string', expect: 'a profile name of Temporal\'s temporal.toml', env: 'TEMPORAL_PROFILE', externalOnly: true, pattern: /^\S+$/ },
  {
    key: 'backend.local.temporal.version',
    type: 'string',
    expect: 'a Temporal CLI release like 1.8.2',
    env: 'STIGMER_TEMPORAL_VERSION',
    pattern: /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/,
  },
  { key: 'backend.local.temporal.port', type: 'integer', expect: 'an integer from 1 to 65535', env: 'STIGMER_TEMPORAL_PORT' },
  { key: 'backend.local.temporal.ui_port', type: 'integer', expect: 'an integer from 1 to 65535', env: 'STIGMER_TEMPORAL_UI_PORT' },
  {
    key: 'backend.local.temporal.download_url',
    type: 'string',
    expect: 'an http:// or https:// URL',
    env: 'STIGMER_TEMPORAL_DOWNLOAD_URL',
    pattern: URL_RE,
  },
  { key: 'backend.local.temporal.namespaces', type: 'list', expect: 'a list of namespace names' },
  {
    key: 'backend.local.temporal.search_attributes',
    type: 'map',
    expect: 'a mapping KEY: Type (Text, Keyword, Int, Double, Bool, Datetime, KeywordList)',
    valueExpect: 'a search attribute type: Text, Keyword, Int, Double, Bool, Datetime or KeywordList',
  },
  { key: 'backend.local.temporal.dynamic_config', type: 'map', expect: 'a mapping KEY: value' },
  { key: 'backend.local.temporal.headless', type: 'boolean', expect: 'true or false' },
  { key: 'backend.local.temporal.log_level', type: 'enum', values: ['debug', 'info', 'warn', 'error', 'never'], expect: 'one of debug, info, warn, error, never' },
  { key: 'backend.local.temporal.extra_args', type: 'list', expect: 'a list of strings' },
  { key: 'backend.local.temporal.bin', type: 'string', expect: 'the path of a Temporal CLI', env: 'STIGMER_TEMPORAL_BIN', pattern: /\S/ },
  { key: 'backend.local.server.command', type: 'string', expect: 'an executable', env: 'STIGMER_SERVER_BIN', pattern: /\S/ },
  { key: 'backend.local.server.args', type: 'list', expect: 'a list of strings' },
  { key: 'backend.local.agent_runner.command', type: 'string', expect: 'an executable', env: 'STIGMER_AGENT_RUNNER_BIN', pattern: /\S/ },
  { key: 'backend.local.agent_runner.args', type: 'list', expect: 'a list of strings' },
  { key: 'backend.cloud.endpoint', type: 'string', expect: 'host:port', env: 'STIGMER_CLOUD_ENDPOINT', pattern: HOST_PORT },
  // Written by the real Stigmer CLI (client-apps/cli/internal/cli/config): kept, not used here.
  { key: 'backend.local.execution.mode', type: 'enum', values: ['local', 'sandbox', 'auto'], expect: 'one of local, sandbox, auto', kept: true },
  { key: 'backend.local.execution.sandbox_image', type: 'string', expect: 'a container image', kept: true },
  { key: 'backend.local.execution.auto_pull', type: 'boolean', expect: 'true or false', kept: true },
  { key: 'backend.local.execution.cleanup', type: 'boolean', expect: 'true or false', kept: true },
  { key: 'backend.local.execution.ttl', type: 'seconds', expect: 'a number of seconds', kept: true },
  { key: 'backend.local.llm.api_key', type: 'string', expect: 'an API key', kept: true, secret: true },
  { key: 'backend.cloud.token', type: 'string', expect: 'a token', kept: true, secret: true },
  { key: 'backend.cloud.org_id', type: 'string', expect: 'an organization id', kept: true },
  { key: 'backend.cloud.env_id', type: 'string', expect: 'an environment id', kept: true },
  { key: 'context.organization', type: 'string', expect: 'an organization name or id', kept: true },
  { key: 'context.environment', type: 'string', expect: 'an environment name or id', kept: true },
];

const BY_KEY = new Map(CONFIG_KEYS.map((k) => [k.key, k]));

export function keySpec(key: string): KeySpec | undefined {
  return BY_KEY.get(key);
}

/** Every dotted prefix that names a section (backend, backend.local, backend.local.llm, ...). */
export function sectionKeys(): string[] {
  const out = new Set<string>();
  for (const { key } of CONFIG_KEYS) {
    const parts = key.split('.');
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return [...out];
}

/** ` (did you mean "..."?)` for a key that is not one. */
export function suggestKey(key: string): string {
  const all = [...CONFIG_KEYS.map((k) => k.key), ...sectionKeys()];
  const hint = didYouMean(key, all);
  if (hint) return hint;
  // `llm.model` -> backend.local.llm.model: match on the tail.
  const tail = CONFIG_KEYS.find((k) => k.key.endsWith(`.${key}`));
  return tail ? ` (did you mean "${tail.key}"?)` : '';
}

/** The typed value, or the message saying what was expected. */
export type Parsed = Result<unknown, string>;

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/**
 * A string from the command line or the environment as the key's value. `what` names the
 * source in the message ("STIGMER_TEMPORAL_PORT", "--llm-provider", the key itself).
 */
export function parseKeyValue(spec: KeySpec, raw: string, what: string = spec.key): Parsed {
  const bad = (): Parsed => err(`Expected ${what} to be ${spec.expect}, got ${JSON.stringify(raw)}`);
  const text = raw.trim();
  switch (spec.type) {
    case 'boolean':
      if (TRUE.has(text.toLowerCase())) return ok(true);
      if (FALSE.has(text.toLowerCase())) return ok(false);
      return bad();
    case 'integer': {
      if (!/^\d+$/.test(text)) return bad();
      const n = Number(text);
      return n >= 1 && n <= 65535 ? ok(n) : bad();
    }
    case 'seconds':
      return /^\d+$/.test(text) ? ok(Number(text)) : bad();
    case 'enum': {
      if (spec.values?.includes(text)) return ok(text);
      const r = bad();
      return r.ok ? r : err(r.error + didYouMean(text, spec.values ?? []));
    }
    case 'list':
      return parseList(raw, bad);
    case 'map': {
      let v: unknown;
      try {
        v = parseYaml(text.startsWith('{') ? text : `{${text}}`);
      } catch {
        return bad();
      }
      return v && typeof v === 'object' && !Array.isArray(v) ? ok(v) : bad();
    }
    case 'string':
      if (spec.pattern && !spec.pattern.test(text)) return bad();
      return ok(text);
  }
}

/** `[a, "b c"]` (YAML/JSON flow list), or whitespace-separated words. */
function parseList(raw: string, bad: () => Parsed): Parsed {
  const text = raw.trim();
  if (text.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(text);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return ok(v);
    } catch {
      // not JSON: try the flow form without quotes
    }
    const inner = text.slice(1, text.endsWith(']') ? -1 : undefined);
    const items = inner.split(',').map((s) => s.trim().replace(/^(['"])(.*)\1$/, '$2')).filter((s) => s !== '');
    return text.endsWith(']') ? ok(items) : bad();
  }
  return ok(text === '' ? [] : text.split(/\s+/));
}

/** Read a dotted path out of a nested object. */
export function getPath(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const p of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}
