/**
 * `stigmer local status [--json]` from src/cli.ts's light path, whole: the preAction registration
 * of secrets, the action, and the report of an error. scripts/bundle.mjs builds it as a file of
 * its own (dist/bundle/local-status.js, no chunks: node's loader costs ~0.5 ms a file, and this
 * path loaded ~50), so it carries its own copy of the modules it uses: the secrets it registers
 * and the masking of what it prints are one copy's, which is why it reports its own errors.
 */
import { registerActionSecrets } from './action-secrets.js';
import { printStackStatus } from '../stack/status.js';
import { reportError } from '../util/report-error.js';

export async function runLocalStatus(json: boolean): Promise<number> {
  try {
    await registerActionSecrets({});
    return await printStackStatus(json);
  } catch (err) {
    return reportError(err);
  }
}
