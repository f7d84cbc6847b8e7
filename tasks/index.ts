/**
 * The task kinds, by `uses:` name. Each is loaded only when a task of that kind runs, so
 * `stigmer validate` and `stigmer status` never import undici, tar or execa.
 * A new kind is one file in this folder, one line here, and one entry in schemas/tasks.schema.json.
 */
import type { TaskKind } from '../src/model/kind.js';

type Loader = () => Promise<{ default: TaskKind<any> }>;

export const kinds: Record<string, Loader> = {
  exec: () => import('./exec.js'),
  process: () => import('./process.js'),
  'wait-port': () => import('./wait-port.js'),
  download: () => import('./download.js'),
  'resolve-config': () => import('./resolve-config.js'),
  'gather-secrets': () => import('./gather-secrets.js'),
  'check-llm': () => import('./check-llm.js'),
};

export const kindNames: string[] = Object.keys(kinds);

export async function loadKind(name: string): Promise<TaskKind<any>> {
  const loader = kinds[name];
  if (!loader) throw new Error(`Internal error: unknown task kind "${name}" passed validation`);
  return (await loader()).default;
}
