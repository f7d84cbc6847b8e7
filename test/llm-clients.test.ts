// The LLM clients against the fake providers: request formats, streaming, retries, errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { fixture, freePort } from './helpers.js';
import type { FakeLlm, FakeLlmOptions } from './fixtures/fake-llm.mjs';
import { streamChat, listModels, pullModel, LlmError, LLM_DEFAULTS, type ChatRequest, type LlmProvider, type PullProgress } from '../src/stack/llm/index.js';
import { readSse, readLines } from '../src/stack/llm/frames.js';
import { backoffMs, parseRetryAfter } from '../src/stack/llm/http.js';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');

let fake: FakeLlm;
before(async () => {
  fake = await startFakeLlm();
});
after(() => fake.close());

const KEY = 'sk-test-0123456789abcdef';
const PROVIDERS: LlmProvider[] = ['ollama', 'anthropic', 'openai'];

function setup(options: FakeLlmOptions = {}): void {
  fake.reset({ requireKey: KEY, ...options });
}

function request(provider: LlmProvider, extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    provider,
    model: provider === 'ollama' ? 'qwen2.5-coder:7b' : LLM_DEFAULTS[provider].model,
    baseUrl: fake.baseUrl(provider),
    ...(provider === 'ollama' ? {} : { apiKey: KEY }),
    system: 'You are terse.',
    messages: [{ role: 'user', content: 'Say hello' }],
    timeoutMs: 10_000,
    ...extra,
  };
}

async function collect(req: ChatRequest): Promise<{ chunks: string[]; error?: LlmError }> {
  const chunks: string[] = [];
  try {
    for await (const c of streamChat(req)) chunks.push(c);
    return { chunks };
  } catch (e) {
    assert.ok(e instanceof LlmError, `expected LlmError, got ${String(e)}`);
    return { chunks, error: e };
  }
}

for (const provider of ['anthropic', 'openai'] as const) {
  test(`${provider}: a stream that ends after the final stop reason without its end marker is whole`, async () => {
    setup({ noEndMarker: true });
    const { chunks, error } = await collect(request(provider));
    assert.equal(error, undefined, `no stream-cut: ${error?.message}`);
    assert.deepEqual(chunks, ['Hello', ', ', 'world', '!']);
    assert.equal(fake.chatRequests().length, 1);
  });

  test(`${provider}: a refusal fails with the refusal text`, async () => {
    setup({ refusal: "I'm sorry, I can't help with that." });
    const { chunks, error } = await collect(request(provider));
    assert.deepEqual(chunks, []);
    assert.equal(error?.kind, 'refusal');
    assert.equal(error?.retryable, false);
    const expected =
      provider === 'openai'
        ? "openai refused to answer: I'm sorry, I can't help with that. (request id req_fake)"
        : 'anthropic refused to answer (stop reason "refusal") (request id req_fake)';
    assert.equal(error!.message, expected);
    assert.equal(fake.chatRequests().length, 1);
  });
}

test('backoff: doubling, capped at 8 s, with up to 25 % jitter taken off', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, () => 0)), [500, 1000, 2000, 4000, 8000, 8000]);
  assert.deepEqual([1, 2, 5].map((n) => backoffMs(n, () => 1)), [375, 750, 6000]);
  const seen = new Set(Array.from({ length: 20 }, () => backoffMs(2)));
  assert.ok(seen.size > 1, 'jitter varies the delay');
  for (const d of seen) assert.ok(d >= 750 && d <= 1000, `${d} within [750, 1000]`);
});

