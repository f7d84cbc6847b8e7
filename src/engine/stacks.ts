/**
 * One stack per project. Every tasks file gets its own data dir (state, logs, lock, supervisor),
 * derived from the file's absolute path, so two projects run side by side and a bare
 * `stigmer down` in a project folder stops that project's stack and nothing else:
 *
 *   /home/u/shop/stigmer.tasks.yaml  ->  <STIGMER_HOME>/stacks/shop-3f9c2a1b/
 *
 * `--data-dir` overrides it (and is remembered, so `stigmer ls` still finds it); the `local`
 * commands, and engine commands on the packaged stack file, keep <STIGMER_HOME> itself. A data dir records the tasks file it belongs to in
 * `stack.json`, which outlives the state file, so `ls` shows stopped stacks with their file too.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { dataPaths, packageRoot, stigmerHome } from '../util/paths.js';
import { StateStore } from './state.js';

export interface StackRecord {
  /** the tasks file, absolute */
  file: string;
  created_at: string;
}

const STACK_FILE = 'stack.json';
const PACKAGED_STACK = join(packageRoot, 'stigmer.tasks.yaml');

/** Where the stacks of tasks files live: `<home>/stacks`. */
export function stacksDir(home = stigmerHome()): string {
  return join(home, 'stacks');
}

/** A short, stable, filesystem-safe id of an absolute path. */
function pathId(abs: string): string {
  // node:crypto on demand: `status --data-dir D` and `local status` load this module and never need it (~3 ms to load)
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(abs).digest('hex').slice(0, 8);
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 40) || 'stack';
}

/** The data dir of a tasks file: `<home>/stacks/<folder name>-<hash of its absolute path>`. */
export function projectDataDir(file: string, home = stigmerHome()): string {
  const abs = resolve(file);
  return join(stacksDir(home), `${slug(basename(dirname(abs)))}-${pathId(abs)}`);
}

export interface ResolvedStack {
  dataDir: string;
  /** the tasks file, absolute */
  file: string;
  /** how the data dir was chosen */
  from: 'flag' | 'project' | 'legacy' | 'local';
}

/**
 * The data dir of a command naming a stack by its tasks file (or `--data-dir`). A stack started
 * before data dirs were per project, with its state in <home> itself, is still found there until
 * it is stopped.
 */
export function resolveStack(o: { file: string; dataDir?: string }, home = stigmerHome()): ResolvedStack {
  const file = resolve(o.file);
  if (o.dataDir) return { dataDir: resolve(o.dataDir), file, from: 'flag' };
  // The packaged stack file is the local Stigmer stack (`stigmer run start-server -f <it>`).
  if (file === PACKAGED_STACK) return { dataDir: resolve(home), file, from: 'local' };
  const dataDir = projectDataDir(file, home);
  if (!existsSync(dataPaths(dataDir).state)) {
    const legacy = StateStore.read(dataPaths(home).state);
    if (legacy?.file === file && Object.values(legacy.tasks).some((r) => r.undo.length > 0)) return { dataDir: home, file, from: 'legacy' };
  }
  return { dataDir, file, from: 'project' };
}

/** The tasks file a data dir belongs to, if recorded. */
export function readStackRecord(dataDir: string): StackRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dataDir, STACK_FILE), 'utf8')) as StackRecord;
    return typeof r.file === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Remember which tasks file a data dir runs (written by `up` and `run`). A data dir outside
 * <home>/stacks gets a link there, so `ls` finds it.
 */
export function recordStack(dataDir: string, file: string, home = stigmerHome()): void {
  const root = resolve(dataDir);
  const prev = readStackRecord(root);
  if (prev?.file !== file) {
    mkdirSync(root, { recursive: true });
    const tmp = join(root, `${STACK_FILE}.tmp-${process.pid}`);
    writeFileSync(tmp, JSON.stringify({ file, created_at: prev?.created_at ?? new Date().toISOString() } satisfies StackRecord, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, join(root, STACK_FILE));
  }
  const stacks = stacksDir(home);
  if (root === resolve(home) || dirname(root) === stacks) return;
  const link = join(stacks, `${slug(basename(root))}-${pathId(root)}`);
  try {
    if (readlinkSync(link) === root) return;
    rmSync(link, { force: true });
  } catch {
    // no link yet
  }
  try {
    mkdirSync(stacks, { recursive: true });
    symlinkSync(root, link);
  } catch {
    // best effort: ls just will not list it
  }
}

/**
 * Every data dir on this machine that ever ran a stack: <home> (the local Stigmer stack) and
 * each entry of <home>/stacks (links to --data-dir ones followed; links whose target is gone are
 * dropped).
 */
export function knownDataDirs(home = stigmerHome()): string[] {
  const out: string[] = [];
  const isStack = (d: string): boolean => existsSync(join(d, STACK_FILE)) || existsSync(dataPaths(d).state);
  if (isStack(home)) out.push(resolve(home));
  const stacks = stacksDir(home);
  let names: string[] = [];
  try {
    names = readdirSync(stacks).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(stacks, name);
    let target = p;
    try {
      target = resolve(stacks, readlinkSync(p));
    } catch {
      // a real directory
    }
    if (isStack(target)) out.push(target);
    else if (target !== p) rmSync(p, { force: true });
  }
  return out;
}
