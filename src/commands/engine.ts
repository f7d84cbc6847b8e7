/**
 * The generic task-graph commands, on any tasks file: up, down, run, status, logs, ls, graph,
 * validate. Each names its stack by its tasks file (`-f`, default ./stigmer.tasks.yaml): the data
 * dir is the file's own (src/engine/stacks.ts) unless `--data-dir` says otherwise.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { App } from '../model/app.js';
import type { ResolvedStack } from '../engine/stacks.js';
import { kinds } from './kinds.js';
import { DEFAULT_FILE, graphAction, scope, validateAction } from './engine-light.js';

interface FileOpts {
  file: string;
  dataDir?: string;
}

const DATA_DIR_HELP = "where state, logs and the lock live (default: the tasks file's own, <STIGMER_HOME>/stacks/<folder>-<hash>; see `stigmer ls`)";

/** `-f/--file` and `--data-dir`; `short: false` leaves `-f` to the command (`logs -f` follows). */
function fileOptions(cmd: Command, short = true): Command {
  return cmd.option(short ? '-f, --file <path>' : '--file <path>', 'the tasks file that names the stack', DEFAULT_FILE).option('--data-dir <dir>', DATA_DIR_HELP);
}

/** The stack a command names: its tasks file and data dir. */
async function stackOf(o: FileOpts): Promise<ResolvedStack> {
  const { resolveStack } = await import('../engine/stacks.js');
  return resolveStack(o);
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
 * `stigmer run start-agent-runner` away from a tasks file: that task is the Stigmer stack's, whose
 * file lives in the package; `local restart <component>` reruns it from any directory.
 */
async function pointAtLocalRestart(task: string, file: string): Promise<void> {
  const { existsSync } = await import('node:fs');
  if (file !== DEFAULT_FILE || existsSync(file)) return;
  const { COMPONENTS } = await import('../stack/local.js');
  const component = Object.entries(COMPONENTS).find(([, t]) => t === task)?.[0];
  if (!component) return;
  const { UserError, EXIT } = await import('../util/errors.js');
  throw new UserError(
    `stigmer run ${task}: there is no ./stigmer.tasks.yaml here. ${task} is the local Stigmer stack's task; from any directory:\n  stigmer local restart ${component}`,
    EXIT.usage,
  );
}

export function register(program: Command, app: App): void {

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
      const [stack, { existsSync }] = await Promise.all([stackOf(o), import('node:fs')]);
      // Said once, when the stack's data dir is made; `stigmer ls` and `status` show it later.
      if (stack.from === 'project' && !existsSync(stack.dataDir) && o.output !== 'json') process.stderr.write(`stigmer: this stack keeps its state and logs in ${stack.dataDir}\n`);
      // The data dir's supervisor runs the graph and stays the parent of its services; in the
      // foreground this command stays attached until the stack stops (Ctrl-C stops it).
      const { upThroughSupervisor, upInForeground } = await import('../daemon/client.js');
      const { loadDotenv } = await import('../stack/config/dotenv.js');
      app.exitCode = await (o.foreground ? upInForeground : upThroughSupervisor)({
        file: o.file,
        dataDir: stack.dataDir,
        env: loadDotenv(process.cwd(), process.env),
        app,
        output: o.output,
        noInput: !o.input,
        ...(o.only ? { only: o.only } : {}),
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      });
    });

  fileOptions(program.command('down'))
    .description("undo everything the stack's state recorded, in reverse order (safe to run twice; the tasks file need not exist or be valid)")
    .addOption(outputOption())
    .action(async (o: FileOpts & { output: 'auto' | 'plain' | 'json' }) => {
      // The live supervisor undoes the stack and exits; without one, undo from the state file (src/cli.ts takes the same path lightly).
      app.exitCode = await (await import('./down.js')).runDownCommand(o, app);
    });

  fileOptions(program.command('run'))
    .argument('<task>', 'the task to rerun')
    .description('rerun one step: undo its previous instance if it is a running service, run its unsatisfied needs, then the task')
    .option('--no-deps', 'do not run its needs: use their recorded outputs')
    .option('--no-input', 'never prompt; fail when input is needed')
    .addOption(outputOption())
    .action(async (task: string, o: FileOpts & { deps: boolean; input: boolean; output: 'auto' | 'plain' | 'json' }) => {
      await pointAtLocalRestart(task, o.file);
      const [{ runTask }, stack, { runThroughSupervisor }] = await Promise.all([import('../engine/drivers.js'), stackOf(o), import('../daemon/client.js')]);
      const { config, env } = await scope();
      // A live supervisor is the stack's one writer: it reruns the step (a service it starts is supervised).
      app.exitCode =
        (await runThroughSupervisor({ file: o.file, task, dataDir: stack.dataDir, env, app, output: o.output, noInput: !o.input, ...(o.deps ? {} : { noDeps: true }) })) ??
        (await runTask({ file: o.file, kinds, dataDir: stack.dataDir, config, env, app, output: o.output, task, noDeps: !o.deps, noInput: !o.input }));
    });

  fileOptions(program.command('restart'))
    .argument('<task>', 'the service to restart')
    .description("restart one service of the running stack through its supervisor: stop it (its stop signal and grace), start it, wait until it is ready; the tasks that need it keep running")
    .option('--no-input', 'never prompt; fail when input is needed')
    .addOption(outputOption())
    .action(async (task: string, o: FileOpts & { input: boolean; output: 'auto' | 'plain' | 'json' }) => {
      const [stack, { restartThroughSupervisor }, { loadDotenv }] = await Promise.all([stackOf(o), import('../daemon/client.js'), import('../stack/config/dotenv.js')]);
      app.exitCode = await restartThroughSupervisor({ file: o.file, task, dataDir: stack.dataDir, env: loadDotenv(process.cwd(), process.env), app, output: o.output, noInput: !o.input });
    });

  fileOptions(program.command('status'))
    .description("each task's state, pid, uptime, address and last probe result")
    .addHelpText('after', '\nThis is the engine\'s view: every task of a stack. For the Stigmer stack as components (Temporal\nhealth, the LLM and its model, which keys are set), see `stigmer local status`.')
    .option('--json', 'print JSON')
    .action(async (o: FileOpts & { json?: boolean }) => {
      const [{ printStatus }, stack] = await Promise.all([import('../engine/inspect.js'), stackOf(o)]);
      app.exitCode = printStatus(stack.dataDir, !!o.json);
    });

  logOptions(fileOptions(program.command('logs'), false))
    .argument('[task...]', 'tasks to show (default: all), merged line by line in time order and prefixed by task')
    .description("the stack's logs: the last lines of each task, or follow them (--file names the stack: -f is --follow here)")
    .action(async (tasks: string[], o: FileOpts & LogFlags) => {
      const [{ printLogs, knownTaskNames }, stack] = await Promise.all([import('../engine/logs.js'), stackOf(o)]);
      const known = await knownTaskNames(stack.dataDir, stack.file);
      app.exitCode = await runLogs(app, o, (opts) => printLogs(stack.dataDir, { ...opts, tasks, known }));
    });

  eventOptions(fileOptions(program.command('events')))
    .argument('[task...]', "only these tasks' events (the supervisor's own are always shown)")
    .description("the stack's lifecycle events (started, ready, exited, restarting, unhealthy, healthy, crash-loop, stopped): the last 10, then new ones until Ctrl-C")
    .addHelpText('after', '\nExamples:\n  stigmer events --json                 # one JSON object per line, following\n  stigmer events server --no-follow     # what was recorded for one service, then exit')
    .action(async (tasks: string[], o: FileOpts & EventFlags) => {
      const [{ printEvents }, stack] = await Promise.all([import('../supervisor/print-events.js'), stackOf(o)]);
      app.exitCode = await runEvents(app, o, (opts) => printEvents(stack.dataDir, { ...opts, tasks }));
    });

  program
    .command('ls')
    .description('every stack on this machine: state (running, degraded, stopped), services up, supervisor pid, tasks file, data dir')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { printStacks } = await import('../engine/list-stacks.js');
      app.exitCode = printStacks(!!o.json);
    });

  fileOptions(program.command('graph'))
    .description('the plan: tasks, their needs, and the critical path')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'mermaid', 'json']).default('text'))
    .action(async (o: FileOpts & { format: 'text' | 'mermaid' | 'json' }) => graphAction(o));

  fileOptions(program.command('validate'))
    .description('check the tasks file (syntax, schema, kinds, needs, cycles, references) without running anything')
    .action(async (o: FileOpts) => validateAction(o));
}

