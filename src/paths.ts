import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The root of everything stigmer keeps: `STIGMER_HOME`, else `~/.stigmer`. */
export function stigmerHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['STIGMER_HOME'];
  return fromEnv ? resolve(fromEnv) : join(homedir(), '.stigmer');
}

/** Where one data dir keeps its state, logs and lock. */
export interface DataPaths {
  root: string;
  state: string;
  lock: string;
  logs: string;
}

export function dataPaths(dataDir: string): DataPaths {
  const root = resolve(dataDir);
  return { root, state: join(root, 'state.json'), lock: join(root, 'run.lock'), logs: join(root, 'logs') };
}

export function logFileFor(dataDir: string, task: string): string {
  return join(dataPaths(dataDir).logs, `${task}.log`);
}

/** The package root (where stigmer.tasks.yaml and schemas/ ship). dist/src/paths.js -> ../.. */
export const packageRoot: string = resolve(new URL('../..', import.meta.url).pathname);
