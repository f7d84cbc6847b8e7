/**
 * `pull-model`: make sure Ollama has the configured model. Present (as /api/tags lists it):
 * satisfied, nothing fetched. Missing: `POST /api/pull`, with the total of every layer as the
 * progress bar (bytes, %, speed, time left) and a line per layer and step. Ollama keeps the blobs
 * of an interrupted pull and resumes from them, so a pull stopped by Ctrl-C (which undoes the run
 * as usual) goes on where it stopped on the next `local start`.
 *
 *   with: { base_url, model }
 */
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { rateMeter } from '../src/util/rate.js';

export interface PullModelWith {
  base_url: string;
  model: string;
}

const PROGRESS_EVERY_MS = 100;

async function run(ctx: TaskContext<PullModelWith>): Promise<TaskResult> {
  const { base_url: baseUrl, model } = ctx.with;
  const [{ listModels, pullModel, sameModel }, { plainPullView }, { isLlmError }] = await Promise.all([
    import('../src/stack/llm/ollama.js'),
    import('../src/stack/llm/pull-view.js'),
    import('../src/stack/llm/errors.js'),
  ]);
  const failed = (e: unknown): TaskError => {
    if (ctx.signal.aborted) return new TaskError(fail.aborted('interrupted during the pull (what was fetched stays in Ollama\'s store for the next pull)'));
    const why = isLlmError(e) ? e.message : (e as Error).message;
    return new TaskError(fail.downloadFailed(`${baseUrl}/api/pull (${model})`, why.replace(/^pull of \S+ failed: /, '')));
  };
  let models;
  try {
    models = await listModels({ baseUrl, signal: ctx.signal, timeoutMs: 10_000 });
  } catch (e) {
    throw failed(e);
  }
  if (models.some((m) => sameModel(m.name, model))) {
    return { outputs: { model, base_url: baseUrl, pulled: false }, satisfied: true, summary: `ollama at ${baseUrl} has ${model}` };
  }
  ctx.output(`pulling ${model} into ollama at ${baseUrl}`);
  const view = plainPullView((line) => ctx.output(line));
  const layers = new Map<string, { total: number; completed: number }>();
  const meter = rateMeter();
  let last = 0;
  const report = (force: boolean): void => {
    const now = Date.now();
    if (!force && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    let done = 0;
    let total = 0;
    for (const l of layers.values()) {
      done += l.completed;
      total += l.total;
    }
    const rate = meter.sample(done, now);
    ctx.progress({ done, ...(total ? { total } : {}), unit: 'bytes', ...(rate !== undefined && done < total ? { rate } : {}) });
  };
  try {
    await pullModel({ baseUrl, model, signal: ctx.signal }, (p) => {
      view.update(p);
      if (p.digest && p.total) {
        layers.set(p.digest, { total: p.total, completed: Math.min(p.total, p.completed ?? 0) });
        report(false);
      }
    });
  } catch (e) {
    throw failed(e);
  }
  report(true);
  let bytes = 0;
  for (const l of layers.values()) bytes += l.total;
  return { outputs: { model, base_url: baseUrl, pulled: true }, summary: `pulled ${model} into ollama at ${baseUrl}${bytes ? ` (${layers.size} layer(s))` : ''}` };
}

const pullModelKind: TaskKind<PullModelWith> = { name: 'pull-model', mode: 'oneshot', run };

export default pullModelKind;
