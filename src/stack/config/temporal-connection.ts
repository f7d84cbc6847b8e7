/**
 * The Temporal part of the cascade beyond managed/address: how stigmer connects to an external
 * Temporal or Temporal Cloud (namespace, auth, TLS, a profile of Temporal's own TOML file), and
 * the start-dev options of a managed one.
 *
 * Temporal's own variables (TEMPORAL_NAMESPACE, TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_API_KEY)
 * and the connection keys apply to an external Temporal only: a managed dev server is plaintext on
 * 127.0.0.1 and ignores them all, so a shell set up for Temporal Cloud still gets a working local
 * stack. Precedence for an external one: flag > environment > .env > config.yaml > profile > default.
 *
 *   auth       the file's value, else api-key when a key is found (TEMPORAL_API_KEY, .env, the
 *              profile's api_key), else mtls when a client certificate and key are set, else none
 *   tls        on when asked (tls.enabled / TEMPORAL_TLS), for api-key and mtls, or when any TLS
 *              file or name is set; an explicit false wins (a plaintext test server with a key)
 */
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../../util/errors.js';
import { readTemporalProfile, temporalConfigFile } from './temporal-profile.js';
import { TEMPORAL_NAMESPACE } from './defaults.js';
import type { Layer, Origin, TemporalAuth, TemporalConnection, TemporalDevOptions, TemporalLogLevel, TemporalTls } from './types.js';

type Pick = (key: string, fallback: unknown, fallbackSource?: string, accept?: (l: Layer) => boolean) => unknown;

export interface CascadeView {
  layers: Record<string, Layer[]>;
  pick: Pick;
  origins: Record<string, Origin>;
  sources: Record<string, string>;
  env: Record<string, string | undefined>;
  dotenv: Record<string, string>;
  dotenvFile: string;
  cwd: string;
  home: string;
}

const T = 'backend.local.temporal';
const TLS_KEYS = ['enabled', 'server_ca_cert', 'server_name', 'client_cert', 'client_key', 'disable_host_verification'] as const;
const CONNECTION_KEYS = ['namespace', 'auth', 'profile', ...TLS_KEYS.map((k) => `tls.${k}`)];

/** A managed Temporal: every connection key is set aside, and says why. */
function ignoreForManaged(v: CascadeView): void {
  for (const k of CONNECTION_KEYS) {
    const key = `${T}.${k}`;
    const set = v.layers[key]!.find((l) => !(k === 'namespace' && l.origin === 'file'));
    if (k === 'namespace' && v.origins[key] === 'file') continue;
    v.origins[key] = 'default';
    v.sources[key] = set ? `${set.source} ignored: it applies to an external Temporal only` : 'default';
  }
}

/** The profile (TEMPORAL_PROFILE or the file's `profile`) joins the layers at rank 3. */
function addProfileLayers(v: CascadeView): { name: string | null; file: string | null; hasApiKey: boolean } {
  const name = v.pick(`${T}.profile`, null) as string | null;
  if (!name) return { name: null, file: null, hasApiKey: false };
  const file = temporalConfigFile(v.env);
  const p = readTemporalProfile(file, name);
  const source = `profile ${name} in ${file}`;
  const add = (key: string, value: unknown): void => {
    if (value !== undefined) v.layers[`${T}.${key}`]!.push({ origin: 'profile', rank: 3, value, source });
  };
  add('address', p.address);
  add('namespace', p.namespace);
  if (p.tls) for (const k of TLS_KEYS) add(`tls.${k}`, p.tls[k]);
  return { name, file, hasApiKey: p.hasApiKey };
}

/** Call before picking the address of an external Temporal (a profile may give it). */
export function prepareExternal(v: CascadeView): { name: string | null; file: string | null; hasApiKey: boolean } {
  return addProfileLayers(v);
}

function pathOf(v: CascadeView, key: string): string | null {
  const value = v.pick(key, null) as string | null;
  if (!value) return null;
  const origin = v.origins[key];
  if (origin === 'env' || origin === '.env') return resolve(v.cwd, value);
  if (value.startsWith('~/')) return resolve(v.env['HOME'] ?? '', value.slice(2));
  return isAbsolute(value) ? value : resolve(v.home, value);
}

