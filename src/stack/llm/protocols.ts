/**
 * What differs between the three chat APIs: the URL, headers and body of the request, and how the
 * streamed answer is framed (contracts.md sections 4-6). Everything else (retries, deadline,
 * errors) is shared in chat.ts.
 */
import { ANTHROPIC_MAX_TOKENS, ANTHROPIC_VERSION, type LlmProvider } from './defaults.js';
import { LlmError, type LlmErrorInit } from './errors.js';
import { readLines, readSse } from './frames.js';
import { joinUrl } from './http.js';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** What a protocol needs to build a request and read its answer. */
export interface ChatTarget {
  provider: LlmProvider;
  model: string;
  baseUrl: string;
  /** required for anthropic and openai; never printed */
  apiKey?: string;
  /** the system prompt (an agent's instructions) */
  system: string;
  messages: ChatMessage[];
  /** Anthropic's required `max_tokens` (default ANTHROPIC_MAX_TOKENS) */
  maxTokens?: number;
}

/** How an answer ended, as the provider said it. */
export interface ChatEnd {
  /** the provider's own word: `stop`, `end_turn`, `length`, `max_tokens`, ... (absent if it gave none) */
  stopReason?: string;
  /** the answer was cut at the length limit (Ollama/OpenAI `length`, Anthropic `max_tokens`) */
  truncated: boolean;
}

function ended(stopReason: string | undefined): ChatEnd {
  return { ...(stopReason ? { stopReason } : {}), truncated: stopReason === 'length' || stopReason === 'max_tokens' };
}

export interface Protocol {
  url(t: ChatTarget): string;
  headers(t: ChatTarget): Record<string, string>;
  body(t: ChatTarget): unknown;
  /**
   * Text chunks of a 200 answer, returning how the provider said it ended; throws LlmError for
   * errors the provider puts inside the stream and for refusals.
   */
  parse(body: AsyncIterable<Uint8Array>, t: ChatTarget): AsyncGenerator<string, ChatEnd>;
  /** what to suggest for an error status, if anything useful */
  hint(status: number, t: ChatTarget, code: string | undefined): string | undefined;
}

function err(t: ChatTarget, init: Omit<LlmErrorInit, 'provider' | 'apiKey'>): LlmError {
  return new LlmError({ provider: t.provider, ...(t.apiKey ? { apiKey: t.apiKey } : {}), ...init });
}

function cut(t: ChatTarget, chunks: number): LlmError {
  return err(t, {
    kind: 'stream-cut',
    message: `${t.provider} stream ended before the answer was complete (after ${chunks} chunk${chunks === 1 ? '' : 's'})`,
    retryable: true,
  });
}

function refused(t: ChatTarget, text: string): LlmError {
  const said = text.trim();
  return err(t, {
    kind: 'refusal',
    message: said ? `${t.provider} refused to answer: ${said}` : `${t.provider} refused to answer (stop reason "refusal")`,
    ...(said ? { providerMessage: said } : {}),
  });
}

function parseJson(t: ChatTarget, text: string): Record<string, any> {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object') return v as Record<string, any>;
  } catch {
    // reported below
  }
  throw err(t, { kind: 'protocol', message: `${t.provider} sent something that is not JSON in its stream: ${text.slice(0, 120)}` });
}

function keyHint(t: ChatTarget, status: number): string | undefined {
  const variable = t.provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
  if (status === 401 || status === 403) return `Check ${variable}: the provider refused the key.`;
  if (status === 404) return `Check the model name "${t.model}" (STIGMER_LLM_MODEL or backend.local.llm.model).`;
  return undefined;
}

/** The request body of Ollama and OpenAI, which take the system prompt as the first message. */
function systemFirstBody(t: ChatTarget): unknown {
  return {
    model: t.model,
    messages: [...(t.system ? [{ role: 'system', content: t.system }] : []), ...t.messages],
    stream: true,
  };
}

const ollama: Protocol = {
  url: (t) => joinUrl(t.baseUrl, '/api/chat'),
  headers: () => ({}),
  body: systemFirstBody,
  async *parse(body, t) {
    let chunks = 0;
    for await (const line of readLines(body)) {
      if (line.trim() === '') continue;
      const obj = parseJson(t, line);
      if (typeof obj['error'] === 'string') throw err(t, { kind: 'stream', message: `ollama stream error: ${obj['error']}`, providerMessage: obj['error'] });
      const text = obj['message']?.content;
      if (typeof text === 'string' && text !== '') {
        chunks++;
        yield text;
      }
      if (obj['done'] === true) return ended(typeof obj['done_reason'] === 'string' ? obj['done_reason'] : undefined);
    }
    throw cut(t, chunks);
  },
  hint(status, t) {
    if (status === 404) return `Pull the model first: stigmer llm pull ${t.model}`;
    return undefined;
  },
};

