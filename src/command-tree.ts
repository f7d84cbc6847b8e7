/**
 * The command tree: commander and every command module, for each spelling src/cli.ts's light
 * paths do not take. Command modules register themselves on the program and get an `App` to learn
 * about interrupts; they import their heavy dependencies lazily inside their actions.
 */
import { EXIT } from './util/errors.js';
import { reportError } from './util/report-error.js';
import { mask } from './util/mask.js';
import { createApp } from './app.js';
import type { App } from './model/app.js';
import { didYouMean } from './util/diagnostics.js';
import type { Command } from 'commander';

/** Parse `argv` with commander and run the command it names: its exit code. */
export async function runCommandTree(argv: string[], version: string): Promise<number> {
  const [{ Command, CommanderError }, { registerCommands }] = await Promise.all([import('commander'), import('./commands/index.js')]);
  const app: App = createApp();
  const program = new Command('stigmer')
    .description('Zero-config local Stigmer, and the task-graph runner under it.')
    .version(version, '-V, --version', 'print the version')
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

