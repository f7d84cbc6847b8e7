/**
 * `find-ollama`: which Ollama the stack uses (src/stack/llm/managed.ts): the user's own answering
 * at base_url (external), an `ollama` on PATH, or the release to download; or none (a hosted
 * provider, or managed: false). Its outputs switch download-ollama, start-ollama and pull-model on.
 *
 *   with: { ollama: resolve-config's outputs.ollama, home: the stigmer home,
 *           pull: "false" for --no-pull (STIGMER_OLLAMA_PULL) }
 */
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { findOllama, type OllamaValues } from '../src/stack/llm/managed.js';

export interface FindOllamaWith {
  ollama: OllamaValues;
  home: string;
  /** "false" (or false) skips pull-model; anything else pulls */
  pull?: boolean | string;
}

async function run(ctx: TaskContext<FindOllamaWith>): Promise<TaskResult> {
  const o = ctx.with.ollama;
  if (!o || typeof o !== 'object' || typeof o.base_url !== 'string') {
    throw new TaskError(fail.invalidInput('Expected with.ollama to be resolve-config\'s outputs.ollama'));
  }
  const p = ctx.with.pull;
  const pull = !(p === false || (typeof p === 'string' && /^(false|no|off|0)$/i.test(p.trim())));
  const home = ctx.with.home;
  const choice = await findOllama(o, { env: { ...process.env, ...ctx.env }, home, pull, signal: ctx.signal });
  const found = { ...choice, model: o.model, base_url: o.base_url };
  return {
    outputs: {
      ...found,
      choice: found,
      host: o.host ?? '127.0.0.1:11434',
      port: o.port,
      ports: o.port ? [o.port] : [],
      managed_by: home,
      models_dir: o.models_dir,
    },
    summary: choice.description,
  };
}

const findOllamaKind: TaskKind<FindOllamaWith> = { name: 'find-ollama', mode: 'oneshot', run };

export default findOllamaKind;
