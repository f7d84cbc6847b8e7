/**
 * `use-ollama`: after download-ollama (an optional task: under `managed: auto` a failed download
 * is a warning), settle whether stigmer runs its own Ollama. Its download failed:
 *   managed: true  this task fails, and the run is undone (the user asked for stigmer's Ollama);
 *   managed: auto  start-ollama and pull-model are switched off, the rest of the stack comes up.
 *
 *   with: { found: find-ollama's outputs, managed: auto | true | false }
 */
import { existsSync } from 'node:fs';
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import type { OllamaChoice } from '../src/stack/llm/managed.js';

export interface UseOllamaWith {
  found: OllamaChoice & { model: string; base_url: string };
  managed: string;
}

async function run(ctx: TaskContext<UseOllamaWith>): Promise<TaskResult> {
  const f = ctx.with.found;
  if (!f || typeof f !== 'object' || typeof f.source !== 'string') {
    throw new TaskError(fail.invalidInput('Expected with.found to be find-ollama\'s outputs'));
  }
  const missing = f.source === 'download' && (!f.bin || !existsSync(f.bin));
  if (!missing) return { outputs: { start: f.start, pull: f.pull, bin: f.bin }, summary: f.description };
  if (ctx.with.managed === 'true') {
    throw new TaskError(fail.llmUnreachable(f.base_url, f.model, 'stigmer could not download Ollama (see download-ollama above), and backend.local.llm.ollama.managed is true'));
  }
  return {
    outputs: { start: false, pull: false, bin: null },
    summary: 'no Ollama: the download failed (see the warning above); the stack comes up without the local model',
  };
}

const useOllama: TaskKind<UseOllamaWith> = { name: 'use-ollama', mode: 'oneshot', run };

export default useOllama;