for (const provider of PROVIDERS) {
  test(`${provider}: streams the chunks in order`, async () => {
    setup({ chunks: ['one', ' two', ' three'] });
    const { chunks, error } = await collect(request(provider));
    assert.equal(error, undefined);
    assert.deepEqual(chunks, ['one', ' two', ' three']);
    assert.equal(fake.chatRequests().length, 1);
  });

  test(`${provider}: 429 is retried, honouring retry-after-ms`, async () => {
    setup({ status429Times: 2, retryAfterMs: 150 });
    const retries: number[] = [];
    const { chunks, error } = await collect(request(provider, { onRetry: (r) => retries.push(r.delayMs) }));
    assert.equal(error, undefined);
    assert.deepEqual(chunks, ['Hello', ', ', 'world', '!']);
    const reqs = fake.chatRequests();
    assert.equal(reqs.length, 3);
    assert.deepEqual(retries, [150, 150]);
    assert.ok(reqs[1]!.time - reqs[0]!.time >= 140, 'waited for retry-after-ms');
  });

  test(`${provider}: a stream cut after the first chunk fails without a retry`, async () => {
    setup({ cutAfter: 2 });
    const { chunks, error } = await collect(request(provider));
    assert.deepEqual(chunks, ['Hello', ', ']);
    assert.equal(error?.kind, 'stream-cut');
    assert.equal(error!.message, `${provider} stream was cut off after 2 chunks (connection closed by the other side)${provider === 'ollama' ? '' : ' (request id req_fake)'}`);
    assert.equal(fake.chatRequests().length, 1, 'no retry once text was handed out');
  });

  test(`${provider}: a cut before any chunk is retried`, async () => {
    setup({ cutAfter: 0, chunks: ['a'] });
    const { error } = await collect(request(provider, { maxAttempts: 2 }));
    assert.equal(error?.kind, 'stream-cut');
    assert.equal(fake.chatRequests().length, 2);
  });

  test(`${provider}: a mid-stream error carries the provider's message`, async () => {
    setup({ errorAt: 1, errorMessage: 'the GPU caught fire' });
    const { chunks, error } = await collect(request(provider));
    assert.deepEqual(chunks, ['Hello']);
    assert.equal(error?.kind, 'stream');
    const expected = {
      ollama: 'ollama stream error: the GPU caught fire',
      anthropic: 'anthropic stream error (overloaded_error): the GPU caught fire (request id req_fake)',
      openai: 'openai stream error (server_error): the GPU caught fire (request id req_fake)',
    }[provider];
    assert.equal(error!.message, expected);
    assert.equal(error!.providerMessage, 'the GPU caught fire');
    assert.equal(fake.chatRequests().length, 1);
  });

  test(`${provider}: 500 is retried with backoff, then fails with the message`, async () => {
    setup({ failStatus: 500, retryAfterMs: 10 });
    const { error } = await collect(request(provider));
    assert.equal(fake.chatRequests().length, 3, 'three attempts by default');
    assert.equal(error?.status, 500);
    assert.equal(error?.retryable, true);
    const expected = {
      ollama: 'ollama returned 500: Internal server error',
      anthropic: 'anthropic returned 500 (api_error): Internal server error (request id req_fake)',
      openai: 'openai returned 500 (server_error): Internal server error (request id req_fake)',
    }[provider];
    assert.equal(error!.message, expected);
    assert.equal(error!.requestId, provider === 'ollama' ? undefined : 'req_fake');
  });

  test(`${provider}: 409 is retried, as the SDKs do`, async () => {
    setup({ status409Times: 1, retryAfterMs: 10 });
    const { chunks, error } = await collect(request(provider));
    assert.equal(error, undefined);
    assert.deepEqual(chunks, ['Hello', ', ', 'world', '!']);
    assert.equal(fake.chatRequests().length, 2);
  });

  test(`${provider}: a spend-cap 429 is never retried`, async () => {
    setup({ spendCap: true });
    const retries: number[] = [];
    const { error } = await collect(request(provider, { onRetry: (r) => retries.push(r.delayMs) }));
    assert.equal(error?.status, 429);
    assert.equal(error?.retryable, false);
    assert.deepEqual(retries, []);
    assert.equal(fake.chatRequests().length, 1, 'one attempt only');
    assert.match(error!.hint ?? '', /out of quota or at its spend limit/);
  });

  test(`${provider}: an answer cut at the length limit is whole but reported as truncated`, async () => {
    setup({ stopReason: provider === 'anthropic' ? 'max_tokens' : 'length' });
    const ends: unknown[] = [];
    const { chunks, error } = await collect(request(provider, { onEnd: (e) => ends.push(e) }));
    assert.equal(error, undefined);
    assert.deepEqual(chunks, ['Hello', ', ', 'world', '!']);
    assert.deepEqual(ends, [{ stopReason: provider === 'anthropic' ? 'max_tokens' : 'length', truncated: true }]);
  });

  test(`${provider}: a normal end is not truncated`, async () => {
    setup({});
    const ends: unknown[] = [];
    await collect(request(provider, { onEnd: (e) => ends.push(e) }));
    assert.deepEqual(ends, [{ stopReason: provider === 'anthropic' ? 'end_turn' : 'stop', truncated: false }]);
  });

  test(`${provider}: the per-call timeout`, async () => {
    setup({ headerDelayMs: 3000 });
    const { error } = await collect(request(provider, { timeoutMs: 200 }));
    assert.equal(error?.kind, 'timeout');
    assert.equal(error!.message, `${provider} call (model ${request(provider).model}) did not finish within 200 ms`);
  });

  test(`${provider}: abort stops the stream`, async () => {
    setup({ delayMs: 300, chunks: ['a', 'b', 'c', 'd'] });
    const controller = new AbortController();
    const chunks: string[] = [];
    let error: unknown;
    try {
      for await (const c of streamChat(request(provider, { signal: controller.signal }))) {
        chunks.push(c);
        controller.abort();
      }
    } catch (e) {
      error = e;
    }
    assert.deepEqual(chunks, ['a']);
    assert.ok(error instanceof LlmError);
    assert.equal(error.kind, 'aborted');
  });
}

