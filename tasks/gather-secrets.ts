/**
 * `gather-secrets`: the API key the LLM provider needs, from the environment, `.env`, or a masked
 * prompt on a terminal.
 *
 *   with: { provider: ollama | anthropic | openai }
 *   outputs: { env: { ANTHROPIC_API_KEY, OPENAI_API_KEY }, key_env, key_set, source }
 *
 * `env` always has one entry per key variable: the value for the provider's, null for the others
 * (a process kind drops null entries), so a tasks file can list them without conditions. The value
 * is registered as a secret: it is masked in every output, log and state write, and reaches the
 * agent-runner through its environment only.
 *
 * Pure: it runs again on every start (the state file never keeps secrets).
 */
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { LLM_DEFAULTS, LLM_PROVIDERS, isLlmProvider } from '../src/stack/llm/defaults.js';
import { readDotenv } from '../src/stack/config/dotenv.js';

export interface GatherSecretsWith {
  provider: string;
}

const PROVIDER_NAMES = { ollama: 'Ollama', anthropic: 'Anthropic', openai: 'OpenAI' } as const;

/** Every key variable a provider may need, each null. */
function noKeys(): Record<string, string | null> {
  const env: Record<string, string | null> = {};
  for (const p of LLM_PROVIDERS) {
    const v = LLM_DEFAULTS[p].key_env;
    if (v) env[v] = null;
  }
  return env;
}

/** Why no prompt can be shown (for the message). */
function whyNoPrompt(): string {
  if (process.argv.includes('--no-input')) return '--no-input was given';
  if (process.env['CI']) return 'CI is set, so stigmer does not prompt';
  return 'no terminal to ask on';
}

async function run(ctx: TaskContext<GatherSecretsWith>): Promise<TaskResult> {
  const provider = ctx.with.provider;
  if (!isLlmProvider(provider)) {
    throw new TaskError(fail.invalidInput(`Expected with.provider to be one of ${LLM_PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`));
  }
  const env = noKeys();
  const variable = LLM_DEFAULTS[provider].key_env;
  if (!variable) {
    ctx.output(`Using ${PROVIDER_NAMES[provider]} (no API key required)`);
    return { outputs: { env, key_env: null, key_set: false, source: 'none' }, summary: `Using ${PROVIDER_NAMES[provider]} (no API key required)` };
  }

  let value = ctx.env[variable] || process.env[variable] || undefined;
  let source = 'env';
  if (!value) {
    value = readDotenv(process.cwd())[variable] || undefined;
    source = '.env';
  }
  if (!value) {
    if (!ctx.canPrompt) throw new TaskError(fail.missingSecret(variable, whyNoPrompt()));
    const answer = (await ctx.prompt({ message: `Enter ${PROVIDER_NAMES[provider]} API key`, mask: true })).trim();
    if (!answer) throw new TaskError(fail.missingSecret(variable, 'an empty key was entered'));
    value = answer;
    source = 'prompt';
  }
  ctx.secret(value);
  env[variable] = value;
  const where = source === 'prompt' ? 'entered at the prompt' : source === '.env' ? 'from .env' : 'from the environment';
  ctx.output(`Using ${PROVIDER_NAMES[provider]} (${variable} ${where})`);
  return {
    outputs: { env, key_env: variable, key_set: true, source },
    summary: `Using ${PROVIDER_NAMES[provider]} (${variable} ${where})`,
  };
}

const gatherSecrets: TaskKind<GatherSecretsWith> = { name: 'gather-secrets', mode: 'oneshot', pure: true, run };

export default gatherSecrets;
