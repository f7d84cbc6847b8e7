/**
 * `stigmer local status [--json]` as src/cli.ts runs it without commander (its goal is 2x
 * `node -e 0`, and commander with the command tree is ~165 KB of modules): the preAction
 * registration of every command, then the action of src/commands/local.ts.
 */
import { registerActionSecrets } from './action-secrets.js';

/** The light path: what commander's preAction does first (src/commands/action-secrets.ts), then the action. */
export async function runLocalStatus(json: boolean): Promise<number> {
  await registerActionSecrets({});
  const { printStackStatus } = await import('../stack/status.js');
  return printStackStatus(json);
}
