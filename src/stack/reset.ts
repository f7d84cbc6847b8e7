/**
 * `stigmer local reset`: stop the stack, then delete what it stored — Temporal's SQLite file, the
 * server's store, the logs — and keep the config, `.env` and the downloads. Only files stigmer
 * itself writes are removed, so a data_dir pointed at a folder of your own keeps everything else.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { App } from '../model/app.js';
import { EXIT, UserError } from '../util/errors.js';
import { dataPaths, stigmerHome } from '../util/paths.js';

export interface ResetOptions {
  app: App;
  yes: boolean;
}

/** What a reset deletes under `dataDir` and `home`: existing paths only. */
export async function resetTargets(home: string, dataDir: string): Promise<string[]> {
  const { SNAPSHOT, WAL, LOCK } = await import('./server/store.js');
  const inData = existsSync(dataDir) ? readdirSync(dataDir) : [];
  const store = [SNAPSHOT, `${SNAPSHOT}.tmp`, WAL, LOCK];
  const files = inData.filter((name) => name.startsWith('temporal.db') || store.includes(name)).map((name) => join(dataDir, name));
  const logs = dataPaths(home).logs;
  return [...files, ...(existsSync(logs) ? [logs] : [])];
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function resetStack(o: ResetOptions): Promise<number> {
  const home = stigmerHome();
  // The config says where the data is: a broken one changes nothing (not even a stop).
  const { loadConfig } = await import('./config/index.js');
  const { config } = loadConfig({ home });
  const dataDir = config.backend.local.data_dir;
  const interactive = !!process.stdin.isTTY && !!process.stderr.isTTY && !process.env['CI'];
  if (!o.yes && !interactive) {
    throw new UserError(`stigmer: local reset deletes the stack's data (${dataDir}: Temporal's database and the server's store; ${dataPaths(home).logs}); pass --yes to confirm (there is no terminal to ask on)`, EXIT.usage);
  }
  if (!o.yes) {
    const sure = await confirm(`Stop the local stack and delete its data (Temporal's database and the server's store in ${dataDir}, and the logs)? Config and downloads are kept. [y/N] `);
    if (!sure) {
      process.stderr.write('stigmer: nothing changed\n');
      return EXIT.ok;
    }
  }
  const { stopStack } = await import('./local.js');
  const stopped = await stopStack(o.app, undefined, true);
  if (stopped !== EXIT.ok) {
    process.stderr.write('stigmer: the stack did not stop cleanly; nothing was deleted\n');
    return stopped;
  }
  const targets = await resetTargets(home, dataDir);
  for (const path of targets) rmSync(path, { recursive: true, force: true });
  process.stdout.write(
    targets.length ? `Deleted the local stack's data:\n${targets.map((p) => `  ${p}`).join('\n')}\nKept the config and the downloads. Start afresh with: stigmer local start\n` : 'The local stack had no data to delete.\n',
  );
  return EXIT.ok;
}
