/**
 * Reading `config.yaml`: YAML syntax and schema errors become `file:line:col: message`
 * diagnostics with the offending line and a caret, all of them at once, exit 2.
 *
 * The schema is checked by the validator that `scripts/build-validators.mjs` precompiled into
 * dist/validators/config.js (no ajv compile at start). It is loaded only when a file exists.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isScalar, type Document, type LineCounter } from 'yaml';
import { readYaml } from '../../util/yaml-read.js';
import { UserError } from '../../util/errors.js';
import { validatorFile } from '../../util/paths.js';
import { formatDiagnostics, didYouMean, type Diagnostic } from '../../util/diagnostics.js';
import { diagnosticAt, findNode, pairOf, pointerPath, valueAt, type AjvError, type Validator } from '../../util/yaml-source.js';
import { CONFIG_KEYS, keySpec } from './keys.js';
import type { ConfigFile } from './types.js';

let validator: Validator | undefined;

/** The precompiled validator of schemas/config.schema.json. */
export function configValidator(): Validator {
  if (!validator) {
    // an ESM module; Node >= 20.19 requires it
    const mod = createRequire(import.meta.url)(validatorFile('config')) as { default: Validator };
    validator = mod.default;
  }
  return validator;
}

export interface ReadConfig {
  exists: boolean;
  /** the file's text ('' when missing) */
  source: string;
  /** the parsed file, `null` values dropped (an empty `llm:` means "not set") */
  data: ConfigFile;
}

/** Read and check a config file; a missing file is an empty config. Throws UserError (exit 2). */
export function readConfigFile(file: string): ReadConfig {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false, source: '', data: {} };
    throw new UserError(`${file}: cannot read the config file: ${(err as Error).message}`);
  }
  return { exists: true, source, data: checkConfigSource(file, source) };
}

/** Parse and validate config text; `file` names it in the diagnostics. Throws UserError (exit 2). */
export function checkConfigSource(file: string, source: string): ConfigFile {
  const { doc, lineCounter, data: parsed } = parseConfigSource(file, source);
  const data = dropNulls(parsed ?? {}) as ConfigFile;
  const errors = validateConfig(data);
  if (errors.length) {
    const ds = errors.map((e) => diagnosticFor(file, doc, lineCounter, data, e));
    throw new UserError(formatDiagnostics(ds, source));
  }
  return data;
}

/** Parse YAML text; syntax errors and what plain data cannot hold become diagnostics (UserError, exit 2). */
export function parseConfigSource(file: string, source: string): { doc: Document; lineCounter: LineCounter; data: unknown } {
  const read = readYaml(source, file, { prefix: 'invalid YAML: ' });
  if (read.diagnostics.length) throw new UserError(formatDiagnostics(read.diagnostics, source));
  return { doc: read.doc, lineCounter: read.lc, data: read.data };
}

/** Schema errors of a config object ([] when valid). */
export function validateConfig(data: unknown): AjvError[] {
  const validate = configValidator();
  if (validate(data)) return [];
  // oneOf/anyOf bookkeeping errors repeat the real ones; keep one per place and keyword.
  const seen = new Set<string>();
  return (validate.errors ?? []).filter((e) => {
    const id = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** "Expected backend.local.temporal.port to be an integer from 1 to 65535, got "abc"" */
export function describeError(e: AjvError, data: unknown): string {
  const path = pointerPath(e.instancePath);
  const key = path.join('.');
  if (e.keyword === 'additionalProperties') {
    const extra = String(e.params['additionalProperty']);
    const where = key ? `${key}.${extra}` : extra;
    const allowed = allowedKeys(key);
    const guess = didYouMean(extra, allowed);
    return `unknown key "${where}"${guess || (allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '')}`;
  }
  const value = valueAt(data, path);
  const parent = keySpec(path.slice(0, -1).join('.'));
  // A value inside a mapping key (search_attributes.CustomerId) is described by its mapping's spec.
  const spec = keySpec(key) ?? (parent?.type === 'map' && parent.valueExpect ? { ...parent, expect: parent.valueExpect } : undefined);
  const expected = spec ? spec.expect : e.keyword === 'type' && e.params['type'] === 'object' ? 'a mapping of keys' : (e.message ?? 'valid');
  const name = key || 'the config file';
  let msg = `Expected ${name} to be ${expected}, got ${show(value)}`;
  if (spec?.type === 'enum' && typeof value === 'string') msg += didYouMean(value, spec.values ?? []);
  return msg;
}

function allowedKeys(section: string): string[] {
  const prefix = section ? `${section}.` : '';
  const out = new Set<string>();
  for (const { key: k } of CONFIG_KEYS) {
    if (k.startsWith(prefix)) out.add(k.slice(prefix.length).split('.')[0]!);
  }
  return [...out];
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `a list ${JSON.stringify(value)}`;
  if (value && typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function diagnosticFor(file: string, doc: Document, lc: LineCounter, data: unknown, e: AjvError): Diagnostic {
  const at = findNode(doc, pointerPath(e.instancePath));
  let node = at.found ? at.node : undefined;
  if (e.keyword === 'additionalProperties') node = pairOf(node, String(e.params['additionalProperty']))?.key ?? node;
  // a mapping or list is marked by its first character only
  return diagnosticAt(file, lc, node, describeError(e, data), isScalar(node) ? {} : { length: 1 });
}

/** Drop keys whose value is null, recursively (YAML's empty value means "not set"). */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = dropNulls(v);
    return out;
  }
  return value;
}
