/**
 * `gather-secrets`: the API key the LLM provider needs, from the environment, `.env`, or a masked
 * prompt on a terminal.
 *
 *   with: { provider: ollama | anthropic | openai, temporal: <resolve-config's temporal> }
 *   outputs: { env: { ANTHROPIC_API_KEY, OPENAI_API_KEY, STIGMER_LLM_API_KEY, TEMPORAL_API_KEY },
 *              key_env, key_set, source, temporal_api_key, temporal_api_key_from }
 *
 * An external Temporal with auth api-key also needs its key (TEMPORAL_API_KEY, .env, the Temporal
 * profile's api_key, or a prompt); a managed one never: a TEMPORAL_API_KEY in the shell is ignored.
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
import { findTemporalApiKey, TEMPORAL_API_KEY, type TemporalAuthView } from '../src/stack/config/temporal-auth.js';

export interface GatherSecretsWith {
  provider: string;
  /** resolve-config's temporal output: an external Temporal with auth api-key needs its key */
  temporal?: TemporalAuthView & { address?: string };
}

const PROVIDER_NAMES = { ollama: 'Ollama', anthropic: 'Anthropic', openai: 'OpenAI' } as const;

/** Every key variable a provider may need, each null. */
function noKeys(): Record<string, string | null> {
  const env: Record<string, string | null> = { STIGMER_LLM_API_KEY: null };
  for (const p of LLM_PROVIDERS) {
    const v = LLM_DEFAULTS[p].key_env;
    if (v) env[v] = null;
  }
  return env;
}

/** Why no prompt can be shown (for the message). */
function whyNoPrompt(ctx: { noInput?: boolean }): string {
  if (ctx.noInput) return '--no-input was given';
  if (process.env['CI']) return 'CI is set, so stigmer does not prompt';
  return 'no terminal to ask on';
}

interface Gathered {
  outputs: Record<string, unknown>;
  line: string;
}

async function llmKey(ctx: TaskContext<GatherSecretsWith>): Promise<Gathered> {
  const provider = ctx.with.provider;
  if (!isLlmProvider(provider)) {
    throw new TaskError(fail.invalidInput(`Expected with.provider to be one of ${LLM_PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`));
  }
  const env = noKeys();
  const variable = LLM_DEFAULTS[provider].key_env;
  if (!variable) {
    return { outputs: { env, key_env: null, key_set: false, source: 'none' }, line: `Using ${PROVIDER_NAMES[provider]} (no API key required)` };
  }

  let value = ctx.env[variable] || process.env[variable] || undefined;
  let source = 'env';
  if (!value) {
    value = readDotenv(process.cwd())[variable] || undefined;
    source = '.env';
  }
  if (!value) {
    if (!ctx.canPrompt) throw new TaskError(fail.missingSecret(variable, whyNoPrompt(ctx)));
    const answer = (await ctx.prompt({ message: `Enter ${PROVIDER_NAMES[provider]} API key`, mask: true })).trim();
    if (!answer) throw new TaskError(fail.missingSecret(variable, 'an empty key was entered'));
    value = answer;
    source = 'prompt';
  }
  ctx.secret(value);
  env[variable] = value;
  // The real Stigmer agent-runner reads STIGMER_LLM_API_KEY; the provider's own name stays beside it.
  env['STIGMER_LLM_API_KEY'] = value;
  const where = source === 'prompt' ? 'entered at the prompt' : source === '.env' ? 'from .env' : 'from the environment';
  return { outputs: { env, key_env: variable, key_set: true, source }, line: `Using ${PROVIDER_NAMES[provider]} (${variable} ${where})` };
}

/** The external Temporal's API key (auth api-key), or nulls. */
async function temporalKey(ctx: TaskContext<GatherSecretsWith>): Promise<{ value: string | null; from: string | null; line?: string }> {
  const t = ctx.with.temporal;
  if (!t || t.managed || t.auth !== 'api-key') return { value: null, from: null };
  const found = findTemporalApiKey(t, { ...process.env, ...ctx.env });
  let value = found?.value;
  let from = found?.from;
  if (!value) {
    if (!ctx.canPrompt) {
      throw new TaskError({
        ...fail.missingSecret(TEMPORAL_API_KEY, `${whyNoPrompt(ctx)}; backend.local.temporal.auth is api-key`),
        hint: `Set ${TEMPORAL_API_KEY} in the environment or in .env (or api_key in your Temporal profile), or run interactively to be asked for it.`,
      });
    }
    const answer = (await ctx.prompt({ message: `Enter Temporal API key${t.address ? ` for ${t.address}` : ''}`, mask: true })).trim();
    if (!answer) throw new TaskError(fail.missingSecret(TEMPORAL_API_KEY, 'an empty key was entered'));
    value = answer;
    from = `${TEMPORAL_API_KEY} (entered at the prompt)`;
  }
  ctx.secret(value);
  return { value, from: from!, line: `Temporal API key from ${from}` };
}

async function run(ctx: TaskContext<GatherSecretsWith>): Promise<TaskResult> {
  const llm = await llmKey(ctx);
  const temporal = await temporalKey(ctx);
  const env = { ...(llm.outputs['env'] as Record<string, string | null>), [TEMPORAL_API_KEY]: temporal.value };
  const lines = [llm.line, ...(temporal.line ? [temporal.line] : [])];
  for (const l of lines) ctx.output(l);
  return {
    outputs: { ...llm.outputs, env, temporal_api_key: temporal.value, temporal_api_key_from: temporal.from },
    summary: lines.join('; '),
  };
}

const gatherSecrets: TaskKind<GatherSecretsWith> = { name: 'gather-secrets', mode: 'oneshot', pure: true, run };

export default gatherSecrets;
