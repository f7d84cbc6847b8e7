/**
 * `stigmer local start|stop|restart|status|logs`: the zero-config local Stigmer stack (managed
 * Temporal, stigmer-server, agent-runner), run from the packaged stigmer.tasks.yaml with
 * STIGMER_HOME as the data dir. stop, status and logs work from the state file alone, so they
 * work with a broken config.yaml.
 */
import { Option, type Command } from 'commander';
import type { App } from '../model/app.js';
import { eventOptions, logOptions, runEvents, runLogs, type EventFlags, type LogFlags } from './engine.js';

interface ConfigFlagOpts {
  llmProvider?: string | undefined;
  llmModel?: string | undefined;
  llmBaseUrl?: string | undefined;
  temporalAddress?: string | undefined;
}

interface StartOpts extends ConfigFlagOpts {
  foreground?: boolean;
  input: boolean;
  pull: boolean;
  output: 'auto' | 'plain' | 'json';
}

function startOptions(cmd: Command): Command {
  return cmd
    .option('--no-input', 'never prompt (for an API key); fail at once when one is missing')
    .addOption(new Option('--output <format>', 'progress output: auto, plain, or json (one event per line)').choices(['auto', 'plain', 'json']).default('auto'))
    .option('--llm-provider <provider>', 'ollama, anthropic or openai (over STIGMER_LLM_PROVIDER and the config)')
    .option('--llm-model <model>', 'the model id (over STIGMER_LLM_MODEL and the config)')
    .option('--llm-base-url <url>', "the provider's API base URL (over STIGMER_LLM_BASE_URL and the config)")
    .option('--temporal-address <host:port>', 'use this external Temporal instead of the managed one')
    .option('--no-pull', 'do not pull the Ollama model when it is missing (check-llm then warns, as without managed Ollama)');
}

function flagsOf(o: ConfigFlagOpts): ConfigFlagOpts {
  return { llmProvider: o.llmProvider, llmModel: o.llmModel, llmBaseUrl: o.llmBaseUrl, temporalAddress: o.temporalAddress };
}

export function register(program: Command, app: App): void {
  const local = program
    .command('local')
    .description('the local Stigmer stack: managed Temporal, stigmer-server and the agent-runner')
    .addHelpText('after', '\nFirst time: stigmer init. Then: stigmer local start. Settings: stigmer config list --show-origin.');

  startOptions(local.command('start'))
    .description('start the stack (detached: returns once everything is ready, then prints the addresses)')
    .option('--foreground', 'stay attached and stream the logs; Ctrl-C stops everything')
    .action(async (o: StartOpts) => {
      const { startStack } = await import('../stack/local.js');
      app.exitCode = await startStack({ app, kinds: (await import('./kinds.js')).kinds, flags: flagsOf(o), noInput: !o.input, output: o.output, noPull: !o.pull, ...(o.foreground ? { foreground: true } : {}) });
    });

  local
    .command('stop')
    .description('stop what stigmer started, in reverse order (never an external Temporal or your own Ollama)')
    .addOption(new Option('--output <format>', 'output: auto, plain, or json').choices(['auto', 'plain', 'json']).default('auto'))
    .action(async (o: { output: 'auto' | 'plain' | 'json' }) => {
      const { stopStack } = await import('../stack/local.js');
      app.exitCode = await stopStack(app, o.output);
    });

  startOptions(local.command('restart'))
    .argument('[component...]', 'temporal, server, agent-runner or ollama (or a task of the stack): restart only these, leaving the rest running')
    .description('stop the stack, then start it again (picks up config changes; a broken config stops nothing)')
    .option('--foreground', 'stay attached and stream the logs; Ctrl-C stops everything (the whole stack only)')
    .addHelpText('after', '\nExamples:\n  stigmer local restart                  the whole stack\n  stigmer local restart agent-runner     only the agent-runner (from any directory)')
    .action(async (components: string[], o: StartOpts) => {
      const { restartStack, restartComponents } = await import('../stack/local.js');
      const opts = { app, kinds: (await import('./kinds.js')).kinds, flags: flagsOf(o), noInput: !o.input, output: o.output, noPull: !o.pull };
      if (components.length === 0) app.exitCode = await restartStack({ ...opts, ...(o.foreground ? { foreground: true } : {}) });
      else if (o.foreground) throw new (await import('../util/errors.js')).UserError('stigmer local restart: --foreground restarts the whole stack; leave out the component names, or --foreground', 2);
      else app.exitCode = await restartComponents(opts, components);
    });

  local
    .command('status')
    .description('each component, Temporal health, the LLM, and which secrets are set (names only)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nThis describes the Stigmer stack as components. `stigmer status` is the engine\'s view of the same\nstack (or of any tasks file\'s): every task with its state, pid, uptime and last probe.')
    .action(async (o: { json?: boolean }) => {
      // src/cli.ts runs `local status [--json]` without commander (lightCommand); this is
      // the path of the other spellings (--help aside), e.g. `local status --json --json`
      const { printStackStatus } = await import('../stack/status.js');
      app.exitCode = await printStackStatus(!!o.json);
    });

  logOptions(local.command('logs'))
    .argument('[component...]', 'temporal, server, agent-runner or ollama (or task names); default: all, merged in time order')
    .description('the logs of the stack')
    .action(async (components: string[], o: LogFlags) => {
      const { stackLogs } = await import('../stack/local.js');
      app.exitCode = await runLogs(app, o, (opts) => stackLogs(components, opts));
    });

  eventOptions(local.command('events'))
    .argument('[component...]', 'temporal, server, agent-runner or ollama (or task names); default: all')
    .description("the stack's lifecycle events (restarts, health, crash loops): the last 10, then new ones until Ctrl-C")
    .action(async (components: string[], o: EventFlags) => {
      const [{ printEvents }, { stigmerHome }, { COMPONENTS }] = await Promise.all([import('../supervisor/print-events.js'), import('../util/paths.js'), import('../stack/local.js')]);
      const tasks = components.map((c) => (COMPONENTS as Record<string, string>)[c] ?? c);
      app.exitCode = await runEvents(app, o, (opts) => printEvents(stigmerHome(), { ...opts, tasks }));
    });

  local
    .command('reset')
    .description("stop the stack and delete its data (Temporal's database, the server's store, logs); keeps config and downloads")
    .option('-y, --yes', 'do not ask for confirmation (needed without a terminal)')
    .addHelpText('after', '\nExample:\n  stigmer local reset --yes')
    .action(async (o: { yes?: boolean }) => {
      const { resetStack } = await import('../stack/reset.js');
      app.exitCode = await resetStack({ app, yes: !!o.yes });
    });
}
