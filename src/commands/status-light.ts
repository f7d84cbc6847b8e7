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

export async function runStatus(o: { file: string; dataDir?: string; json: boolean }): Promise<number> {
  try {
    await registerActionSecrets(o);
    return printStatus(resolveStack(o).dataDir, o.json);
  } catch (err) {
    return reportError(err);
  }
}
