/**
 * `stigmer status` from src/cli.ts's light path (the spellings statusOptions takes), whole: the
 * preAction registration of secrets, the action, and the report of an error. scripts/bundle.mjs
 * builds it as a file of its own (dist/bundle/status-light.js, no chunks, no yaml: the path loaded
 * ~20 chunks of the split bundle), so it carries its own copy of the modules it uses, and the
 * secrets it registers mask what it prints: which is why it reports its own errors.
 */
import { registerActionSecrets } from './action-secrets.js';
import { printStatus } from '../engine/inspect.js';
import { resolveStack } from '../engine/stacks.js';
import { reportError } from '../util/report-error.js';
import { lightOptions } from '../util/light-args.js';

/**
 * `status`'s options in the spellings the light path takes (`-f/--file F`, `--data-dir D`, `--json`),
 * else undefined (commander parses them).
 */
export function statusOptions(args: readonly string[]): { file: string; dataDir?: string; json: boolean } | undefined {
  const got = lightOptions(args, { '-f': 'file', '--file': 'file', '--data-dir': 'dataDir' }, { '--json': 'json' });
  if (!got) return undefined;
  // commander's default of -f (src/commands/engine.ts)
  return { file: typeof got.file === 'string' ? got.file : './stigmer.tasks.yaml', ...(typeof got.dataDir === 'string' ? { dataDir: got.dataDir } : {}), json: got.json === true };
}

/** The light path's status (src/cli.ts): its exit code, or undefined for a spelling it does not take. */
export async function runStatus(args: readonly string[]): Promise<number | undefined> {
  const o = statusOptions(args);
  if (!o) return undefined;
  try {
    await registerActionSecrets(o);
    return printStatus(resolveStack(o).dataDir, o.json);
  } catch (err) {
    return reportError(err);
  }
}
