/**
 * A profile of Temporal's own environment configuration: the TOML file the Temporal CLI and SDKs
 * share (contracts.md §7). Where it is: TEMPORAL_CONFIG_FILE, else `<user config dir>/temporalio/
 * temporal.toml` (Linux: $XDG_CONFIG_HOME if absolute, else ~/.config; macOS: ~/Library/
 * Application Support; Windows: %APPDATA%). smol-toml reads it, loaded only when a profile is used.
 *
 *   [profile.NAME]        address, namespace, api_key
 *   [profile.NAME.tls]    disabled, server_ca_cert_path, server_name, client_cert_path,
 *                         client_key_path, disable_host_verification (the *_data forms are refused:
 *                         stigmer passes file paths to the agent-runner)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../../util/errors.js';

export interface TemporalProfile {
  name: string;
  file: string;
  address?: string;
  namespace?: string;
  /** whether an api_key is set (its value is read by the secret gathering only) */
  hasApiKey: boolean;
  tls?: {
    enabled: boolean;
    server_ca_cert?: string;
    server_name?: string;
    client_cert?: string;
    client_key?: string;
    disable_host_verification?: boolean;
  };
}

/** Where Temporal's environment configuration file is, by upstream's rules. */
export function temporalConfigFile(env: Record<string, string | undefined> = process.env, platform: string = process.platform): string {
  const explicit = env['TEMPORAL_CONFIG_FILE'];
  if (explicit) return resolve(explicit);
  const home = env['HOME'] || homedir();
  let base: string;
  if (platform === 'darwin') base = join(home, 'Library', 'Application Support');
  else if (platform === 'win32') base = env['APPDATA'] || join(home, 'AppData', 'Roaming');
  else base = env['XDG_CONFIG_HOME'] && isAbsolute(env['XDG_CONFIG_HOME']) ? env['XDG_CONFIG_HOME'] : join(home, '.config');
  return join(base, 'temporalio', 'temporal.toml');
}

type Toml = Record<string, unknown>;
const parseToml = (text: string): Toml => (createRequire(import.meta.url)('smol-toml') as { parse(t: string): Toml }).parse(text);

function table(file: string, name: string): Toml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`Temporal profile "${name}" was asked for, but ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}. Set TEMPORAL_CONFIG_FILE to the file that has it.`);
  }
  let doc: Toml;
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new UserError(`${file}: invalid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const profiles = (doc['profile'] ?? {}) as Record<string, Toml>;
  const p = profiles[name];
  if (!p || typeof p !== 'object') {
    const known = Object.keys(profiles);
    throw new UserError(`${file} has no profile "${name}"${known.length ? ` (profiles: ${known.join(', ')})` : ''}`);
  }
  return p;
}

/** The profile `name` of `file`; a profile named explicitly and missing is an error, as upstream. */
export function readTemporalProfile(file: string, name: string): TemporalProfile {
  const p = table(file, name);
  const str = (v: unknown, key: string): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new UserError(`${file}: profile.${name}.${key}: expected a string`);
    return v;
  };
  const path = (v: unknown, key: string): string | undefined => {
    const s = str(v, key);
    return s === undefined ? undefined : resolve(dirname(file), s);
  };
  const out: TemporalProfile = { name, file, hasApiKey: typeof p['api_key'] === 'string' && p['api_key'] !== '' };
  const address = str(p['address'], 'address');
  const namespace = str(p['namespace'], 'namespace');
  if (address) out.address = address;
  if (namespace) out.namespace = namespace;
  const tls = p['tls'] as Toml | undefined;
  if (tls && typeof tls === 'object') {
    for (const k of ['client_cert_data', 'client_key_data', 'server_ca_cert_data']) {
      if (tls[k] !== undefined) throw new UserError(`${file}: profile.${name}.tls.${k}: stigmer needs a file; use ${k.replace('_data', '_path')}`);
    }
    const t: NonNullable<TemporalProfile['tls']> = { enabled: tls['disabled'] !== true };
    const set = <K extends keyof typeof t>(k: K, v: (typeof t)[K] | undefined): void => {
      if (v !== undefined) t[k] = v;
    };
    set('server_ca_cert', path(tls['server_ca_cert_path'], 'tls.server_ca_cert_path'));
    set('server_name', str(tls['server_name'], 'tls.server_name'));
    set('client_cert', path(tls['client_cert_path'], 'tls.client_cert_path'));
    set('client_key', path(tls['client_key_path'], 'tls.client_key_path'));
    if (typeof tls['disable_host_verification'] === 'boolean') t.disable_host_verification = tls['disable_host_verification'];
    out.tls = t;
  }
  return out;
}

/** The profile's api_key value, for the secret gathering only (never stored). */
export function readProfileApiKey(file: string, name: string): string | undefined {
  const v = table(file, name)['api_key'];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
