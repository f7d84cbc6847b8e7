// `stigmer llm pull` and `stigmer llm list` against the fake Ollama.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanupHome, fixture, freePort, runCli, tempHome } from './helpers.js';
import type { FakeLlm } from './fixtures/fake-llm.mjs';
import { plainPullView, ttyPullView } from '../src/stack/llm/pull-view.js';
import { formatBytes } from '../src/util/format.js';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');

let fake: FakeLlm;
before(async () => {
  fake = await startFakeLlm();
});
after(() => fake.close());

/** No LLM settings leak in from the environment the tests run in. */
const CLEAN = { STIGMER_LLM_PROVIDER: undefined, STIGMER_LLM_MODEL: undefined, STIGMER_LLM_BASE_URL: undefined };
const LAYER = `sha256:${'6a0746a1ec1a'.padEnd(64, 'f')}`;

test('llm pull: plain progress lines, then the pulled model', async () => {
  const home = tempHome();
  try {
    fake.reset({ models: [], pullSteps: 4, pullLayers: [{ digest: LAYER, total: 4_683_087_332 }] });
    const r = await runCli(['llm', 'pull', 'qwen2.5-coder:7b', '--base-url', fake.url], { home, env: CLEAN });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      [
        `pulling qwen2.5-coder:7b into ollama at ${fake.url}`,
        'pulling manifest',
        'pulling 6a0746a1ec1a: 0%',
        'pulling 6a0746a1ec1a: 25%',
        'pulling 6a0746a1ec1a: 50%',
        'pulling 6a0746a1ec1a: 75%',
        'pulling 6a0746a1ec1a: 100%',
        'verifying sha256 digest',
        'writing manifest',
        'pulled qwen2.5-coder:7b',
        '',
      ].join('\n'),
    );
    assert.deepEqual(fake.requests.at(-1)!.body, { model: 'qwen2.5-coder:7b', stream: true });
  } finally {
    await cleanupHome(home);
  }
});

test('llm pull: the model and URL come from the config cascade', async () => {
  const home = tempHome();
  try {
    fake.reset({ models: [], pullSteps: 1 });
    // config.yaml says Ollama at the fake with a model of its own
    writeFileSync(join(home, 'config.yaml'), `backend:\n  type: local\n  local:\n    llm:\n      provider: ollama\n      model: tiny:1b\n      base_url: ${fake.url}\n`);
    const r = await runCli(['llm', 'pull'], { home, env: CLEAN });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pulled tiny:1b$/m);
    assert.equal(fake.requests.at(-1)!.body.model, 'tiny:1b');

    // the environment wins over the file
    const r2 = await runCli(['llm', 'pull'], { home, env: { ...CLEAN, STIGMER_LLM_MODEL: 'other:2b' } });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(fake.requests.at(-1)!.body.model, 'other:2b');
  } finally {
    await cleanupHome(home);
  }
});

test('llm pull: an error line exits 1 with its message', async () => {
  const home = tempHome();
  try {
    fake.reset({ pullError: 'pull model manifest: file does not exist' });
    const r = await runCli(['llm', 'pull', 'nope', '--base-url', fake.url], { home, env: CLEAN });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'stigmer: pull of nope failed: pull model manifest: file does not exist\n');
    assert.equal(r.stdout, `pulling nope into ollama at ${fake.url}\npulling manifest\n`);
  } finally {
    await cleanupHome(home);
  }
});

test('llm pull / list: Ollama not running, and a bad --base-url', async () => {
  const home = tempHome();
  try {
    const port = await freePort();
    const r = await runCli(['llm', 'list'], { home, env: { ...CLEAN, STIGMER_LLM_BASE_URL: `http://127.0.0.1:${port}` } });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `stigmer: could not reach ollama at http://127.0.0.1:${port}: connection refused\nIs Ollama running? Start it (ollama serve), or pass --base-url / set STIGMER_LLM_BASE_URL.\n`,
    );
    const r2 = await runCli(['llm', 'pull', '--base-url', 'localhost:11434'], { home, env: CLEAN });
    assert.equal(r2.code, 2);
    assert.equal(r2.stderr, 'stigmer: Expected --base-url to be an http:// or https:// URL, got "localhost:11434"\n');
  } finally {
    await cleanupHome(home);
  }
});

test('llm list: a table, JSON, and the empty case', async () => {
  const home = tempHome();
  try {
    fake.reset({ models: ['qwen2.5-coder:7b', 'llama3.2:latest'] });
    const r = await runCli(['llm', 'list', '--base-url', fake.url], { home, env: CLEAN });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      ['NAME              SIZE    MODIFIED', 'qwen2.5-coder:7b  4.7 GB  2026-08-01  (configured)', 'llama3.2:latest   4.7 GB  2026-08-01', ''].join('\n'),
    );
    const j = await runCli(['llm', 'list', '--json', '--base-url', fake.url], { home, env: CLEAN });
    const parsed = JSON.parse(j.stdout) as { base_url: string; models: { name: string }[] };
    assert.equal(parsed.base_url, fake.url);
    assert.deepEqual(
      parsed.models.map((m) => m.name),
      ['qwen2.5-coder:7b', 'llama3.2:latest'],
    );
    fake.reset({ models: [] });
    const e = await runCli(['llm', 'list', '--base-url', fake.url], { home, env: CLEAN });
    assert.equal(e.stdout, `no models pulled in ollama at ${fake.url}; pull one with: stigmer llm pull qwen2.5-coder:7b\n`);
  } finally {
    await cleanupHome(home);
  }
});

test('pull views: plain steps of 10 %, a terminal bar that survives width 0', () => {
  const lines: string[] = [];
  const plain = plainPullView((l) => lines.push(l));
  plain.update({ status: 'pulling manifest' });
  for (let c = 0; c <= 1000; c += 30) plain.update({ status: 'pulling abc', digest: 'sha256:abc', total: 1000, completed: c });
  plain.update({ status: 'pulling abc', digest: 'sha256:abc', total: 1000, completed: 1000 });
  plain.update({ status: 'success' });
  assert.deepEqual(lines, [
    'pulling manifest',
    'pulling abc: 0%',
    'pulling abc: 12%',
    'pulling abc: 21%',
    'pulling abc: 30%',
    'pulling abc: 42%',
    'pulling abc: 51%',
    'pulling abc: 60%',
    'pulling abc: 72%',
    'pulling abc: 81%',
    'pulling abc: 90%',
    'pulling abc: 100%',
  ]);

  let out = '';
  const tty = ttyPullView({ write: (s: string) => (out += s), columns: 0 });
  tty.update({ status: 'pulling abc', total: 2_000_000_000, completed: 1_000_000_000 });
  tty.finish();
  assert.equal(out, `\r\u001b[2Kpulling abc ${'█'.repeat(20)}${'░'.repeat(20)}  50% 1.0 GB/2.0 GB\n`);
  assert.equal(formatBytes(999, 'decimal'), '999 B');
  assert.equal(formatBytes(4_683_087_332, 'decimal'), '4.7 GB');
  assert.equal(formatBytes(274_000_000, 'decimal'), '274 MB');
  // the same function in binary units, as downloads and progress bars print sizes
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(20_582), '20.1 KiB');
  assert.equal(formatBytes(47_500_000), '45.3 MiB');
  assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
});
