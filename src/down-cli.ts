/**
 * `stigmer down` on its own bundle (dist/bundle/down.js, scripts/bundle.mjs; bin/stigmer.js runs it
 * when the first argument is `down`): a down is one file to load, not the CLI's ~40 chunks, so it
 * costs little more than node's own start. It takes the spellings src/commands/down.ts
 * lightDownArgs takes, while a live supervisor undoes the stack or there is nothing to stop;
 * anything else (help, other options, an undo from the state file) runs the whole CLI, which
 * takes it from the start (src/cli.ts).
 */
import { createApp } from './app.js';
import { lightDownArgs, runDownCommand } from './commands/down.js';
import { registerActionSecrets } from './commands/action-secrets.js';
import { reportError } from './util/report-error.js';

// as in src/cli.ts: a closed stdout (`stigmer down | head`) does not stop the down
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

async function main(argv: string[]): Promise<number | 'cli'> {
  const o = argv[2] === 'down' ? lightDownArgs(argv.slice(3)) : undefined;
  if (!o) return 'cli';
  try {
    await registerActionSecrets(o);
    return (await runDownCommand(o, createApp(), { lightOnly: true })) ?? 'cli';
  } catch (err) {
    return reportError(err);
  }
}

void main(process.argv).then(async (code) => {
  // (a relative import the bundle keeps as is: the CLI's own bundle beside this one, or tsc's cli.js)
  if (code === 'cli') await import('./cli.js');
  else process.exitCode = code;
});