/** Where an API key is (a name, never the value), for an external Temporal. */
function apiKeySource(v: CascadeView, profile: { name: string | null; file: string | null; hasApiKey: boolean }): string | null {
  if (v.env['TEMPORAL_API_KEY']) return 'TEMPORAL_API_KEY';
  if (v.dotenv['TEMPORAL_API_KEY']) return `TEMPORAL_API_KEY in ${v.dotenvFile}`;
  if (profile.hasApiKey) return `api_key of profile ${profile.name} in ${profile.file}`;
  return null;
}

export function resolveConnection(
  v: CascadeView,
  managed: boolean,
  profile: { name: string | null; file: string | null; hasApiKey: boolean },
  addressFrom: string,
): TemporalConnection {
  const plaintext: TemporalTls = { enabled: false, server_ca_cert: null, server_name: null, client_cert: null, client_key: null, disable_host_verification: false };
  if (managed) {
    // The file may pick one of the managed server's namespaces for the agent-runner.
    const ns = v.pick(`${T}.namespace`, TEMPORAL_NAMESPACE, 'default', (l) => l.origin === 'file') as string;
    ignoreForManaged(v);
    return { namespace: ns, auth: 'none', tls: plaintext, profile: null, profile_file: null, api_key_from: null, address_from: addressFrom };
  }
  const namespace = v.pick(`${T}.namespace`, TEMPORAL_NAMESPACE) as string;
  const tls: TemporalTls = {
    enabled: false,
    server_ca_cert: pathOf(v, `${T}.tls.server_ca_cert`),
    server_name: (v.pick(`${T}.tls.server_name`, null) as string | null) ?? null,
    client_cert: pathOf(v, `${T}.tls.client_cert`),
    client_key: pathOf(v, `${T}.tls.client_key`),
    disable_host_verification: v.pick(`${T}.tls.disable_host_verification`, false) as boolean,
  };
  const keyFrom = apiKeySource(v, profile);
  const auth = v.pick(`${T}.auth`, keyFrom ? 'api-key' : tls.client_cert && tls.client_key ? 'mtls' : 'none', keyFrom ? `an API key in ${keyFrom}` : 'default') as TemporalAuth;
  if (auth === 'mtls' && !(tls.client_cert && tls.client_key)) {
    throw new UserError(
      `${T}.auth is mtls (${v.sources[`${T}.auth`]}), which needs a client certificate and its key: set ${T}.tls.client_cert and ${T}.tls.client_key ` +
        '(or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)',
    );
  }
  if (!!tls.client_cert !== !!tls.client_key) {
    throw new UserError(`${T}.tls.${tls.client_cert ? 'client_cert' : 'client_key'} is set without ${T}.tls.${tls.client_cert ? 'client_key' : 'client_cert'}: a client certificate needs its key`);
  }
  const implied = auth !== 'none' || !!(tls.server_ca_cert || tls.server_name || tls.client_cert || tls.disable_host_verification);
  tls.enabled = v.pick(`${T}.tls.enabled`, implied, implied ? `implied by ${auth !== 'none' ? `auth ${auth}` : 'the TLS settings'}` : 'default') as boolean;
  return { namespace, auth, tls, profile: profile.name, profile_file: profile.file, api_key_from: auth === 'api-key' ? keyFrom : null, address_from: addressFrom };
}

export function resolveDevOptions(v: CascadeView): TemporalDevOptions {
  return {
    namespaces: [...((v.pick(`${T}.namespaces`, []) as string[]) ?? [])],
    search_attributes: { ...((v.pick(`${T}.search_attributes`, {}) as Record<string, string>) ?? {}) },
    dynamic_config: { ...((v.pick(`${T}.dynamic_config`, {}) as Record<string, unknown>) ?? {}) },
    headless: v.pick(`${T}.headless`, false) as boolean,
    log_level: (v.pick(`${T}.log_level`, null) as TemporalLogLevel | null) ?? null,
    extra_args: [...((v.pick(`${T}.extra_args`, []) as string[]) ?? [])],
  };
}
