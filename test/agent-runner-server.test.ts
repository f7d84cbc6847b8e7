// The agent-runner against the real reference stigmer-server (`stigmer internal server`) and the
// fake Ollama: an execution end to end, and a runner killed with SIGKILL mid-execution whose work
// is re-queued when its lease expires and finished by a second runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupHome, sleep, tempHome, until } from './helpers.js';
import { runnerDeps } from './runner-deps.js';
import { spawnCli, startServer, type Proc } from './server-rig.js';

const deps = runnerDeps();

function startRunner(home: string, serverAddress: string, id: string): Proc {
  return spawnCli(['internal', 'agent-runner'], home, {
    MODE: 'local',
    STIGMER_BACKEND_ENDPOINT: serverAddress,
    TEMPORAL_SERVICE_ADDRESS: deps.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    STIGMER_LLM_PROVIDER: 'ollama',
    STIGMER_LLM_MODEL: 'qwen2.5-coder:7b',
    STIGMER_LLM_BASE_URL: deps.fakeLlm.url,
    STIGMER_RUNNER_ID: id,
    ANTHROPIC_API_KEY: undefined,
    OPENAI_API_KEY: undefined,
  });
}

async function waitForStatus(client: Awaited<ReturnType<typeof startServer>>['client'], id: string, status: string, ms = 20_000): Promise<Awaited<ReturnType<typeof client.getExecution>>> {
  let e: Awaited<ReturnType<typeof client.getExecution>> | undefined;
  await until(`execution ${id} to be ${status}`, async () => (e = await client.getExecution(id)).status === status, ms, { show: () => `it is ${e?.status}: ${JSON.stringify(e)}` });
  return e!;
}

test('the real server: an execution is claimed, streamed and completed', async () => {
  const home = tempHome();
  deps.fakeLlm.reset({ chunks: ['The', ' answer', ' is', ' 42.'] });
  const server = await startServer(home);
  const runner = startRunner(home, server.address, 'runner-a');
  try {
    await runner.waitFor(/^agent-runner ready$/m);
    await server.client.putAgent('helper', { instructions: 'Answer briefly.' });
    const exec = await server.client.createExecution('helper', 'What is the answer?');
    const done = await waitForStatus(server.client, exec.id, 'succeeded');
    assert.equal(done.output, 'The answer is 42.');
    assert.equal(done.attempts, 1);
    assert.deepEqual(deps.fakeLlm.chatRequests()[0]!.body.messages, [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'What is the answer?' },
    ]);
    assert.equal((await runner.stop('SIGTERM')).code, 0);
  } finally {
    await runner.stop('SIGKILL');
    await server.stop();
    await cleanupHome(home);
  }
});

test('the real server: an answer cut at the length limit succeeds with a warning on the execution', async () => {
  const home = tempHome();
  deps.fakeLlm.reset({ chunks: ['a long answer that'], stopReason: 'length' });
  const server = await startServer(home);
  const runner = startRunner(home, server.address, 'runner-w');
  try {
    await runner.waitFor(/^agent-runner ready$/m);
    await server.client.putAgent('helper', { instructions: 'Answer at length.' });
    const exec = await server.client.createExecution('helper', 'Tell me everything.');
    const done = await waitForStatus(server.client, exec.id, 'succeeded');
    assert.equal(done.output, 'a long answer that');
    assert.equal(done.warning, `the answer was cut at the model's length limit (ollama stop reason "length")`);
    await runner.waitFor(/warning: the answer was cut at the model's length limit/);
    assert.equal((await runner.stop('SIGTERM')).code, 0);
  } finally {
    await runner.stop('SIGKILL');
    await server.stop();
    await cleanupHome(home);
  }
});

test('the real server: kill -9 of the runner mid-execution, a new runner completes it after the lease', async () => {
  const home = tempHome();
  deps.fakeLlm.reset({ chunks: Array.from({ length: 60 }, (_, i) => `${i} `), delayMs: 100 });
  const server = await startServer(home, { env: { STIGMER_LEASE_MS: '800' } });
  const first = startRunner(home, server.address, 'runner-1');
  let second: Proc | undefined;
  try {
    await first.waitFor(/^agent-runner ready$/m);
    await server.client.putAgent('counter', { instructions: 'Count.' });
    const exec = await server.client.createExecution('counter', 'Count to 60.');
    for (let e = await server.client.getExecution(exec.id); e.output.length === 0; e = await server.client.getExecution(exec.id)) await sleep(20);
    assert.equal((await first.stop('SIGKILL')).signal, 'SIGKILL');

    deps.fakeLlm.reset({ chunks: ['all', ' done'] });
    second = startRunner(home, server.address, 'runner-2');
    await second.waitFor(/^agent-runner ready$/m);
    const done = await waitForStatus(server.client, exec.id, 'succeeded');
    assert.equal(done.output, 'all done', 'the re-run starts from a clean output');
    assert.equal(done.attempts, 2);
    assert.match(second.stdout(), new RegExp(`^execution ${exec.id}: claimed \\(agent counter, ollama qwen2.5-coder:7b, attempt 2\\)$`, 'm'));
    assert.equal((await second.stop('SIGTERM')).code, 0);
  } finally {
    await first.stop('SIGKILL');
    await second?.stop('SIGKILL');
    await server.stop();
    await cleanupHome(home);
  }
});

test('the real server: heartbeats keep the lease while the provider is slow to answer', async () => {
  const home = tempHome();
  // The provider takes 4 leases to send its first token: without heartbeats the execution would
  // be re-queued and claimed again.
  deps.fakeLlm.reset({ chunks: ['late', ' but', ' whole'], headerDelayMs: 2000 });
  const server = await startServer(home, { env: { STIGMER_LEASE_MS: '500' } });
  const runner = startRunner(home, server.address, 'runner-slow');
  try {
    await runner.waitFor(/^agent-runner ready$/m);
    await server.client.putAgent('slow', { instructions: 'Take your time.' });
    const exec = await server.client.createExecution('slow', 'Go.');
    const done = await waitForStatus(server.client, exec.id, 'succeeded');
    assert.equal(done.output, 'late but whole');
    assert.equal(done.attempts, 1, 'never re-queued');
    assert.equal(deps.fakeLlm.chatRequests().length, 1);
    assert.equal((await runner.stop('SIGTERM')).code, 0);
  } finally {
    await runner.stop('SIGKILL');
    await server.stop();
    await cleanupHome(home);
  }
});