test('ollama: request format', async () => {
  setup();
  await collect(request('ollama'));
  const [r] = fake.chatRequests();
  assert.equal(r!.path, '/api/chat');
  assert.equal(r!.headers['content-type'], 'application/json');
  assert.deepEqual(r!.body, {
    model: 'qwen2.5-coder:7b',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say hello' },
    ],
    stream: true,
  });
});

test('anthropic: request format', async () => {
  setup();
  await collect(request('anthropic'));
  const [r] = fake.chatRequests();
  assert.equal(r!.path, '/v1/messages');
  assert.equal(r!.headers['anthropic-version'], '2023-06-01');
  assert.equal(r!.headers['content-type'], 'application/json');
  assert.equal(r!.auth, 'ok', 'x-api-key carries the key');
  assert.deepEqual(r!.body, {
    model: 'claude-sonnet-4-5',
    max_tokens: 8192,
    system: 'You are terse.',
    messages: [{ role: 'user', content: 'Say hello' }],
    stream: true,
  });
});

test('openai: request format', async () => {
  setup();
  await collect(request('openai'));
  const [r] = fake.chatRequests();
  assert.equal(r!.path, '/v1/chat/completions');
  assert.equal(r!.headers['content-type'], 'application/json');
  assert.equal(r!.auth, 'ok', 'Authorization: Bearer carries the key');
  assert.deepEqual(r!.body, {
    model: 'gpt-4.1-mini',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say hello' },
    ],
    stream: true,
  });
});

test('retry-after in seconds is honoured', async () => {
  setup({ status429Times: 1, retryAfter: '1' });
  const { chunks } = await collect(request('openai'));
  assert.equal(chunks.join(''), 'Hello, world!');
  const reqs = fake.chatRequests();
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1]!.time - reqs[0]!.time >= 950, `waited ${reqs[1]!.time - reqs[0]!.time} ms`);
});

test('a retry-after longer than the remaining deadline fails at once', async () => {
  setup({ status429Times: 5, retryAfter: '30' });
  const { error } = await collect(request('anthropic', { timeoutMs: 5000 }));
  assert.equal(fake.chatRequests().length, 1);
  assert.equal(error?.status, 429);
  assert.equal(error?.retryAfterMs, 30_000);
  assert.equal(error!.message, 'anthropic returned 429 (rate_limit_error): Number of request tokens has exceeded your per-minute rate limit (request id req_fake)');
});

