/**
 * Reading `agent.yaml` for `stigmer agent apply`: YAML syntax and schema errors become
 * `file:line:col: message` diagnostics with the offending line and a caret, all at once, exit 2.
 * The schema (schemas/agent.schema.json) is checked by the validator that
 * scripts/build-validators.mjs precompiled into dist/validators/agent.js.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { readYaml } from '../../util/yaml-read.js';
import { UserError, EXIT } from '../../util/errors.js';
import { formatDiagnostics } from '../../util/diagnostics.js';
import { problemDiagnostic, type Validator } from '../../util/yaml-source.js';
import { schemaProblems, type SchemaWording } from '../../util/schema-errors.js';
import { validatorFile } from '../../util/paths.js';

/** What agent.yaml says. */
export interface AgentSpec {
  name: string;
  instructions: string;
  model?: string | null;
}

/** What each field must be, in the words of `stigmer agent apply`'s docs (the schema's are longer). */
const RULES: Record<string, string> = {
  '': 'a mapping with name, instructions and optionally model',
  name: 'a name of lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters',
  instructions: 'a non-empty string',
  model: 'a non-empty string',
};
const AGENT_WORDING: SchemaWording = { expect: (path) => RULES[path.join('.')] };

async function agentValidator(): Promise<Validator> {
  const mod = (await import(pathToFileURL(validatorFile('agent')).href)) as { default: Validator };
  return mod.default;
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
  const ds = schemaProblems(validate.errors ?? [], data, AGENT_WORDING).map((p) => problemDiagnostic(file, doc, lc, p));
  throw new UserError(formatDiagnostics(ds, source), EXIT.usage);
}
