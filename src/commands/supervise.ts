/**
 * `stigmer internal supervise --data-dir D`: the detached supervisor of one data dir. src/cli.ts
 * runs the spelling the CLI spawns it with without commander (its start is on the critical path
 * of every detached `up` and `local start`); commands/internal.ts runs any other.
 */
import { resolve } from 'node:path';

export async function runSupervise(dataDir: string): Promise<number> {
  const [{ runSupervisor }, { kinds }, { registerStackSecrets }, { installInChildProcess }] = await Promise.all([
    import('../daemon/daemon.js'),
    import('./kinds.js'),
    import('../stack/secrets.js'),
    import('../process/download/install.js'),
  ]);
  // a first start's download (undici, tar, zstd) runs in a child: the supervisor lives on without its cost
  installInChildProcess(true);
  return runSupervisor({
    dataDir: resolve(dataDir),
    kinds,
    loadConfig: async () => (await import('../stack/config/index.js')).loadConfig({}).config,
    registerSecrets: (env) => registerStackSecrets({ env, dataDirs: [resolve(dataDir)] }),
  });
}