test('anthropic: 529 overloaded is retried', async () => {
  setup({ failStatus: 529, failTimes: 2, retryAfterMs: 20 });
  const { chunks, error } = await collect(request('anthropic'));
  assert.equal(error, undefined);
  assert.equal(chunks.join(''), 'Hello, world!');
  assert.equal(fake.chatRequests().length, 3);
});

test('anthropic: 529 overloaded on every attempt gives the overloaded message', async () => {
  setup({ failStatus: 529, retryAfterMs: 5 });
  const { error } = await collect(request('anthropic'));
  assert.equal(error!.message, 'anthropic returned 529 (overloaded_error): Overloaded (request id req_fake)');
  assert.equal(error!.status, 529);
  assert.equal(error!.providerCode, 'overloaded_error');
});

test('anthropic: an overloaded error frame before any text is retried', async () => {
  setup({ errorAt: 0 });
  const { error } = await collect(request('anthropic', { maxAttempts: 2 }));
  assert.equal(fake.chatRequests().length, 2);
  assert.equal(error!.message, 'anthropic stream error (overloaded_error): Overloaded (request id req_fake)');
});

test('a wrong key: 401 is not retried and the key never appears', async () => {
  setup({ requireKey: 'sk-test-the-right-one', echoKey: true });
  const wrong = 'sk-test-wrong-key-987654321';
  const { error } = await collect(request('openai', { apiKey: wrong }));
  assert.equal(fake.chatRequests().length, 1);
  assert.equal(error!.status, 401);
  const all = `${error!.message} ${error!.providerMessage} ${error!.hint} ${error!.stack}`;
  assert.ok(!all.includes(wrong), all);
  assert.equal(
    error!.message,
    'openai returned 401 (invalid_request_error): Incorrect API key provided: ********. You can find your API key at https://platform.openai.com/account/api-keys. (request id req_fake)',
  );
  assert.equal(error!.hint, 'Check OPENAI_API_KEY: the provider refused the key.');

  const a = await collect(request('anthropic', { apiKey: wrong }));
  assert.equal(a.error!.message, 'anthropic returned 401 (authentication_error): invalid x-api-key (request id req_fake)');
  assert.equal(a.error!.hint, 'Check ANTHROPIC_API_KEY: the provider refused the key.');
});

test('unknown models: 404 with the provider message and a hint', async () => {
  setup({ models: ['qwen2.5-coder:7b'], knownModels: ['claude-sonnet-4-5'] });
  const o = await collect(request('ollama', { model: 'nope:1b' }));
  assert.equal(o.error!.message, "ollama returned 404: model 'nope:1b' not found");
  assert.equal(o.error!.hint, 'Pull the model first: stigmer llm pull nope:1b');
  assert.equal(o.error!.retryable, false);
  const a = await collect(request('anthropic', { model: 'claude-sonnet-4.5' }));
  assert.equal(a.error!.message, 'anthropic returned 404 (not_found_error): model: claude-sonnet-4.5 (request id req_fake)');
  assert.equal(fake.chatRequests().length, 2, 'no retries for 404');
});

test('connection refused: a clear message, retried, then failed', async () => {
  const port = await freePort();
  const { error } = await collect({ ...request('ollama'), baseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 });
  assert.equal(error!.kind, 'connection');
  assert.equal(error!.message, `could not reach ollama at http://127.0.0.1:${port}: connection refused`);
  assert.match(error!.hint!, /Is Ollama running\?/);
});

test('listModels', async () => {
  setup({ models: ['qwen2.5-coder:7b', 'llama3.2:latest'] });
  const models = await listModels({ baseUrl: fake.url });
  assert.deepEqual(
    models.map((m) => m.name),
    ['qwen2.5-coder:7b', 'llama3.2:latest'],
  );
  assert.equal(models[0]!.parameter_size, '7.6B');

});

