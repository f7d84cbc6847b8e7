import type { Command } from 'commander';
import type { App } from '../model/app.js';
import { EXIT, UserError } from '../util/errors.js';

/**
 * `stigmer llm pull [model]` and `stigmer llm list`: Ollama's models. The Ollama base URL is
 * `--base-url`, else the config cascade's `backend.local.llm.base_url` for ollama (flag, env
 * STIGMER_LLM_BASE_URL, .env, config.yaml), else http://localhost:11434. The clients load inside
 * the actions.
 */

interface Opts {
  baseUrl?: string;
}

async function ollamaTarget(opts: Opts): Promise<{ baseUrl: string; model: string }> {
  if (opts.baseUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new UserError(`stigmer: Expected --base-url to be an http:// or https:// URL, got "${opts.baseUrl}"`, EXIT.usage);
    }
  }
  const { loadConfig } = await import('../stack/config/index.js');
  // These commands talk to Ollama whatever provider the stack uses: ask the cascade for Ollama's
  // settings (a model or URL configured for another provider does not apply).
  const { config } = loadConfig({ flags: { llmProvider: 'ollama', ...(opts.baseUrl ? { llmBaseUrl: opts.baseUrl } : {}) } });
  return { baseUrl: config.backend.local.llm.base_url, model: config.backend.local.llm.model };
}

/** An LLM client error as a UserError: the message, then the hint on its own line. */
async function explain(err: unknown): Promise<never> {
  const { isLlmError } = await import('../stack/llm/errors.js');
  if (isLlmError(err)) throw new UserError(`stigmer: ${err.message}${err.hint ? `\n${err.hint}` : ''}`, EXIT.taskFailed);
  throw err;
}

export function register(program: Command, app: App): void {
  void app;
  const llm = program.command('llm').description("Ollama's models: pull one, list them");

  llm
    .command('pull')
    .description('pull a model into Ollama, with progress (default: the configured model)')
    .argument('[model]', 'e.g. qwen2.5-coder:7b (default: backend.local.llm.model for ollama)')
    .option('--base-url <url>', 'Ollama base URL (default: STIGMER_LLM_BASE_URL, else backend.local.llm.base_url, else http://localhost:11434)')
    .action(async (modelArg: string | undefined, opts: Opts) => {
      const target = await ollamaTarget(opts);
      const model = modelArg ?? target.model;
      const { pullModel } = await import('../stack/llm/ollama.js');
      const { plainPullView, ttyPullView } = await import('../stack/llm/pull-view.js');
      const tty = process.stdout.isTTY === true && !process.env['CI'];
      const view = tty ? ttyPullView(process.stdout) : plainPullView((line) => process.stdout.write(`${line}\n`));
      process.stdout.write(`pulling ${model} into ollama at ${target.baseUrl}\n`);
      try {
        await pullModel({ baseUrl: target.baseUrl, model }, (p) => view.update(p));
      } catch (err) {
        view.finish();
        await explain(err);
      }
      view.finish();
      process.stdout.write(`pulled ${model}\n`);
    });

  llm
    .command('list')
    .description('list the models Ollama has pulled')
    .option('--base-url <url>', 'Ollama base URL (default: STIGMER_LLM_BASE_URL, else backend.local.llm.base_url, else http://localhost:11434)')
    .option('--json', 'print the models as JSON')
    .action(async (opts: Opts & { json?: boolean }) => {
      const target = await ollamaTarget(opts);
      const { listModels } = await import('../stack/llm/ollama.js');
      const { formatBytes } = await import('../util/format.js');
      let models;
      try {
        models = await listModels({ baseUrl: target.baseUrl });
      } catch (err) {
        return explain(err);
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ base_url: target.baseUrl, models }, null, 2)}\n`);
        return;
      }
      if (models.length === 0) {
        process.stdout.write(`no models pulled in ollama at ${target.baseUrl}; pull one with: stigmer llm pull ${target.model}\n`);
        return;
      }
      const rows = [
        ['NAME', 'SIZE', 'MODIFIED', ''],
        ...models.map((m) => [
          m.name,
          m.size === undefined ? '-' : formatBytes(m.size, 'decimal'),
          m.modified_at ? m.modified_at.slice(0, 10) : '-',
          m.name === target.model || m.name === `${target.model}:latest` ? '(configured)' : '',
        ]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      process.stdout.write(`${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`);
    });
}
