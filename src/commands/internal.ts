import type { Command } from 'commander';
import type { App } from '../model/app.js';

/**
 * `stigmer internal ...`: the processes the local stack runs, through the same executable
 * (hidden from --help; people use `stigmer local start`). Each subcommand runs in the foreground
 * until SIGTERM and is configured by its environment only.
 */
export function register(program: Command, app: App): void {
  const internal = program
    .command('internal', { hidden: true })
    .description('processes the local stack runs (not for direct use)');

  internal
    .command('server')
    .description('run the reference stigmer-server (env: STIGMER_SERVER_ADDRESS, STIGMER_DATA_DIR, STIGMER_LEASE_MS)')
    .action(async () => {
      const { runServer } = await import('../stack/server/main.js');
      app.exitCode = await runServer(process.env);
    });

  internal
    .command('agent-runner')
    .description('run the reference agent-runner (env: MODE, STIGMER_BACKEND_ENDPOINT, TEMPORAL_SERVICE_ADDRESS, STIGMER_LLM_*, STIGMER_RUNNER_SLOTS)')
    .action(async () => {
      const { runAgentRunner } = await import('../stack/agent-runner/index.js');
      app.exitCode = await runAgentRunner(process.env);
    });

  internal
    .command('install-download')
    .description('install one download for the supervisor (params on stdin, JSON lines on stdout)')
    .action(async () => {
      app.exitCode = await (await import('../process/download/child.js')).runInstallChild();
    });

  internal
    .command('supervise')
    .description('the supervisor of one data dir: runs the engine for the CLI, parent of every service (started by up / local start)')
    .requiredOption('--data-dir <dir>', 'the stack it supervises')
    .action(async (o: { dataDir: string }) => {
      app.exitCode = await (await import('./supervise.js')).runSupervise(o.dataDir);
    });
}
