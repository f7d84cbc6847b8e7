import type { Command } from 'commander';
import { signalExitCode, type App } from '../model/app.js';
import { EXIT, UserError } from '../util/errors.js';
import type { StigmerClient } from '../stack/client/index.js';
import type { LlmProvider } from '../stack/llm/defaults.js';

/**
 * `stigmer agent apply|list|delete|run`: agents and executions on stigmer-server. The server's
 * address is `--endpoint`, else STIGMER_SERVER_ADDRESS, else the one the running stack recorded
 * (`stigmer local start`), else `backend.local.endpoint` from the config (default localhost:50051). The HTTP client and YAML are loaded inside the actions.
 */

const ENDPOINT_HELP = 'stigmer-server address host:port (default: env STIGMER_SERVER_ADDRESS, else the running local stack\'s, else backend.local.endpoint, else localhost:50051)';

interface EndpointOpts {
  endpoint?: string;
}

async function connect(opts: EndpointOpts): Promise<StigmerClient> {
  let address = opts.endpoint;
  let origin = '--endpoint';
  if (!address && process.env['STIGMER_SERVER_ADDRESS']) {
    address = process.env['STIGMER_SERVER_ADDRESS'];
    origin = 'STIGMER_SERVER_ADDRESS';
  }
  if (!address) {
    // A running stack recorded where its server listens: plain JSON, cheaper than the config (YAML).
    const { StateStore } = await import('../engine/state.js');
    const { dataPaths, stigmerHome } = await import('../util/paths.js');
    const tasks = StateStore.read(dataPaths(stigmerHome()).state)?.tasks;
    const recorded = (tasks?.['resolve-config']?.outputs as { server?: { address?: unknown } } | undefined)?.server?.address;
    if (tasks?.['start-server']?.status === 'ready' && typeof recorded === 'string') {
      address = recorded;
      origin = 'the running stack (state.json)';
    }
  }
  if (!address) {
    const { loadConfig } = await import('../stack/config/index.js');
    address = loadConfig().config.backend.local.endpoint;
    origin = 'backend.local.endpoint';
  }
  const { StigmerClient } = await import('../stack/client/index.js');
  try {
    return new StigmerClient(address);
  } catch {
    throw new UserError(`stigmer: Expected ${origin} to be host:port (e.g. localhost:50051), got "${address}"`, EXIT.usage);
  }
}

/** Turn client errors into what a person reads; anything unexpected is rethrown. */
async function explain(err: unknown, client: StigmerClient): Promise<never> {
  const { ApiError, UnreachableError } = await import('../stack/client/index.js');
  if (err instanceof UnreachableError) {
    throw new UserError(`stigmer: cannot reach stigmer-server at ${client.address} (is it running? try: stigmer local start)`, EXIT.taskFailed);
  }
  if (err instanceof ApiError) {
    throw new UserError(`stigmer: stigmer-server at ${client.address} refused the request: ${err.message}`, EXIT.taskFailed);
  }
  throw err;
}

