import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_VERSION } from './version.js';

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

/** The last absolute data dir's logs folder: the engine asks once per task, with the same data dir. */
let lastLogs: { dataDir: string; logs: string } | undefined;
const PLAIN_NAME = /^[A-Za-z0-9_-]+$/;

export function logFileFor(dataDir: string, task: string): string {
  // A relative data dir resolves against the cwd of the moment: not cached.
  if (!isAbsolute(dataDir)) return join(dataPaths(dataDir).logs, `${task}.log`);
  if (lastLogs?.dataDir !== dataDir) lastLogs = { dataDir, logs: dataPaths(dataDir).logs };
  // `logs` is normalized (resolve + join): a plain name joins by concatenation, as join would.
  return PLAIN_NAME.test(task) ? `${lastLogs.logs}/${task}.log` : join(lastLogs.logs, `${task}.log`);
}

/**
 * The nearest folder at or above `from` whose package.json is named "stigmer". This module runs
 * at different depths (dist/src/util/paths.js from tsc, dist/bundle/<chunk>.js from the bundle), so
 * the root is found by walking up, not by a fixed `../..`.
 */
export function findPackageRoot(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    let name: unknown;
    try {
      name = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    if (name === 'stigmer') return dir;
    if (dirname(dir) === dir) throw new Error(`Internal error: no package.json named "stigmer" at or above ${from}`);
  }
}

/** The package root (where package.json, stigmer.tasks.yaml, schemas/ and dist/ ship). */
export const packageRoot: string = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** stigmer's version: package.json's (its one home), inlined by the bundle, else read from the file. */
export function stigmerVersion(): string {
  return BUNDLED_VERSION ?? (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The precompiled ajv validator of `schemas/<name>.schema.json` (written by scripts/build-validators.mjs). */
export function validatorFile(name: 'tasks' | 'config' | 'agent' | 'state'): string {
  return join(packageRoot, 'dist', 'validators', `${name}.js`);
}