/** Anthropic error types that mean "try again later" when they arrive inside a stream. */
const ANTHROPIC_TRANSIENT = new Set(['overloaded_error', 'api_error', 'rate_limit_error', 'timeout_error']);

const anthropic: Protocol = {
  url: (t) => joinUrl(t.baseUrl, '/v1/messages'),
  headers: (t) => ({ 'x-api-key': t.apiKey ?? '', 'anthropic-version': ANTHROPIC_VERSION }),
  body: (t) => ({
    model: t.model,
    max_tokens: t.maxTokens ?? ANTHROPIC_MAX_TOKENS,
    ...(t.system ? { system: t.system } : {}),
    messages: t.messages,
    stream: true,
  }),
  async *parse(body, t) {
    let chunks = 0;
    // Set by the final message_delta: like the SDK, an answer whose stop reason arrived is whole
    // even if the connection closes before message_stop.
    let stopReason: string | undefined;
    const finish = (): ChatEnd => {
      if (stopReason === 'refusal') throw refused(t, '');
      return ended(stopReason);
    };
    for await (const ev of readSse(body)) {
      if (ev.event === 'ping') continue;
      const data = parseJson(t, ev.data);
      switch (ev.event) {
        case 'content_block_delta': {
          const delta = data['delta'];
          if (delta?.type === 'text_delta' && typeof delta.text === 'string' && delta.text !== '') {
            chunks++;
            yield delta.text as string;
          }
          break;
        }
        case 'message_delta':
          if (typeof data['delta']?.stop_reason === 'string') stopReason = data['delta'].stop_reason as string;
          break;
        case 'message_stop':
          return finish();
        case 'error': {
          const type = typeof data['error']?.type === 'string' ? (data['error'].type as string) : 'error';
          const message = typeof data['error']?.message === 'string' ? (data['error'].message as string) : ev.data;
          throw err(t, {
            kind: 'stream',
            message: `anthropic stream error (${type}): ${message}`,
            providerMessage: message,
            providerCode: type,
            retryable: ANTHROPIC_TRANSIENT.has(type),
          });
        }
        default:
          // message_start, content_block_start/stop: nothing to forward
          break;
      }
    }
    if (stopReason !== undefined) return finish();
    throw cut(t, chunks);
  },
  hint: (status, t) => keyHint(t, status),
};

const openai: Protocol = {
  url: (t) => joinUrl(t.baseUrl, '/chat/completions'),
  headers: (t) => ({ authorization: `Bearer ${t.apiKey ?? ''}` }),
  body: systemFirstBody,
  async *parse(body, t) {
    let chunks = 0;
    // A refusal comes as `delta.refusal` text with `content: null`; the last choice chunk carries
    // `finish_reason`, after which the answer is whole even without `data: [DONE]` (as the SDK has it).
    let refusal = '';
    let finishReason: string | undefined;
    const finish = (): ChatEnd => {
      if (refusal !== '' && chunks === 0) throw refused(t, refusal);
      return ended(finishReason);
    };
    for await (const ev of readSse(body)) {
      if (ev.data === '[DONE]') return finish();
      const data = parseJson(t, ev.data);
      if (data['error']) {
        const e = data['error'] as { message?: unknown; type?: unknown; code?: unknown };
        const message = typeof e.message === 'string' ? e.message : JSON.stringify(e);
        const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : undefined;
        throw err(t, {
          kind: 'stream',
          message: `openai stream error${code ? ` (${code})` : ''}: ${message}`,
          providerMessage: message,
          ...(code ? { providerCode: code } : {}),
        });
      }
      const choice = data['choices']?.[0];
      const text = choice?.delta?.content;
      if (typeof text === 'string' && text !== '') {
        chunks++;
        yield text;
      }
      if (typeof choice?.delta?.refusal === 'string') refusal += choice.delta.refusal as string;
      if (typeof choice?.finish_reason === 'string') finishReason = choice.finish_reason as string;
    }
    if (finishReason !== undefined) return finish();
    throw cut(t, chunks);
  },
  hint: (status, t) => keyHint(t, status),
};

export const PROTOCOLS: Record<LlmProvider, Protocol> = { ollama, anthropic, openai };
