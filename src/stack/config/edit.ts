/**
 * Changing `config.yaml` in place: yaml's Document API keeps the user's comments and key order;
 * the result is validated before it is written, and written atomically (temp file + rename,
 * mode 0600).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import { LLM_DEFAULTS, MODE_DEFAULT_PROVIDER, isLlmProvider, type LlmProvider } from '../llm/defaults.js';
import { UserError } from '../../util/errors.js';
import { keySpec, parseKeyValue, sectionKeys, suggestKey, CONFIG_KEYS } from './keys.js';
import { checkConfigSource, parseConfigSource } from './file.js';

/** The spec of a settable key, or a UserError (exit 2) with a did-you-mean. */
export function requireKey(key: string): NonNullable<ReturnType<typeof keySpec>> {
  const spec = keySpec(key);
  if (spec) return spec;
  if (sectionKeys().includes(key)) {
    const leaves = CONFIG_KEYS.filter((k) => k.key.startsWith(`${key}.`)).map((k) => k.key);
    throw new UserError(`${key} is a section, not a value; set one of its keys: ${leaves.join(', ')}`);
  }
  throw new UserError(`unknown config key "${key}"${suggestKey(key)}\nRun \`stigmer config list\` to see every key.`);
}

export interface SetResult {
  value: unknown;
  /** true when the file did not exist before */
  created: boolean;
  /** things the user should know (a model left over from another provider, ...) */
  notes: string[];
}

/** Set one key in the config file (created if missing). Throws UserError (exit 2) when invalid. */
export function setConfigValue(file: string, key: string, raw: string): SetResult {
  const spec = requireKey(key);
  const parsed = parseKeyValue(spec, raw);
  if (!parsed.ok) throw new UserError(`${parsed.message}\n${file} was not changed.`);
  let source = '';
  let created = false;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`${file}: cannot read: ${(err as Error).message}`);
    created = true;
  }
  const doc = created ? parseDocument('') : parseConfigSource(file, source).doc;
  const path = key.split('.');
  const node = Array.isArray(parsed.value) ? doc.createNode(parsed.value, { flow: true }) : parsed.value;
  if (doc.contents === null || doc.contents === undefined) doc.contents = doc.createNode({}) as never;
  const notes: string[] = [];
  if (key === 'backend.local.llm.provider') followProvider(doc, parsed.value as LlmProvider, notes);
  doc.setIn(path, node);
  const text = doc.toString();
  try {
    // The whole file must stay valid, not only this key.
    checkConfigSource(file, text);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${err.message}\n${file} was not changed.`);
    throw err;
  }
  writeFileAtomic(file, text);
  return { value: parsed.value, created, notes };
}

/**
 * Switching provider: a model or base URL in the file that is the old provider's default was
 * only a default, so it goes; anything else stays, with a note.
 */
function followProvider(doc: Document, provider: LlmProvider, notes: string[]): void {
  const old = doc.getIn(['backend', 'local', 'llm', 'provider']);
  const oldProvider: LlmProvider = isLlmProvider(old) ? old : MODE_DEFAULT_PROVIDER.local;
  if (oldProvider === provider) return;
  for (const field of ['model', 'base_url'] as const) {
    const path = ['backend', 'local', 'llm', field];
    const current = doc.getIn(path);
    if (current === undefined || current === null) continue;
    if (current === LLM_DEFAULTS[oldProvider][field]) doc.deleteIn(path);
    else notes.push(`backend.local.llm.${field} is still ${String(current)} in the file; change it for ${provider} with: stigmer config set backend.local.llm.${field} <value>`);
  }
}

/** Write a file atomically: a temp file in the same directory, then rename over the target. */
export function writeFileAtomic(file: string, text: string, mode = 0o600): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Whether a stack looks up: the state file under `dataDir` exists and some task in it is ready.
 * Cheap and conservative; used to say "restart for this to apply".
 */
export function stackRunning(dataDir: string): boolean {
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(join(dataDir, 'state.json'), 'utf8'));
  } catch {
    return false;
  }
  const hasReady = (v: unknown, depth: number): boolean => {
    if (!v || typeof v !== 'object' || depth > 4) return false;
    if ((v as { status?: unknown }).status === 'ready') return true;
    return Object.values(v).some((x) => hasReady(x, depth + 1));
  };
  return hasReady(state, 0);
}
