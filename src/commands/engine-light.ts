/**
 * `stigmer validate` and `stigmer graph`, the two commands an editor or a script runs on every
 * save: their actions (which the commander tree calls too) and their light path, which runs them
 * without the command tree for the exact spellings parsed here.
 *
 * scripts/bundle.mjs builds this module, for src/cli.ts's light path, as one file of its own
 * (dist/bundle/engine-light.js, yaml and the loader inlined): node 20's ESM loader costs ~0.5-1 ms a
 * file, and the split bundle spread this path over ~45 chunks. That file holds its own copy of the
 * modules it uses, so the light path reports its errors here (util/report-error.ts), with the
 * classes and the secrets of that copy.
 */
import { registerActionSecrets } from './action-secrets.js';
import { kinds } from './kinds.js';
import { reportError } from '../util/report-error.js';
import { lightOptions } from '../util/light-args.js';

export interface EngineFileOpts {
  file: string;
  dataDir?: string;
}

export type GraphFormat = 'text' | 'mermaid' | 'json';
const FORMATS: readonly string[] = ['text', 'mermaid', 'json'] satisfies GraphFormat[];

/** The default of `-f/--file` (src/commands/engine.ts). */
export const DEFAULT_FILE = './stigmer.tasks.yaml';

/**
 * The config and environment `${{ config.* }}` and `${{ env.* }}` read. The stigmer config is
 * loaded only when the tasks file reads it, and then once: a file that never mentions `config`
 * runs whatever state ~/.stigmer/config.yaml is in.
 */
export async function scope(): Promise<{ config: () => Promise<unknown>; env: Record<string, string | undefined> }> {
  const { loadDotenv } = await import('../stack/config/dotenv.js');
  let config: Promise<unknown> | undefined;
  const load = async (): Promise<unknown> => (await import('../stack/config/index.js')).loadConfig({}).config;
  return { config: () => (config ??= load()), env: loadDotenv(process.cwd(), process.env) };
}

/** `stigmer validate`: check the tasks file, print `<file>: ok (N tasks)`. */
export async function validateAction(o: EngineFileOpts): Promise<void> {
  const { loadTasksFile } = await import('../engine/load.js');
  const s = await scope();
  const file = await loadTasksFile(o.file, { config: s.config, kinds });
  process.stdout.write(`${file.displayPath}: ok (${file.tasks.size} task${file.tasks.size === 1 ? '' : 's'})\n`);
}

/** `stigmer graph`: the plan, its needs and the critical path. */
export async function graphAction(o: EngineFileOpts & { format: GraphFormat }): Promise<void> {
  const [{ loadTasksFile }, { buildGraph }, { describeGraph }, { resolveStack }] = await Promise.all([
    import('../engine/load.js'),
    import('../engine/graph.js'),
    import('../engine/inspect.js'),
    import('../engine/stacks.js'),
  ]);
  const s = await scope();
  const file = await loadTasksFile(o.file, { config: s.config, kinds });
  process.stdout.write(describeGraph(buildGraph(file), o.format, resolveStack(o).dataDir) + '\n');
}

/**
 * The options of `validate` or `graph` in the spellings the light path takes (util/light-args.ts):
 * `-f/--file <path>`, `--data-dir <dir>` and (graph) `--format <text|mermaid|json>`. Anything else
 * (--help, a typo, an extra argument) is undefined: commander parses it, and says what is wrong.
 */
export function parseLight(args: string[]): { command: 'validate' | 'graph'; opts: EngineFileOpts & { format: GraphFormat } } | undefined {
  const [command, ...rest] = args;
  if (command !== 'validate' && command !== 'graph') return undefined;
  const got = lightOptions(rest, { '-f': 'file', '--file': 'file', '--data-dir': 'dataDir', ...(command === 'graph' ? { '--format': 'format' } : {}) });
  const format = got?.format ?? 'text';
  if (!got || typeof format !== 'string' || !FORMATS.includes(format)) return undefined;
  const { file, dataDir } = got;
  return { command, opts: { file: typeof file === 'string' ? file : DEFAULT_FILE, ...(typeof dataDir === 'string' ? { dataDir } : {}), format: format as GraphFormat } };
}

/**
 * The light path (src/cli.ts): what the commander path runs (the preAction registration of
 * secrets, then the action), with its exit code; undefined for a spelling it does not take.
 */
export async function runLight(args: string[]): Promise<number | undefined> {
  const parsed = parseLight(args);
  if (!parsed) return undefined;
  const { command, opts } = parsed;
  try {
    await registerActionSecrets(opts);
    if (command === 'validate') await validateAction(opts);
    else await graphAction(opts);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
