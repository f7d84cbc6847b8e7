/**
 * Reading `config.yaml`: YAML syntax and schema errors become `file:line:col: message`
 * diagnostics with the offending line and a caret, all of them at once, exit 2.
 *
 * The schema is checked by the validator that `scripts/build-validators.mjs` precompiled into
 * dist/validators/config.js (no ajv compile at start). It is loaded only when a file exists.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Document, LineCounter } from 'yaml';
import { readYaml } from '../../util/yaml-read.js';
import { UserError } from '../../util/errors.js';
import { validatorFile } from '../../util/paths.js';
import { formatDiagnostics } from '../../util/diagnostics.js';
import { problemDiagnostic, type AjvError, type Validator } from '../../util/yaml-source.js';
import { schemaProblems, type SchemaProblem, type SchemaWording } from '../../util/schema-errors.js';
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
    const ds = configProblems(errors, data).map((p) => problemDiagnostic(file, doc, lineCounter, p));
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
  return validate(data) ? [] : (validate.errors ?? []);
}

/** config.yaml's own words for what a key must be (keys.ts), over the schema's. */
const CONFIG_WORDING: SchemaWording = {
  root: 'the config file',
  expect(path) {
    const spec = keySpec(path.join('.'));
    if (spec) return spec.expect;
    // a value inside a mapping key (search_attributes.CustomerId) is described by its mapping's spec
    const parent = keySpec(path.slice(0, -1).join('.'));
    return parent?.type === 'map' ? parent.valueExpect : undefined;
  },
  keys: (path) => allowedKeys(path.join('.')),
};

/** The problems of a config object, worded as every schema error is (util/schema-errors.ts). */
export function configProblems(errors: readonly AjvError[], data: unknown): SchemaProblem[] {
  return schemaProblems(errors, data, CONFIG_WORDING);
}

function allowedKeys(section: string): string[] {
  const prefix = section ? `${section}.` : '';
  const out = new Set<string>();
  for (const { key: k } of CONFIG_KEYS) {
    if (k.startsWith(prefix)) out.add(k.slice(prefix.length).split('.')[0]!);
  }
  return [...out];
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
