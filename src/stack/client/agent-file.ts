/**
 * Reading `agent.yaml` for `stigmer agent apply`: YAML syntax and schema errors become
 * `file:line:col: message` diagnostics with the offending line and a caret, all at once, exit 2.
 * The schema (schemas/agent.schema.json) is checked by the validator that
 * scripts/build-validators.mjs precompiled into dist/validators/agent.js.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Document, LineCounter, Node } from 'yaml';
import { readYaml } from '../../util/yaml-read.js';
import { UserError, EXIT } from '../../util/errors.js';
import { didYouMean, formatDiagnostics, type Diagnostic } from '../../util/diagnostics.js';
import { diagnosticAt, findNode, pairOf, valueAt, type AjvError, type Validator } from '../../util/yaml-source.js';
import { validatorFile } from '../../util/paths.js';

/** What agent.yaml says. */
export interface AgentSpec {
  name: string;
  instructions: string;
  model?: string | null;
}

const PROPERTIES = ['name', 'instructions', 'model'];
const RULES: Record<string, string> = {
  name: 'a name of lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters',
  instructions: 'a non-empty string',
  model: 'a non-empty string',
};

async function agentValidator(): Promise<Validator> {
  const mod = (await import(pathToFileURL(validatorFile('agent')).href)) as { default: Validator };
  return mod.default;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return value.trim() === '' ? 'an empty string' : JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}

/** Read, parse and check an agent file. Throws UserError (exit 2) with every problem found. */
export async function readAgentFile(file: string, displayPath: string = file): Promise<AgentSpec> {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UserError(`${displayPath}: cannot read the agent file: ${why}`, EXIT.usage);
  }
  return checkAgentSource(source, displayPath);
}

/** Parse and check agent YAML text; `file` names it in the diagnostics. */
export async function checkAgentSource(source: string, file: string): Promise<AgentSpec> {
  const { doc, lc, data, diagnostics } = readYaml(source, file, { prefix: 'invalid YAML: ' });
  if (diagnostics.length) throw new UserError(formatDiagnostics(diagnostics, source), EXIT.usage);
  const validate = await agentValidator();
  if (validate(data)) return data as AgentSpec;
  const ds = (validate.errors ?? []).map((e) => diagnosticFor(e, doc, lc, data, file));
  throw new UserError(formatDiagnostics(dedupe(ds), source), EXIT.usage);
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const key = `${d.line}:${d.col}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function diagnosticFor(e: AjvError, doc: Document, lc: LineCounter, data: unknown, file: string): Diagnostic {
  const field = e.instancePath.replace(/^\//, '');
  const root = (doc.contents as Node | null) ?? undefined;
  if (field === '') {
    if (e.keyword === 'type') {
      return diagnosticAt(file, lc, root, `Expected the file to be a mapping with name, instructions and optionally model, got ${describe(data)}`);
    }
    if (e.keyword === 'required') {
      const missing = String(e.params['missingProperty']);
      return diagnosticAt(file, lc, root, `missing required property "${missing}"`, { length: 1 });
    }
    if (e.keyword === 'additionalProperties') {
      const extra = String(e.params['additionalProperty']);
      return diagnosticAt(file, lc, pairOf(root, extra)?.key ?? root, `unknown property "${extra}"${didYouMean(extra, PROPERTIES)}`);
    }
  }
  const at = findNode(doc, [field]);
  const node = at.found ? at.node : undefined;
  const value = valueAt(data, [field]);
  // a field that is not in the file is marked at the start of the mapping
  const opts = { fallback: root?.range?.[0] ?? 0 };
  if (e.keyword === 'type' || e.keyword === 'pattern') {
    return diagnosticAt(file, lc, node, `Expected ${field} to be ${RULES[field] ?? 'valid'}, got ${describe(value)}`, opts);
  }
  return diagnosticAt(file, lc, node, `${field}: ${e.message ?? e.keyword}`, opts);
}
