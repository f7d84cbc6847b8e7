/**
 * The process entry: hands the command line to a light path (a command that must start fast, one
 * file of the bundle) or to the command tree (src/command-tree.ts: commander and every command
 * module), and sets the exit code. It imports nothing statically, so a light path loads nothing
 * before its own file (each chunk costs ~0.5 ms to load).
 */

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
    return 0;
  }
  // Commands that must start fast run without the command tree (commander and every command
  // module): what their commander path does (the preAction secrets, then the action).
  const light = lightCommand(argv);
  if (light) {
    try {
      const code = await light();
      if (code !== undefined) return code;
    } catch (err) {
      return (await import('./util/report-error.js')).reportError(err);
    }
  }
  return (await import('./command-tree.js')).runCommandTree(argv, await version());
}

/**
 * The exact spellings with a light path, else undefined (anything else, --help or a typo
 * included, goes through commander): `local status [--json]` (goal: 2x `node -e 0`), `status` with
 * its options (src/commands/status-light.ts statusOptions; goal: 1.5x `node -e 0`), and
 * `internal supervise --data-dir D` as the CLI spawns the supervisor (on the critical path of
 * every detached `up` and `local start`), and `down` with -f/--data-dir/--output
 * (src/commands/down.ts; bin/stigmer.js runs src/down-cli.ts's bundle first, which hands here what
 * it does not take). Each runs what its commander path runs: the preAction registration of
 * secrets (with the options it names), then the action.
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
  if (a === 'status') {
    // one file of the bundle too (src/commands/status-light.ts); undefined from it goes on to commander
    return async () => (await import('./commands/status-light.js')).runStatus(argv.slice(3));
  }
  // validate and graph: one file of their own in the bundle (src/commands/engine-light.ts), which
  // reports its own errors; undefined from it (a spelling it does not take) goes on to commander
  if (a === 'validate' || a === 'graph') {
    return async () => (await import('./commands/engine-light.js')).runLight(argv.slice(2));
  }
  if (a === 'down') {
    return async () => {
      const [{ lightDownArgs, runDownCommand }, { createApp }] = await Promise.all([import('./commands/down.js'), import('./app.js')]);
      const o = lightDownArgs(argv.slice(3));
      return o ? light(o, () => runDownCommand(o, createApp()))() : undefined;
    };
  }
  if (a === 'internal' && b === 'supervise' && c === '--data-dir' && argv.length === 6 && d && !d.startsWith('-')) {
    return light({ dataDir: d }, async () => (await import('./commands/supervise.js')).runSupervise(d));
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