export interface LogFlags {
  follow?: boolean;
  lines?: number;
  since?: string;
  timestamps?: boolean;
}

/** The flags `logs` and `local logs` share. */
export function logOptions(cmd: Command): Command {
  return cmd
    .option('-f, --follow', 'keep printing new lines (across restarts and rotations) until Ctrl-C')
    .option('-n, --lines <n>', 'the last N lines of each task (default 100; all of them with --since)', nonNegativeInt)
    .option('--since <when>', 'only lines since a duration ago (10m, 2h, 90s) or a time (2026-12-02T06:30:00Z)')
    .option('--timestamps', "show each line's time (RFC 3339, UTC)");
}

export interface EventFlags {
  json?: boolean;
  follow: boolean;
  lines?: number;
  since?: string;
}

/** The flags `events` and `local events` share. */
export function eventOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'one JSON object per line: {"at","task","type",...}')
    .option('-n, --lines <n>', 'the last N recorded events first (default 10; all of them with --since or --no-follow)', nonNegativeInt)
    .option('--since <when>', 'only events since a duration ago (10m, 2h, 90s) or a time (2026-12-02T06:30:00Z)')
    .option('--no-follow', 'print the recorded events and exit');
}

/** Run an events command: Ctrl-C while following ends it with 130 and says nothing. */
export async function runEvents(app: App, o: EventFlags, print: (opts: { json: boolean; lines?: number; since?: number; follow: boolean; signal: AbortSignal }) => Promise<number>): Promise<number> {
  return runLogs(app, o, (opts) => print({ json: !!o.json, follow: opts.follow, signal: opts.signal, ...(opts.lines !== undefined ? { lines: opts.lines } : {}), ...(opts.since !== undefined ? { since: opts.since } : {}) }));
}

/** Run a logs command: Ctrl-C while following ends it with 130 and says nothing. */
export async function runLogs(app: App, o: LogFlags, print: (opts: { lines?: number; since?: number; follow: boolean; timestamps: boolean; signal: AbortSignal }) => Promise<number>): Promise<number> {
  const { parseSince } = await import('../engine/logs.js');
  const since = o.since !== undefined ? parseSince(o.since) : undefined;
  if (o.follow) app.listen(undefined, { quiet: true });
  const code = await print({ ...(o.lines !== undefined ? { lines: o.lines } : {}), ...(since !== undefined ? { since } : {}), follow: !!o.follow, timestamps: !!o.timestamps, signal: app.signal });
  const { signalExitCode } = await import('../model/app.js');
  const sig = app.interruptedBy();
  return sig ? signalExitCode[sig] : code;
}
