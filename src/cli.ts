/**
 * The process entry: parses the command line, installs the signal handlers and sets the exit
 * code. Command modules register themselves on the program and get an `App` to learn about
 * interrupts; they import their heavy dependencies lazily inside their actions.
 */
import { EXIT } from './util/errors.js';
import { reportError } from './util/report-error.js';
import { mask } from './util/mask.js';
import { createApp } from './app.js';
import type { App } from './model/app.js';
import { didYouMean } from './util/diagnostics.js';
import type { Command } from 'commander';

// `stigmer up | head` closes our stdout early: keep running (and undoing) instead of crashing.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

/** package.json's version, inlined by scripts/bundle.mjs (as in src/util/version.ts, but here no chunk to load). */
declare const __STIGMER_VERSION__: string | undefined;

/** The bundle knows its version; tsc's unbundled output reads package.json (a lazy import, never taken in the bundle). */
const version = async (): Promise<string> =>
  typeof __STIGMER_VERSION__ === 'string' ? __STIGMER_VERSION__ : (await import('./util/paths.js')).stigmerVersion();

async function main(argv: string[]): Promise<number> {
  // Scripts call `stigmer --version` often: answer it without loading the command tree.
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${await version()}\n`);
    return EXIT.ok;
  }
  // Commands that must start fast run without the command tree (commander and every command
  // module): what their commander path does (the preAction secrets, then the action).
  const light = lightCommand(argv);
  if (light) {
    try {
      const code = await light();
      if (code !== undefined) return code;
    } catch (err) {
      return reportError(err);
    }
  }
  const [{ Command, CommanderError }, { registerCommands }] = await Promise.all([import('commander'), import('./commands/index.js')]);
  const app: App = createApp();
  const program = new Command('stigmer')
    .description('Zero-config local Stigmer, and the task-graph runner under it.')
    .version(await version(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(mask(s)), writeOut: (s) => process.stdout.write(s) });
  registerCommands(program, app);
  const unknown = unknownHelpTopic(program, argv.slice(2));
  if (unknown) {
    process.stderr.write(`${mask(unknown)}\n(run with --help for usage)\n`);
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv);
    return app.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with code 0; usage errors were already printed.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(err);
  }
}

/**
 * The exact spellings with a light path, else undefined (anything else, --help or a typo
 * included, goes through commander): `local status [--json]` (goal: 2x `node -e 0`), `status` with
 * its options (see statusOptions; goal: 1.5x `node -e 0`), and
 * `internal supervise --data-dir D` as the CLI spawns the supervisor (on the critical path of
 * every detached `up` and `local start`). Each runs what its commander path runs: the preAction
 * registration of secrets (with the options it names), then the action.
 */
function lightCommand(argv: string[]): (() => Promise<number | undefined>) | undefined {
  const [a, b, c, d] = argv.slice(2);
  const light = (opts: { dataDir?: string; file?: string }, action: () => Promise<number>) => async (): Promise<number> => {
    await (await import('./commands/action-secrets.js')).registerActionSecrets(opts);
    return action();
  };
  if (a === 'local' && b === 'status' && (argv.length === 4 || (argv.length === 5 && c === '--json'))) {
    // one file of the bundle that registers the secrets and reports its own errors (src/commands/local-status.ts)
    return async () => (await import('./commands/local-status.js')).runLocalStatus(c === '--json');
  }
  const engineStatus = a === 'status' ? statusOptions(argv.slice(3)) : undefined;
  if (engineStatus) {
    // one file of the bundle too (src/commands/status-light.ts)
    return async () => (await import('./commands/status-light.js')).runStatus(engineStatus);
  }
  // validate and graph: one file of their own in the bundle (src/commands/engine-light.ts), which
  // reports its own errors; undefined from it (a spelling it does not take) goes on to commander
  if (a === 'validate' || a === 'graph') {
    return async () => (await import('./commands/engine-light.js')).runLight(argv.slice(2));
  }
  if (a === 'internal' && b === 'supervise' && c === '--data-dir' && argv.length === 6 && d && !d.startsWith('-')) {
    return light({ dataDir: d }, async () => (await import('./commands/supervise.js')).runSupervise(d));
  }
  return undefined;
}

/**
 * `status`'s options when each is spelled as its help gives it (`-f F` or `--file F`, `--data-dir D`,
 * `--json`), each at most once and every value not an option: else undefined (commander parses it).
 */
function statusOptions(args: string[]): { file: string; dataDir?: string; json: boolean } | undefined {
  const o: { file?: string; dataDir?: string; json?: boolean } = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json' && o.json === undefined) {
      o.json = true;
      continue;
    }
    const key = a === '-f' || a === '--file' ? 'file' : a === '--data-dir' ? 'dataDir' : undefined;
    const value = args[i + 1];
    if (!key || o[key] !== undefined || !value || value.startsWith('-')) return undefined;
    o[key] = value;
    i++;
  }
  // commander's default of -f (src/commands/engine.ts)
  return { file: o.file ?? './stigmer.tasks.yaml', ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }), json: o.json === true };
}

/**
 * `stigmer help nope` (or `stigmer local help nope`): commander prints the whole help for an
 * unknown topic and says nothing about it. The message it gives for `stigmer nope` instead.
 */
function unknownHelpTopic(program: Command, args: string[]): string | undefined {
  let cmd = program;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) return undefined;
    const byName = (name: string): Command | undefined => cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (a === 'help' && cmd.commands.length && !byName('help')?.commands.length) {
      const topic = args[i + 1];
      if (topic === undefined || topic.startsWith('-') || byName(topic)) return undefined;
      const names = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
      return `error: unknown command '${topic}'${didYouMean(topic, names).replace(' (did you mean "', ' (Did you mean ').replace('"?)', '?)')}`;
    }
    const sub = byName(a);
    if (!sub) return undefined;
    cmd = sub;
  }
  return undefined;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`stigmer: internal error: ${String(err)}\n`);
    process.exitCode = 70;
  },
);
