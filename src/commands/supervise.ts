/**
 * `stigmer internal supervise --data-dir D`: the detached supervisor of one data dir. src/cli.ts
 * runs the spelling the CLI spawns it with without commander (its start is on the critical path
 * of every detached `up` and `local start`); commands/internal.ts runs any other.
 */
import { resolve } from 'node:path';

export async function runSupervise(dataDir: string): Promise<number> {
  // The supervisor lock's helper (sh + flock + cat) starts while the rest loads: one step fewer
  // before `ready`. A failure here is runSupervisor's to report (it tries again, as it always did).
  const firstLock = (async () => {
    const [{ acquireLock }, { supervisorLockPath }, { makePrivateDir }] = await Promise.all([import('../engine/lock.js'), import('../daemon/protocol.js'), import('../util/private-dir.js')]);
    makePrivateDir(resolve(dataDir));
    return acquireLock(supervisorLockPath(resolve(dataDir)), 'stigmer supervisor');
  })();
  firstLock.catch(() => {});
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
    firstLock,
    kinds,
    loadConfig: async () => (await import('../stack/config/index.js')).loadConfig({}).config,
    registerSecrets: (env) => registerStackSecrets({ env, dataDirs: [resolve(dataDir)] }),
  });
}

