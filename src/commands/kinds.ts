/**
 * The one place that says which task kinds exist. Each is imported only when a task of that kind
 * runs, so `stigmer validate` and `stigmer status` never import undici or tar.
 * A new kind is one file in tasks/, one line here, and one entry in schemas/tasks.schema.json.
 */
import { kindRegistry, type KindLoader, type KindRegistry } from '../model/kind.js';

/** Kinds any tasks file may use. */
export const genericKinds: Readonly<Record<string, KindLoader>> = {
  exec: () => import('../../tasks/exec.js'),
  process: () => import('../../tasks/process.js'),
  wait: () => import('../../tasks/wait.js'),
  'wait-port': () => import('../../tasks/wait-port.js'),
  download: () => import('../../tasks/download.js'),
};

/** The Stigmer stack's kinds (adapters over src/stack/), used by the shipped stigmer.tasks.yaml. */
export const stackKinds: Readonly<Record<string, KindLoader>> = {
  'resolve-config': () => import('../../tasks/resolve-config.js'),
  'gather-secrets': () => import('../../tasks/gather-secrets.js'),
  'check-llm': () => import('../../tasks/check-llm.js'),
  'find-ollama': () => import('../../tasks/find-ollama.js'),
  'use-ollama': () => import('../../tasks/use-ollama.js'),
  'pull-model': () => import('../../tasks/pull-model.js'),
};

/** Every kind: a tasks file of the generic commands may mix both, as the stack file does. */
export const kinds: KindRegistry = kindRegistry({ ...genericKinds, ...stackKinds });
