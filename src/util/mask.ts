/**
 * Secret values registered during a run. Everything stigmer prints, logs, emits as JSON or writes
 * to the state file goes through `mask`, so a registered value never appears in clear.
 *
 * Secret variables (API keys) are also kept from child processes: `childEnv` leaves them out of
 * the environment a child inherits, so only a task that names one in its own `env` receives it.
 */
const secrets = new Set<string>();
const secretVariables = new Set<string>();
/** Changes whenever the set of secrets does: text masked under an older generation may need masking again. */
let generation = 0;

export const MASK = '********';

export function registerSecret(value: string | undefined): void {
  // Very short values would mask innocent text; real keys are long.
  if (value && value.length >= 6 && !secrets.has(value)) {
    secrets.add(value);
    generation++;
  }
}

/** See `generation`: equal numbers mean the same secrets are masked. */
export function secretsGeneration(): number {
  return generation;
}

export function mask(text: string): string {
  if (secrets.size === 0 || !text) return text;
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(MASK);
  return out;
}

/** Mask every string inside a JSON-able value. */
export function maskDeep<T>(value: T): T {
  if (secrets.size === 0) return value;
  if (typeof value === 'string') return mask(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v);
    return out as T;
  }
  return value;
}

/**
 * Variables whose values are secrets: each value found in `sources` is masked from now on, and
 * the names are never inherited by a child process.
 */
export function registerSecretVariables(names: readonly string[], ...sources: Array<Record<string, string | undefined>>): void {
  for (const name of names) {
    secretVariables.add(name);
    for (const source of sources) registerSecret(source[name]);
  }
}

/** Whether a variable is a registered secret variable (kept from child processes). */
export function isSecretVariable(name: string): boolean {
  return secretVariables.has(name);
}

/** For tests. */
export function clearSecrets(): void {
  secrets.clear();
  secretVariables.clear();
  generation++;
}
