/**
 * The one wording of JSON-schema (ajv) errors, for every file stigmer checks against a schema (the
 * tasks file, config.yaml, agent.yaml, state.json). Each problem names the field by its full path
 * and says what was expected and what was found:
 *
 *   Expected tasks.b.timeout to be a duration like "30s", got "soon"
 *   unknown key "backend.local.llm.modle" (did you mean "model"?)
 *   missing required key "tasks.a.uses"
 *   Expected the key "My Task" in tasks to be letters, digits, "-" and "_", starting with a letter
 *
 * Where the problem is in a file is the reader's part (yaml-source.ts places a problem's path in a
 * YAML document); this module loads no YAML, so a reader of JSON does not pay for it.
 */
import { didYouMean } from './diagnostics.js';
import { pointerPath, type AjvError } from './json-pointer.js';

/** One problem of a document, at a path of its data. */
export interface SchemaProblem {
  /** the value the problem is about; for an unknown or misnamed key, that key's path */
  path: string[];
  /** the problem is a key's (unknown, misnamed, or the mapping it holds lacks a key): mark the key, not its value */
  onKey: boolean;
  message: string;
}

/** What a reader knows better than its schema. */
export interface SchemaWording {
  /** what the value at `path` must be ("an integer from 1 to 65535"); undefined: the schema says */
  expect?(path: readonly string[]): string | undefined;
  /** the keys the mapping at `path` allows; undefined: the schema's `properties` */
  keys?(path: readonly string[]): readonly string[] | undefined;
  /** the whole document, in a problem about its root (default "the file") */
  root?: string;
}

/** `tasks.a.with.args[0]` from ["tasks", "a", "with", "args", "0"]. */
export function fieldName(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' || /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** A found value as a problem shows it: strings quoted, collections by kind, long text cut. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string' && v.trim() === '') return 'an empty string'; // blank reads as empty
  if (Array.isArray(v)) return v.length ? `a list ${cut(JSON.stringify(v) ?? '')}` : 'an empty list';
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length ? `a mapping with ${cut(keys.join(', '))}` : 'an empty mapping';
  }
  return cut(JSON.stringify(v) ?? String(v));
}

function cut(s: string): string {
  return s.length > 60 ? `${s.slice(0, 59)}…` : s;
}

/** A schema description used as an expectation: "A duration like ..." -> "a duration like ..." */
function phrase(desc: string): string {
  return desc.charAt(0).toLowerCase() + desc.slice(1).replace(/\.$/, '');
}

function literal(v: unknown): string {
  return typeof v === 'string' && /^[\w.:/-]+$/.test(v) ? v : (JSON.stringify(v) ?? String(v));
}

const TYPES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
};

/** What the schema expected, in words, from the keyword that failed. */
function expectation(e: AjvError): string {
  const desc = e.parentSchema?.description;
  const p = e.params;
  switch (e.keyword) {
    case 'anyOf':
    case 'oneOf':
      return desc ? phrase(desc) : 'one of the allowed shapes';
    case 'pattern':
      return desc ? phrase(desc) : `text matching /${String(p['pattern'])}/`;
    case 'type':
      return String(p['type'])
        .split(',')
        .map((t) => TYPES[t] ?? t)
        .join(' or ');
    case 'const':
      return literal(p['allowedValue']);
    case 'enum':
      return `one of ${(p['allowedValues'] as unknown[]).map(literal).join(', ')}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `a number ${String(p['comparison'])} ${String(p['limit'])}`;
    case 'minLength':
      return p['limit'] === 1 ? 'a non-empty string' : `at least ${String(p['limit'])} characters`;
    case 'maxLength':
      return `at most ${String(p['limit'])} characters`;
    case 'minItems':
      return `a list of at least ${String(p['limit'])} items`;
    case 'maxItems':
      return `a list of at most ${String(p['limit'])} items`;
    case 'uniqueItems':
      return 'a list without repeated items';
    case 'format':
      return `a ${String(p['format'])}`;
    default:
      return desc ? phrase(desc) : `valid (${e.message ?? e.keyword})`;
  }
}

/** The allowed keys of the schema an additionalProperties error came from. */
function schemaKeys(e: AjvError): string[] {
  return Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
}

/**
 * Every problem the errors of one validation describe, one per place and fact: the bookkeeping
 * errors (`if`, `propertyNames`, the alternatives of an anyOf/oneOf) are folded into what they say.
 */
export function schemaProblems(errors: readonly AjvError[], data: unknown, wording: SchemaWording = {}): SchemaProblem[] {
  const root = wording.root ?? 'the file';
  const name = (path: readonly string[]): string => fieldName(path) || root;
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  const add = (path: string[], onKey: boolean, message: string): void => {
    const id = `${path.join('\0')}\0${message}`;
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ path, onKey, message });
  };
  const valueProblem = (path: string[], e: AjvError): void => {
    const value = valueAt(data, path);
    const expect = wording.expect?.(path) ?? expectation(e);
    const values = e.keyword === 'enum' ? (e.params['allowedValues'] as unknown[]) : [];
    const guess = typeof value === 'string' ? didYouMean(value, values.filter((v): v is string => typeof v === 'string')) : '';
    add(path, false, `Expected ${name(path)} to be ${expect}, got ${showValue(value)}${guess}`);
  };

  const byPath = new Map<string, AjvError[]>();
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'propertyNames') continue; // the errors beside them say it
    const list = byPath.get(e.instancePath) ?? [];
    list.push(e);
    byPath.set(e.instancePath, list);
  }
  for (const [instancePath, errs] of byPath) {
    const path = pointerPath(instancePath);
    // anyOf/oneOf: each alternative fails on its own; say once what was expected
    const alt = errs.find((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
    if (alt && !errs.some((e) => e.keyword === 'additionalProperties' || e.keyword === 'required')) {
      valueProblem(path, alt);
      continue;
    }
    for (const e of errs) {
      if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
      if (e.propertyName !== undefined) {
        // a key of the mapping at `path` breaks its propertyNames rule
        const expect = wording.expect?.([...path, e.propertyName]) ?? expectation(e);
        add([...path, e.propertyName], true, `Expected the key ${JSON.stringify(e.propertyName)} in ${name(path)} to be ${expect}`);
      } else if (e.keyword === 'additionalProperties') {
        const extra = String(e.params['additionalProperty']);
        const allowed = wording.keys?.(path) ?? schemaKeys(e);
        const guess = didYouMean(extra, allowed);
        add([...path, extra], true, `unknown key ${JSON.stringify(fieldName([...path, extra]))}${guess || (allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '')}`);
      } else if (e.keyword === 'required') {
        add(path, true, `missing required key ${JSON.stringify(fieldName([...path, String(e.params['missingProperty'])]))}`);
      } else valueProblem(path, e);
    }
  }
  return out;
}

/** The value at a path in plain data (undefined where the path leaves the data). */
export function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let cur = data;
  for (const p of path) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[p] : undefined;
  return cur;
}
