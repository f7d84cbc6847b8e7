/**
 * The stack's secret variables: the LLM providers' API keys and Temporal Cloud's. Every command
 * registers them before it prints anything, so a key a service wrote to its log is masked by
 * `logs` in a later process too, and no child but the one that names a key in its `env` (the
 * agent-runner) inherits it.
 *
 * A key can come from three places: the environment, `.env` in the working directory, or the
 * prompt of the run that started the stack. A prompted key lives only in the environment of the
 * process it was given to, so the environments of the data dir's live recorded processes are
 * read too (/proc/<pid>/environ; the same user's processes only).
 */
import { readFileSync } from 'node:fs';
import { registerSecretVariables } from '../util/mask.js';
import { dataPaths } from '../util/paths.js';
import { isAlive } from '../process/identity.js';
import { LLM_DEFAULTS, LLM_PROVIDERS } from './llm/defaults.js';
import { readDotenv } from './config/dotenv.js';

/** Every variable that holds an API key stigmer passes on. */
export const KEY_VARIABLES: readonly string[] = [...LLM_PROVIDERS.flatMap((p) => (LLM_DEFAULTS[p].key_env ? [LLM_DEFAULTS[p].key_env] : [])), 'TEMPORAL_API_KEY'];

export interface SecretSources {
  /** where `.env` is looked for (default: the working directory) */
  cwd?: string;
  /** the data dirs whose live recorded processes may hold a prompted key */
  dataDirs?: readonly string[];
  env?: Record<string, string | undefined>;
}

/** Register the key variables and their values from every source (see the file comment). */
export function registerStackSecrets(o: SecretSources = {}): void {
  const sources: Record<string, string | undefined>[] = [o.env ?? process.env];
  try {
    sources.push(readDotenv(o.cwd ?? process.cwd()));
  } catch {
    // an unreadable .env is reported by the commands that use it; masking goes on without it
  }
  for (const dir of new Set(o.dataDirs ?? [])) sources.push(...recordedEnvironments(dir));
  registerSecretVariables(KEY_VARIABLES, ...sources);
}

/**
 * The state's records as plain JSON, not validated: only the live processes they name are read
 * (each checked below, pid and start time), and a key found is only ever masked. The state's
 * validation cost a `down` ~4.5 ms here, before it even reached its supervisor.
 */
function recordedTasks(dataDir: string): Record<string, { undo?: unknown }> {
  try {
    const parsed = JSON.parse(readFileSync(dataPaths(dataDir).state, 'utf8')) as { tasks?: unknown } | null;
    const tasks = parsed?.tasks;
    return tasks && typeof tasks === 'object' && !Array.isArray(tasks) ? (tasks as Record<string, { undo?: unknown }>) : {};
  } catch {
    return {}; // absent, unreadable or not JSON: no recorded process to read
  }
}

/** The key variables in the environments of the data dir's live recorded processes. */
function recordedEnvironments(dataDir: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const rec of Object.values(recordedTasks(dataDir))) {
    for (const u of Array.isArray(rec?.undo) ? rec.undo : []) {
      if (u?.type !== 'stop-process' || !Number.isInteger(u.pid) || u.pid <= 1 || !isAlive(u)) continue;
      const env = environOf(u.pid);
      if (env) out.push(env);
    }
  }
  return out;
}

function environOf(pid: number): Record<string, string> | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return undefined; // gone, another user's, or no /proc (macOS): nothing to learn there
  }
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    if (eq > 0 && KEY_VARIABLES.includes(name)) env[name] = entry.slice(eq + 1);
  }
  return env;
}
