/**
 * The API-key prompt of `local start` with a hosted provider and no key, in a real terminal
 * (tmux): asked once, masked, before the live view takes the screen; Ctrl-C there is an interrupt;
 * and without a terminal (`--no-input`) the missing key fails before anything is started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, runCli } from './helpers.js';
import { stackRig } from './temporal-mirror.js';
import { startScreen } from './tmux.js';

const KEY = 'sk-ant-prompted-0123456789';

test('on a terminal the key is asked before the view starts, one masked line, then the stack comes up', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const env = { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic' };
  const screen = await startScreen(['local', 'start'], { home: r.home, env });
  t.after(() => screen.close());
  const waiting = await screen.waitFor(/\? Enter Anthropic API key/);
  // Waiting for input: the prompt is the last thing on the screen, no task view under or over it.
  assert.doesNotMatch(waiting, /resolve-config|start-server|download-temporal|[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
  assert.equal(waiting.match(/Enter Anthropic API key/g)?.length, 1);
  await screen.type(KEY);
  const typed = await screen.waitFor(/\? Enter Anthropic API key \*{26}/);
  assert.equal(typed.match(/Enter Anthropic API key/g)?.length, 1, 'one prompt line, not one per keystroke');
  assert.ok(!typed.includes(KEY), 'masked');
  await screen.keys('Enter');
  assert.equal(await screen.exitCode(), 0, await screen.text());
  const done = await screen.text();
  assert.equal(done.match(/Enter Anthropic API key/g)?.length, 1);
  assert.match(done, /gather-secrets .*Using Anthropic \(ANTHROPIC_API_KEY entered at the prompt\)/);
  assert.match(done, /✓ Stigmer is running/);
  assert.ok(!done.includes(KEY));
  const [runner] = r.records('agent-runner');
  assert.equal(runner?.env['ANTHROPIC_API_KEY'], KEY, 'the prompted key reaches the agent-runner');
  assert.equal((await runCli(['local', 'stop'], { home: r.home, env: r.env })).code, 0);
  await screen.close();
  await assertNothingLeft(r.home);
});

test('Ctrl-C at the prompt: exit 130, one line, no stack trace, nothing started', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const screen = await startScreen(['local', 'start'], { home: r.home, env: { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic' } });
  t.after(() => screen.close());
  await screen.waitFor(/\? Enter Anthropic API key/);
  await screen.keys('C-c');
  assert.equal(await screen.exitCode(), 130);
  const text = await screen.text();
  assert.equal(text.match(/SIGINT received/g)?.length, 1, text);
  assert.doesNotMatch(text, /ExitPromptError|internal error|\n\s+at /);
  assert.deepEqual(r.temporalStarts(), [], 'Temporal never started');
  assert.ok(!existsSync(join(r.home, 'bin', 'temporal-1.8.2')), 'nothing was downloaded');
  await screen.close();
  await assertNothingLeft(r.home);
});

test('--no-input with a missing key fails before anything with side effects starts', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env: { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic' } });
  assert.equal(start.code, 1);
  assert.match(start.stderr, /^stigmer: gather-secrets failed: ANTHROPIC_API_KEY is not set \(--no-input was given\)\n/);
  assert.doesNotMatch(start.stdout, /download-temporal|start-server|start-temporal/, 'nothing else ran');
  assert.deepEqual(r.temporalStarts(), []);
  assert.deepEqual(r.records('server'), []);
  assert.ok(!existsSync(join(r.home, 'bin', 'temporal-1.8.2')), 'no download');
});
