/**
 * `stigmer down`, on its light path (src/cli.ts) and through commander alike: the live supervisor
 * undoes the stack and exits; without one, the state file is undone here. Only what attaches to
 * the supervisor is loaded first (no command tree, no engine): the engine loads when there is no
 * supervisor and something to stop.
 */
import type { App } from '../model/app.js';
import { EXIT } from '../util/errors.js';
import { lightOptions } from '../util/light-args.js';

export type DownOutput = 'auto' | 'plain' | 'json';

/**
 * The down. `lightOnly` (src/down-cli.ts): undefined instead of loading the engine, when there is
 * no supervisor and something to undo from the state file (the whole CLI then runs it).
 */
export async function runDownCommand(o: { file: string; dataDir?: string; output: DownOutput }, app: App, opts: { lightOnly: true }): Promise<number | undefined>;
export async function runDownCommand(o: { file: string; dataDir?: string; output: DownOutput }, app: App): Promise<number>;
export async function runDownCommand(o: { file: string; dataDir?: string; output: DownOutput }, app: App, opts: { lightOnly?: boolean } = {}): Promise<number | undefined> {
  const [{ resolveStack }, { downThroughSupervisor }] = await Promise.all([import('../engine/stacks.js'), import('../daemon/client.js')]);
  const { dataDir } = resolveStack(o);
  const through = await downThroughSupervisor({ dataDir, app, output: o.output });
  if (through !== undefined) return through;
  // No state and nothing carrying the stack's marker: said without loading the engine (runDown says the same).
  const { nothingToStop, nothingToStopLine } = await import('../engine/leftovers.js');
  if (nothingToStop(dataDir)) {
    if (o.output !== 'json') process.stderr.write(`${nothingToStopLine(dataDir)}\n`);
    return EXIT.ok;
  }
  if (opts.lightOnly) return undefined;
  return (await import('../engine/drivers.js')).runDown({ dataDir, app, output: o.output });
}

/**
 * The arguments of a `down` that the light path takes (what follows `down`): -f/--file, --data-dir
 * and --output (a valid choice), each at most once, with a value that is not an option; anything
 * else (help, a typo, a repeat) is undefined and goes through commander.
 */
export function lightDownArgs(args: readonly string[]): { file: string; dataDir?: string; output: DownOutput } | undefined {
  const got = lightOptions(args, { '-f': 'file', '--file': 'file', '--data-dir': 'dataDir', '--output': 'output' });
  const output = got?.output ?? 'auto';
  if (!got || (output !== 'auto' && output !== 'plain' && output !== 'json')) return undefined;
  return { file: typeof got.file === 'string' ? got.file : './stigmer.tasks.yaml', ...(typeof got.dataDir === 'string' ? { dataDir: got.dataDir } : {}), output };
}
