/**
 * The API key of an external Temporal: a secret like the LLM keys, never a config.yaml value. It
 * is looked up, in order, in TEMPORAL_API_KEY (the environment, then .env in the working
 * directory) and the api_key of the Temporal profile in use; `gather-secrets` asks for it on a
 * terminal when none is found. Only its source's name is ever printed or stored.
 */
import { readDotenv } from './dotenv.js';
import { readProfileApiKey } from './temporal-profile.js';

export const TEMPORAL_API_KEY = 'TEMPORAL_API_KEY';

/** What the resolved config says about a Temporal connection (resolve-config's temporal output). */
export interface TemporalAuthView {
  managed: boolean;
  auth: string;
  profile: string | null;
  profile_file: string | null;
}

export interface FoundKey {
  value: string;
  /** "TEMPORAL_API_KEY (environment)", "TEMPORAL_API_KEY in .env", "api_key of profile cloud in <file>" */
  from: string;
}

/** The key, when the connection uses one and it is set somewhere; a managed Temporal never does. */
export function findTemporalApiKey(t: TemporalAuthView, env: Record<string, string | undefined>, cwd: string = process.cwd()): FoundKey | undefined {
  if (t.managed || t.auth !== 'api-key') return undefined;
  const real = env[TEMPORAL_API_KEY]?.trim();
  if (real) return { value: real, from: `${TEMPORAL_API_KEY} (environment)` };
  const dotenv = readDotenv(cwd)[TEMPORAL_API_KEY]?.trim();
  if (dotenv) return { value: dotenv, from: `${TEMPORAL_API_KEY} in .env` };
  if (t.profile && t.profile_file) {
    const fromProfile = readProfileApiKey(t.profile_file, t.profile);
    if (fromProfile) return { value: fromProfile, from: `api_key of profile ${t.profile} in ${t.profile_file}` };
  }
  return undefined;
}
