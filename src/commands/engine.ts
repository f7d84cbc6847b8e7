/**
 * The generic task-graph commands, on any tasks file: up, down, run, status, logs, graph, validate.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { App } from '../model/app.js';
import { stigmerHome } from '../util/paths.js';
import { kinds } from './kinds.js';

const DEFAULT_FILE = './stigmer.tasks.yaml';

interface FileOpts {
  file: string;
  dataDir?: string;
}

function fileOptions(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'the tasks file', DEFAULT_FILE)
    .option('--data-dir <dir>', 'where state, logs and the lock live (default: $STIGMER_HOME, else ~/.stigmer)');
}

function dataDirOption(cmd: Command): Command {
  return cmd.option('--data-dir <dir>', 'where state, logs and the lock live (default: $STIGMER_HOME, else ~/.stigmer)');
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number >= 1, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number >= 0, got "${value}"`);
  return n;
}

const outputOption = (): Option => new Option('--output <format>', 'progress output: auto (a live view on a terminal, plain lines otherwise), plain, or json (one event per line)').choices(['auto', 'plain', 'json']).default('auto');

/**
 * The config and environment `${{ config.* }}` and `${{ env.* }}` read. The stigmer config is
 * loaded only when the tasks file reads it, and then once: a file that never mentions `config`
 * runs whatever state ~/.stigmer/config.yaml is in.
 */
async function scope(): Promise<{ config: () => Promise<unknown>; env: Record<string, string | undefined> }> {
  const { loadDotenv } = await import('../stack/config/dotenv.js');
  let config: Promise<unknown> | undefined;
  const load = async (): Promise<unknown> => (await import('../stack/config/index.js')).loadConfig({}).config;
  return { config: () => (config ??= load()), env: loadDotenv(process.cwd(), process.env) };
}

export function register(program: Command, app: App): void {
  const dataDir = (o: { dataDir?: string }): string => o.dataDir ?? stigmerHome();

  fileOptions(program.command('up'))
    .description('run the graph: start every task as soon as its needs are done; undo all of it if anything fails')
    .option('-d, --detach', 'return once every task is done or ready, leaving services running (default)')
    .option('--foreground', 'stay attached, stream every service\'s output, and undo everything on Ctrl-C')
    .option('--only <task...>', 'run only these tasks and what they need')
    .option('--concurrency <n>', 'run at most N tasks at once', positiveInt)
    .option('--no-input', 'never prompt; fail when input is needed')
    .addOption(outputOption())
    .action(async (o: FileOpts & { foreground?: boolean; detach?: boolean; only?: string[]; concurrency?: number; input: boolean; output: 'auto' | 'plain' | 'json' }) => {
      if (o.foreground && o.detach) throw new (await import('../util/errors.js')).UserError('stigmer up: --detach and --foreground exclude each other', 2);
      const { runUp } = await import('../engine/drivers.js');
      app.exitCode = await runUp({
        file: o.file,
        kinds,
        dataDir: dataDir(o),
        ...(await scope()),
        app,
        output: o.output,
        noInput: !o.input,
        ...(o.foreground ? { foreground: true } : {}),
        ...(o.only ? { only: o.only } : {}),
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      });
    });

  dataDirOption(program.command('down'))
    .description('undo everything the state recorded, in reverse order (safe to run twice; needs no valid tasks file)')
    .addOption(outputOption())
    .action(async (o: { dataDir?: string; output: 'auto' | 'plain' | 'json' }) => {
      const { runDown } = await import('../engine/drivers.js');
      app.exitCode = await runDown({ dataDir: dataDir(o), app, output: o.output });
    });

  fileOptions(program.command('run'))
    .argument('<task>', 'the task to rerun')
    .description('rerun one step: undo its previous instance if it is a running service, run its unsatisfied needs, then the task')
    .option('--no-deps', 'do not run its needs: use their recorded outputs')
    .option('--no-input', 'never prompt; fail when input is needed')
    .addOption(outputOption())
    .action(async (task: string, o: FileOpts & { deps: boolean; input: boolean; output: 'auto' | 'plain' | 'json' }) => {
      const { runTask } = await import('../engine/drivers.js');
      app.exitCode = await runTask({ file: o.file, kinds, dataDir: dataDir(o), ...(await scope()), app, output: o.output, task, noDeps: !o.deps, noInput: !o.input });
    });

  dataDirOption(program.command('status'))
    .description("each task's state, pid, uptime, address and last probe result")
    .option('--json', 'print JSON')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const { printStatus } = await import('../engine/inspect.js');
      app.exitCode = printStatus(dataDir(o), !!o.json);
    });

  dataDirOption(program.command('logs'))
    .argument('[task]', 'one task (default: all, prefixed by task name)')
    .description("a task's log, or all of them")
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'lines of each log to show', nonNegativeInt, 100)
    .action(async (task: string | undefined, o: { dataDir?: string; follow?: boolean; lines: number }) => {
      const { printLogs } = await import('../engine/inspect.js');
      if (o.follow) app.listen();
      app.exitCode = await printLogs(dataDir(o), { ...(task ? { task } : {}), lines: o.lines, follow: !!o.follow, signal: app.signal });
      if (app.interruptedBy()) app.exitCode = 0;
    });

  fileOptions(program.command('graph'))
    .description('the plan: tasks, their needs, and the critical path')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'mermaid', 'json']).default('text'))
    .action(async (o: FileOpts & { format: 'text' | 'mermaid' | 'json' }) => {
      const [{ loadTasksFile }, { buildGraph }, { describeGraph }] = await Promise.all([import('../engine/load.js'), import('../engine/graph.js'), import('../engine/inspect.js')]);
      const s = await scope();
      const file = await loadTasksFile(o.file, { config: s.config, kinds });
      process.stdout.write(describeGraph(buildGraph(file), o.format, dataDir(o)) + '\n');
    });

  fileOptions(program.command('validate'))
    .description('check the tasks file (syntax, schema, kinds, needs, cycles, references) without running anything')
    .action(async (o: FileOpts) => {
      const { loadTasksFile } = await import('../engine/load.js');
      const s = await scope();
      const file = await loadTasksFile(o.file, { config: s.config, kinds });
      process.stdout.write(`${file.displayPath}: ok (${file.tasks.size} task${file.tasks.size === 1 ? '' : 's'})\n`);
    });
}