function isNotFound(err: unknown): boolean {
  return (err as { name?: string; status?: number })?.name === 'ApiError' && (err as { status: number }).status === 404;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function shortTime(iso: string): string {
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * The provider the agent-runner uses: the running stack's (state.json), else the config's; undefined
 * when neither can be read (the warning it feeds is only advice).
 */
async function stackProvider(): Promise<LlmProvider | undefined> {
  const [{ StateStore }, { dataPaths, stigmerHome }, { isLlmProvider }] = await Promise.all([import('../engine/state.js'), import('../util/paths.js'), import('../stack/llm/defaults.js')]);
  const tasks = StateStore.read(dataPaths(stigmerHome()).state)?.tasks;
  const recorded = (tasks?.['resolve-config']?.outputs as { llm?: { provider?: unknown } } | undefined)?.llm?.provider;
  if (tasks?.['start-agent-runner']?.status === 'ready' && isLlmProvider(recorded)) return recorded;
  const { tryLoadConfig } = await import('../stack/config/index.js');
  const loaded = tryLoadConfig();
  return loaded.ok ? loaded.value.config.backend.local.llm.provider : undefined;
}

/** Warn (stderr) when an agent's model belongs to another provider than the stack's. */
async function warnModelMismatch(agent: string, model: string | null | undefined): Promise<void> {
  if (!model) return;
  const provider = await stackProvider().catch(() => undefined);
  if (!provider) return;
  const { modelMismatch } = await import('../stack/llm/defaults.js');
  const warning = modelMismatch(model, provider);
  if (warning) process.stderr.write(`stigmer: warning: agent "${agent}": ${warning}\n`);
}

export function register(program: Command, app: App): void {
  const agent = program.command('agent').description('create, list, delete and run agents on stigmer-server');

  agent
    .command('apply')
    .description('create or replace the agent described by a YAML file (name, instructions, model)')
    .requiredOption('-f, --file <path>', 'the agent file, e.g. agent.yaml')
    .option('--endpoint <host:port>', ENDPOINT_HELP)
    .action(async (opts: EndpointOpts & { file: string }) => {
      const { readAgentFile } = await import('../stack/client/agent-file.js');
      const spec = await readAgentFile(opts.file);
      const client = await connect(opts);
      try {
        const { created } = await client.putAgent(spec.name, { instructions: spec.instructions, model: spec.model ?? null });
        process.stdout.write(`agent "${spec.name}" ${created ? 'created' : 'updated'}\n`);
        await warnModelMismatch(spec.name, spec.model);
      } catch (err) {
        await explain(err, client);
      } finally {
        client.close();
      }
    });

  agent
    .command('list')
    .description('list the agents: name, model, last update')
    .option('--json', 'print the agents as JSON')
    .option('--endpoint <host:port>', ENDPOINT_HELP)
    .action(async (opts: EndpointOpts & { json?: boolean }) => {
      const client = await connect(opts);
      try {
        const agents = await client.listAgents();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(agents, null, 2)}\n`);
        } else if (agents.length === 0) {
          process.stdout.write('no agents yet (create one with: stigmer agent apply -f agent.yaml)\n');
        } else {
          const rows = [['NAME', 'MODEL', 'UPDATED'], ...agents.map((a) => [a.name, a.model ?? '(runner default)', shortTime(a.updated_at)])];
          process.stdout.write(`${table(rows)}\n`);
        }
      } catch (err) {
        await explain(err, client);
      } finally {
        client.close();
      }
    });

  agent
    .command('delete')
    .description('delete an agent (its past executions are kept)')
    .argument('<name>', 'the agent to delete')
    .option('--endpoint <host:port>', ENDPOINT_HELP)
    .action(async (name: string, opts: EndpointOpts) => {
      const client = await connect(opts);
      try {
        await client.deleteAgent(name);
        process.stdout.write(`agent "${name}" deleted\n`);
      } catch (err) {
        if (isNotFound(err)) throw new UserError(`stigmer: agent "${name}" not found`, EXIT.taskFailed);
        await explain(err, client);
      } finally {
        client.close();
      }
    });

  agent
    .command('run')
    .description('run an agent on a message and stream its answer; Ctrl-C cancels the execution')
    .argument('<name>', 'the agent to run')
    .option('-m, --message <text>', 'the message to send (default: read from stdin when it is not a terminal)')
    .option('--endpoint <host:port>', ENDPOINT_HELP)
    .action(async (name: string, opts: EndpointOpts & { message?: string }) => {
      let message = opts.message;
      if (message === undefined && !process.stdin.isTTY) message = await readStdin();
      if (message === undefined || message.trim() === '') {
        throw new UserError(
          message === undefined
            ? 'stigmer: no message to send: pass --message TEXT (or pipe the message on stdin)'
            : 'stigmer: the message is empty: pass --message TEXT (or pipe the message on stdin)',
          EXIT.usage,
        );
      }
      const client = await connect(opts);
      try {
        await warnModelMismatch(name, (await client.getAgent(name, { timeoutMs: 2000 })).model);
      } catch {
        // no such agent or no answer yet: the run below says so properly
      }
      // A reader that went away (`| head`) must not crash the run; the execution still finishes.
      process.stdout.on('error', () => {});
      app.listen('cancelling the execution');
      try {
        const { runExecution } = await import('../stack/client/run.js');
        const outcome = await runExecution(client, name, message, {
          signal: app.signal,
          stdout: (s) => process.stdout.write(s),
          stderr: (s) => process.stderr.write(s),
        });
        switch (outcome.kind) {
          case 'succeeded':
            app.exitCode = EXIT.ok;
            return;
          case 'failed':
          case 'cancelled':
          case 'lost':
            app.exitCode = EXIT.taskFailed;
            return;
          case 'interrupted':
            app.exitCode = signalExitCode[app.interruptedBy() ?? 'SIGINT'];
            return;
          default: {
            const never: never = outcome;
            throw new Error(`Internal error: unknown outcome ${JSON.stringify(never)}`);
          }
        }
      } catch (err) {
        if (isNotFound(err)) {
          throw new UserError(`stigmer: agent "${name}" not found (create it with: stigmer agent apply -f agent.yaml)`, EXIT.taskFailed);
        }
        await explain(err, client);
      } finally {
        client.close();
      }
    });
}
