/**
 * Changing `config.yaml` in place: yaml's Document API keeps the user's comments and key order;
 * the result is validated before it is written, and written atomically (temp file + rename,
 * mode 0600).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { makePrivateDir } from '../../util/private-dir.js';
import { dirname, join } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import { LLM_DEFAULTS, MODE_DEFAULT_PROVIDER, isLlmProvider, type LlmProvider } from '../llm/defaults.js';
import { UserError } from '../../util/errors.js';
import { keySpec, parseKeyValue, sectionKeys, suggestKey, CONFIG_KEYS } from './keys.js';
import { checkConfigSource, parseConfigSource } from './file.js';
import { defaultConfigText } from './template.js';
import { removeInSource, setInSource, templateLine, unsetInSource } from './text-edit.js';

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

/** `config set KEY null` (or `~`) means: back to the default, as `config unset` does. */
export function isNullValue(raw: string): boolean {
  return raw.trim() === 'null' || raw.trim() === '~';
}

function readSource(file: string): { source: string; created: boolean } {
  try {
    return { source: readFileSync(file, 'utf8'), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`${file}: cannot read: ${(err as Error).message}`);
    return { source: '', created: true };
  }
}

/** The whole file must stay valid, not only the changed key; then it is written atomically. */
function commit(file: string, text: string): void {
  try {
    checkConfigSource(file, text);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${err.message}\n${file} was not changed.`);
    throw err;
  }
  writeFileAtomic(file, text);
}

/** How the template shows a key commented out (its default and comment), for `unset`. */
function defaultLine(key: string): string | undefined {
  return templateLine(defaultConfigText(''), key);
}

/** A value as YAML text: a plain or quoted scalar, or a flow list. */
function yamlText(value: unknown): string {
  const d = parseDocument('');
  d.contents = d.createNode(value, { flow: Array.isArray(value) }) as never;
  return d.toString().trimEnd();
}

/** Set one key in the config file (created if missing). Throws UserError (exit 2) when invalid. */
export function setConfigValue(file: string, key: string, raw: string): SetResult {
  const spec = requireKey(key);
  const parsed = parseKeyValue(spec, raw);
  if (!parsed.ok) throw new UserError(`${parsed.error}\n${file} was not changed.`);
  const { source, created } = readSource(file);
  const doc = created ? parseDocument('') : parseConfigSource(file, source).doc;
  const path = key.split('.');
  const notes: string[] = [];
  const drop = key === 'backend.local.llm.provider' ? followProvider(doc, parsed.value as LlmProvider, notes) : [];
  // Edit the text in place where the layout allows (comments stay where they are); else yaml's
  // Document API, which keeps comments but may move them.
  let text: string | undefined = created ? undefined : source;
  for (const field of drop) text = text === undefined ? undefined : removeInSource(text, ['backend', 'local', 'llm', field]);
  text = text === undefined ? undefined : setInSource(text, path, yamlText(parsed.value));
  if (text === undefined) {
    for (const field of drop) doc.deleteIn(['backend', 'local', 'llm', field]);
    const node = Array.isArray(parsed.value) ? doc.createNode(parsed.value, { flow: true }) : parsed.value;
    if (doc.contents === null || doc.contents === undefined) doc.contents = doc.createNode({}) as never;
    doc.setIn(path, node);
    text = doc.toString();
  }
  commit(file, text);
  return { value: parsed.value, created, notes };
}

export interface UnsetResult {
  /** false when the file did not set the key (nothing changed) */
  changed: boolean;
}

/** Remove one key from the config file: it falls back to its default, its comment kept. */
export function unsetConfigValue(file: string, key: string): UnsetResult {
  requireKey(key);
  const { source, created } = readSource(file);
  if (created) return { changed: false };
  const doc = parseConfigSource(file, source).doc;
  const path = key.split('.');
  if (!doc.hasIn(path)) return { changed: false };
  let text = unsetInSource(source, path, defaultLine);
  if (text === undefined) {
    doc.deleteIn(path);
    text = doc.toString();
  }
  commit(file, text);
  return { changed: true };
}

/**
 * Switching provider: a model or base URL in the file that is the old provider's default was
 * only a default, so it goes; anything else stays, with a note.
 */
function followProvider(doc: Document, provider: LlmProvider, notes: string[]): ('model' | 'base_url')[] {
  const old = doc.getIn(['backend', 'local', 'llm', 'provider']);
  const oldProvider: LlmProvider = isLlmProvider(old) ? old : MODE_DEFAULT_PROVIDER.local;
  const drop: ('model' | 'base_url')[] = [];
  if (oldProvider === provider) return drop;
  for (const field of ['model', 'base_url'] as const) {
    const path = ['backend', 'local', 'llm', field];
    const current = doc.getIn(path);
    if (current === undefined || current === null) continue;
    if (current === LLM_DEFAULTS[oldProvider][field]) drop.push(field);
    else notes.push(`backend.local.llm.${field} is still ${String(current)} in the file; change it for ${provider} with: stigmer config set backend.local.llm.${field} <value>`);
  }
  return drop;
}

/** Write a file atomically: a temp file in the same directory, then rename over the target. */
export function writeFileAtomic(file: string, text: string, mode = 0o600): void {
  makePrivateDir(dirname(file), 'directory of the config file');
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