test('pullModel reports progress in order and resolves on success', async () => {
  setup({ models: [], pullSteps: 2, pullLayers: [{ digest: `sha256:${'ab'.repeat(32)}`, total: 400 }] });
  const seen: PullProgress[] = [];
  await pullModel({ baseUrl: fake.url, model: 'tiny:1b' }, (p) => seen.push(p));
  assert.deepEqual(
    seen.map((p) => [p.status, p.completed ?? 0, p.total ?? 0]),
    [
      ['pulling manifest', 0, 0],
      ['pulling abababababab', 0, 400],
      ['pulling abababababab', 200, 400],
      ['pulling abababababab', 400, 400],
      ['verifying sha256 digest', 0, 0],
      ['writing manifest', 0, 0],
      ['success', 0, 0],
    ],
  );
  assert.deepEqual(fake.requests.at(-1)!.body, { model: 'tiny:1b', stream: true });
  assert.deepEqual(
    (await listModels({ baseUrl: fake.url })).map((m) => m.name),
    ['tiny:1b'],
  );
});

test('pullModel: an error line and a cut stream are errors', async () => {
  setup({ pullError: 'pull model manifest: file does not exist' });
  await assert.rejects(pullModel({ baseUrl: fake.url, model: 'nope' }, () => undefined), {
    name: 'LlmError',
    message: 'pull of nope failed: pull model manifest: file does not exist',
  });
  setup({ pullCutAfterLayer: true });
  await assert.rejects(pullModel({ baseUrl: fake.url, model: 'tiny' }, () => undefined), (e: unknown) => {
    assert.ok(e instanceof LlmError);
    assert.equal(e.kind, 'stream-cut');
    assert.match(e.message, /^pull of tiny (was cut off|ended before ollama reported success)/);
    return true;
  });
});

test('SSE and NDJSON framing survive arbitrary chunk boundaries', async () => {
  const text = ': comment\r\nevent: a\r\ndata: {"x":1}\r\n\r\ndata: line1\ndata: line2\n\nevent: b\ndata: tail-without-blank-line';
  async function* byteByByte(): AsyncGenerator<Uint8Array> {
    for (const b of Buffer.from(text)) yield Uint8Array.of(b);
  }
  const events = [];
  for await (const e of readSse(byteByByte())) events.push(e);
  assert.deepEqual(events, [
    { event: 'a', data: '{"x":1}' },
    { event: 'message', data: 'line1\nline2' },
  ]);
  async function* split(): AsyncGenerator<Uint8Array> {
    const bytes = Buffer.from('{"a":"é"}\n{"b":2}');
    yield bytes.subarray(0, 7); // splits the two-byte é
    yield bytes.subarray(7);
  }
  const lines = [];
  for await (const l of readLines(split())) lines.push(l);
  assert.deepEqual(lines, ['{"a":"é"}', '{"b":2}']);
});

test('parseRetryAfter: ms, seconds, HTTP date', () => {
  assert.equal(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' }), 250);
  assert.equal(parseRetryAfter({ 'retry-after': '2' }), 2000);
  const now = Date.parse('2026-08-01T10:00:00Z');
  assert.equal(parseRetryAfter({ 'retry-after': 'Sat, 01 Aug 2026 10:00:03 GMT' }, now), 3000);
  assert.equal(parseRetryAfter({ 'retry-after': 'soon' }), undefined);
  assert.equal(parseRetryAfter({}), undefined);
});

test('SSE lines may end in a lone CR, also split across chunks; NDJSON keeps a lone CR inside a line', async () => {
  async function* chunks(...parts: string[]): AsyncGenerator<string> {
    yield* parts;
  }
  const events = [];
  for await (const e of readSse(chunks('event: a\rdata: 1\r', '\r', 'data: 2\r', '\ndata: 3\r\n\r\n: bye\r'))) events.push(e);
  assert.deepEqual(events, [
    { event: 'a', data: '1' },
    { event: 'message', data: '2\n3' },
  ]);
  const lines = [];
  for await (const l of readLines(chunks('a\rb\r', '\nc'))) lines.push(l);
  assert.deepEqual(lines, ['a\rb', 'c']);
});
