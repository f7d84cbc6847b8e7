/**
 * `stigmer init [--force] [--no-download]`: the directories, a commented default config (0600),
 * and the managed Temporal CLI, verified and installed under <home>/bin. Safe to rerun: an
 * existing config is kept (--force rewrites it, keeping a .bak) and a verified install is reused.
 */
import type { Command } from 'commander';
import type { App } from '../model/app.js';

interface InitOptions {
  force?: boolean;
  download?: boolean;
}

export function register(program: Command, app: App): void {
  program
    .command('init')
    .description('set up <STIGMER_HOME>: directories, a default config (Ollama, managed Temporal) and the Temporal CLI')
    .option('--force', 'rewrite config.yaml with the defaults (the old one is kept as config.yaml.bak)')
    .option('--no-download', 'do not download the Temporal CLI now (stigmer local start will)')
    .action(async (opts: InitOptions) => {
      const { runInit } = await import('../stack/init.js');
      app.exitCode = await runInit({ force: !!opts.force, download: opts.download !== false, app });
    });
}
