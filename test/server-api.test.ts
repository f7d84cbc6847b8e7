import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, repoRoot, sleep, tempHome, until as pollUntil } from './helpers.js';
import { raw, runOnce, startServer, type Server } from './server-rig.js';
import { ApiError, type ExecutionEvent, type StigmerClient } from '../src/stack/client/index.js';

let home: string;
let server: Server;
let client: StigmerClient;

before(async () => {
  home = tempHome('stigmer-server-api-');
  server = await startServer(home);
  client = server.client;
});

after(async () => {
  client?.close();
  const r = await server?.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  await cleanupHome(home);
});

/** Cancel whatever earlier tests left queued, so claims get this test's executions. */
async function drainQueue(): Promise<void> {
  for (const e of await client.listExecutions({ status: 'queued', limit: 1000 })) await client.cancelExecution(e.id);
}

/** Collect a stream's events in the background. */
function collect(id: string): { events: ExecutionEvent[]; ended: Promise<void> } {
  const events: ExecutionEvent[] = [];
  const ended = (async () => {
    for await (const ev of client.events(id)) events.push(ev);
  })();
  return { events, ended };
}

const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<true> => pollUntil(what, check, timeoutMs, { everyMs: 10 });

test('healthz reports ok, the package version and the uptime', async () => {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const h = await client.health();
  assert.equal(h.status, 'ok');
  assert.equal(h.version, version);
  assert.equal(typeof h.uptime_ms, 'number');
  const r = await raw(server.address, 'GET', '/healthz');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^application\/json/);
});

test('agents: create, replace, get, list sorted by name, delete', async () => {
  const created = await client.putAgent('zeta', { instructions: 'Answer briefly.' });
  assert.equal(created.created, true);
  assert.deepEqual(Object.keys(created.agent).sort(), ['created_at', 'instructions', 'model', 'name', 'updated_at']);
  assert.equal(created.agent.model, null);
  await sleep(5);
  const replaced = await client.putAgent('zeta', { instructions: 'Answer at length.', model: 'llama3' });
  assert.equal(replaced.created, false);
  assert.equal(replaced.agent.created_at, created.agent.created_at);
  assert.ok(replaced.agent.updated_at > created.agent.updated_at);
  assert.equal(replaced.agent.model, 'llama3');
  const echoed = await raw(server.address, 'PUT', '/v1/agents/alpha', JSON.stringify({ name: 'alpha', instructions: 'x' }));
  assert.equal(echoed.status, 201, 'a body may repeat the name of the path');
  assert.deepEqual(await client.getAgent('zeta'), replaced.agent);
  const names = (await client.listAgents()).map((a) => a.name);
  assert.deepEqual(names, [...names].sort());
  assert.ok(names.includes('alpha') && names.includes('zeta'));

  assert.equal((await raw(server.address, 'DELETE', '/v1/agents/alpha')).status, 204);
  const gone = await raw(server.address, 'GET', '/v1/agents/alpha');
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.body, { error: { code: 'not-found', message: 'agent "alpha" not found' } });
  assert.equal((await raw(server.address, 'DELETE', '/v1/agents/alpha')).status, 404);
});

test('bad input on every route: 400 naming the field, 404, 405, malformed JSON; nothing changes', async () => {
  await client.putAgent('valid', { instructions: 'Be valid.' });
  const exec = await client.createExecution('valid', 'hello');
  const before = { agents: await client.listAgents(), exec: await client.getExecution(exec.id) };
  const id = exec.id;
  const cases: [string, string, string | undefined, number, string, string | undefined][] = [
    // method, path, body, status, code, field
    ['PUT', '/v1/agents/Bad_Name', '{"instructions":"x"}', 400, 'invalid-field', 'name'],
    ['PUT', '/v1/agents/valid', '{}', 400, 'missing-field', 'instructions'],
    ['PUT', '/v1/agents/valid', '{"instructions":5}', 400, 'invalid-field', 'instructions'],
    ['PUT', '/v1/agents/valid', '{"instructions":"   "}', 400, 'invalid-field', 'instructions'],
    ['PUT', '/v1/agents/valid', '{"instructions":"x","model":""}', 400, 'invalid-field', 'model'],
    ['PUT', '/v1/agents/valid', '{"instructions":"x","modle":"m"}', 400, 'unknown-field', 'modle'],
    ['PUT', '/v1/agents/valid', '{"instructions":"x","name":"other"}', 400, 'invalid-field', 'name'],
    ['PUT', '/v1/agents/valid', '[1,2]', 400, 'invalid-body', undefined],
    ['PUT', '/v1/agents/valid', '{"instructions": "x"', 400, 'invalid-json', undefined],
    ['PUT', '/v1/agents/valid', '', 400, 'invalid-body', undefined],
    ['GET', '/v1/agents/NOPE!', undefined, 400, 'invalid-field', 'name'],
    ['DELETE', '/v1/agents/-x', undefined, 400, 'invalid-field', 'name'],
    ['GET', '/v1/agents/%E0%A4%A', undefined, 400, 'invalid-path', undefined],
    ['GET', 'http://elsewhere:99999/v1/agents', undefined, 400, 'invalid-path', undefined],
    ['POST', '/v1/executions', '{"message":"hi"}', 400, 'missing-field', 'agent'],
    ['POST', '/v1/executions', '{"agent":"valid"}', 400, 'missing-field', 'message'],
    ['POST', '/v1/executions', '{"agent":"valid","message":""}', 400, 'invalid-field', 'message'],
    ['POST', '/v1/executions', '{"agent":7,"message":"hi"}', 400, 'invalid-field', 'agent'],
    ['POST', '/v1/executions', '{"agent":"nobody","message":"hi"}', 404, 'not-found', 'agent'],
    ['POST', '/v1/executions', 'not json', 400, 'invalid-json', undefined],
    ['GET', '/v1/executions?status=bogus', undefined, 400, 'invalid-field', 'status'],
    ['GET', '/v1/executions?limit=0', undefined, 400, 'invalid-field', 'limit'],
    ['GET', '/v1/executions?limit=ten', undefined, 400, 'invalid-field', 'limit'],
    ['GET', '/v1/executions?agent=Not%20A%20Name', undefined, 400, 'invalid-field', 'agent'],
    ['GET', '/v1/executions/no-such-id', undefined, 404, 'not-found', undefined],
    ['POST', '/v1/executions/no-such-id/cancel', undefined, 404, 'not-found', undefined],
    ['POST', `/v1/executions/${id}/cancel`, '{"force":true}', 400, 'unknown-field', 'force'],
    ['GET', '/v1/executions/no-such-id/events', undefined, 404, 'not-found', undefined],
    ['POST', '/v1/runner/claim', '{}', 400, 'missing-field', 'runner_id'],
    ['POST', '/v1/runner/claim', '{"runner_id":""}', 400, 'invalid-field', 'runner_id'],
    ['POST', '/v1/runner/claim', '{"runner_id":"r","wait_ms":30001}', 400, 'invalid-field', 'wait_ms'],
    ['POST', '/v1/runner/claim', '{"runner_id":"r","wait_ms":"5"}', 400, 'invalid-field', 'wait_ms'],
    ['POST', '/v1/runner/claim', '', 400, 'invalid-body', undefined],
    ['POST', `/v1/runner/executions/${id}/chunks`, '{"runner_id":"r"}', 400, 'missing-field', 'text'],
    ['POST', `/v1/runner/executions/${id}/chunks`, '{"runner_id":"r","text":3}', 400, 'invalid-field', 'text'],
    ['POST', '/v1/runner/executions/no-such-id/chunks', '{"runner_id":"r","text":"x"}', 404, 'not-found', undefined],
    ['POST', `/v1/runner/executions/${id}/heartbeat`, '{}', 400, 'missing-field', 'runner_id'],
    ['POST', `/v1/runner/executions/${id}/complete`, '{"runner_id":"r","extra":1}', 400, 'unknown-field', 'extra'],
    ['POST', `/v1/runner/executions/${id}/fail`, '{"runner_id":"r"}', 400, 'missing-field', 'error'],
    ['POST', `/v1/runner/executions/${id}/release`, '{"runner_id":null}', 400, 'invalid-field', 'runner_id'],
    ['POST', `/v1/runner/executions/${id}/complete`, '{"runner_id":"not-the-holder"}', 409, 'lease-lost', undefined],
    ['GET', '/nope', undefined, 404, 'not-found', undefined],
    ['GET', '/v1/agents/a/b', undefined, 404, 'not-found', undefined],
    ['GET', '/v1/agents/', undefined, 404, 'not-found', undefined],
    ['POST', '/healthz', '{}', 405, 'method-not-allowed', undefined],
    ['DELETE', '/v1/executions', undefined, 405, 'method-not-allowed', undefined],
    ['PATCH', '/v1/agents/valid', '{}', 405, 'method-not-allowed', undefined],
    ['GET', '/v1/runner/claim', undefined, 405, 'method-not-allowed', undefined],
  ];
  for (const [method, path, body, status, code, field] of cases) {
    const r = await raw(server.address, method, path, body);
    const what = `${method} ${path} ${body ?? ''}`;
    assert.equal(r.status, status, what);
    assert.equal(r.body?.error?.code, code, what);
    assert.equal(typeof r.body?.error?.message, 'string', what);
    assert.equal(r.body?.error?.field, field, what);
  }
  const typed = await raw(server.address, 'PUT', '/v1/agents/valid', '{"instructions":5}');
  assert.equal(typed.body.error.message, 'instructions: expected a non-empty string, got 5');
  const named = await raw(server.address, 'PUT', '/v1/agents/Bad_Name', '{"instructions":"x"}');
  assert.equal(
    named.body.error.message,
    'name: expected a name of lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters, got "Bad_Name"',
  );
  const unknown = await raw(server.address, 'PUT', '/v1/agents/valid', '{"instructions":"x","modle":"m"}');
  assert.equal(unknown.body.error.message, 'unknown field "modle" (expected "instructions", "model", "name")');
  const renamed = await raw(server.address, 'PUT', '/v1/agents/valid', '{"instructions":"x","name":"other"}');
  assert.equal(renamed.body.error.message, 'name: expected "valid" (the name in the path), got "other"');
  const allow = await raw(server.address, 'PATCH', '/v1/agents/valid', '{}');
  assert.equal(allow.headers['allow'], 'GET, PUT, DELETE');
  assert.equal(allow.body.error.message, 'PATCH is not allowed on /v1/agents/valid (allowed: GET, PUT, DELETE)');

  assert.deepEqual(await client.listAgents(), before.agents);
  assert.deepEqual(await client.getExecution(id), before.exec);
  await client.cancelExecution(id);
});

test('bodies over 1 MiB get 413, with or without content-length, and nothing is stored', async () => {
  const big = JSON.stringify({ instructions: 'x'.repeat(1024 * 1024 + 10) });
  const declared = await raw(server.address, 'PUT', '/v1/agents/big', big);
  assert.equal(declared.status, 413);
  assert.equal(declared.body.error.code, 'body-too-large');
  assert.equal(declared.body.error.message, 'the request body is larger than 1048576 bytes');
  const chunked = await raw(server.address, 'PUT', '/v1/agents/big', big, { 'transfer-encoding': 'chunked' });
  assert.equal(chunked.status, 413);
  assert.equal((await raw(server.address, 'GET', '/v1/agents/big')).status, 404);
  // Just under the limit is fine.
  const fits = JSON.stringify({ instructions: 'y'.repeat(1024 * 1024 - 100) });
  assert.equal((await raw(server.address, 'PUT', '/v1/agents/big', fits)).status, 201);
  assert.equal((await client.getAgent('big')).instructions.length, 1024 * 1024 - 100);
  await client.deleteAgent('big');
  assert.equal((await client.health()).status, 'ok');
});

test('executions: create, get, list newest first with filters', async () => {
  await drainQueue();
  await client.putAgent('lister', { instructions: 'List.', model: 'small-model' });
  const a = await client.createExecution('lister', 'first');
  const b = await client.createExecution('lister', 'second');
  assert.deepEqual(Object.keys(a).sort(), ['agent', 'attempts', 'created_at', 'error', 'id', 'message', 'model', 'output', 'status', 'updated_at']);
  assert.equal(a.status, 'queued');
  assert.equal(a.output, '');
  assert.equal(a.error, null);
  assert.equal(a.attempts, 0);
  assert.equal(a.model, 'small-model');
  assert.deepEqual(await client.getExecution(a.id), a);
  const listed = await client.listExecutions({ agent: 'lister' });
  assert.deepEqual(
    listed.map((e) => e.id),
    [b.id, a.id],
  );
  assert.deepEqual(
    (await client.listExecutions({ agent: 'lister', limit: 1 })).map((e) => e.id),
    [b.id],
  );
  await client.cancelExecution(a.id);
  assert.deepEqual(
    (await client.listExecutions({ agent: 'lister', status: 'cancelled' })).map((e) => e.id),
    [a.id],
  );
  await client.cancelExecution(b.id);
});

test('event stream: live chunks and status in order, then a replay of a finished execution', async () => {
  await drainQueue();
  await client.putAgent('streamer', { instructions: 'Stream.' });
  const exec = await client.createExecution('streamer', 'hi');
  const live = collect(exec.id);
  await until(() => live.events.length >= 1, 'the first event');
  await runOnce(client, { chunks: ['Hel', 'lo', ' world'] });
  await live.ended;
  assert.deepEqual(live.events, [
    { type: 'status', status: 'queued', attempt: 0 },
    { type: 'status', status: 'running', attempt: 1 },
    { type: 'chunk', text: 'Hel' },
    { type: 'chunk', text: 'lo' },
    { type: 'chunk', text: ' world' },
    { type: 'done', status: 'succeeded', error: null },
  ]);
  const done = await client.getExecution(exec.id);
  assert.equal(done.status, 'succeeded');
  assert.equal(done.output, 'Hello world');
  assert.equal(done.attempts, 1);

  const replay = await raw(server.address, 'GET', `/v1/executions/${exec.id}/events`);
  assert.equal(replay.status, 200);
  assert.match(String(replay.headers['content-type']), /^text\/event-stream/);
  assert.equal(
    replay.body,
    'event: status\ndata: {"status":"succeeded","attempt":1}\n\n' +
      'event: chunk\ndata: {"text":"Hello world"}\n\n' +
      'event: done\ndata: {"status":"succeeded","error":null}\n\n',
  );
});

test('a stream opened mid-run replays the output so far, then continues live', async () => {
  await drainQueue();
  await client.putAgent('midway', { instructions: 'Go.' });
  const exec = await client.createExecution('midway', 'hi');
  const claim = await client.claim('mid-runner', 1000);
  assert.equal(claim?.execution.id, exec.id);
  await client.appendChunk(exec.id, 'mid-runner', 'one ');
  await client.appendChunk(exec.id, 'mid-runner', 'two ');
  const s = collect(exec.id);
  await until(() => s.events.length >= 2, 'the replay');
  await client.appendChunk(exec.id, 'mid-runner', 'three');
  await client.fail(exec.id, 'mid-runner', 'model exploded');
  await s.ended;
  assert.deepEqual(s.events, [
    { type: 'status', status: 'running', attempt: 1 },
    { type: 'chunk', text: 'one two ' },
    { type: 'chunk', text: 'three' },
    { type: 'done', status: 'failed', error: 'model exploded' },
  ]);
  const failed = await client.getExecution(exec.id);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'model exploded');
  assert.equal(failed.output, 'one two three');
});

test('claim: long poll waits for work, returns 204 when none comes, hands over the agent and lease', async () => {
  await drainQueue();
  await client.putAgent('poller', { instructions: 'Poll.', model: 'm1' });
  const empty = await raw(server.address, 'POST', '/v1/runner/claim', '{"runner_id":"r","wait_ms":100}');
  assert.equal(empty.status, 204);
  assert.equal(empty.body, undefined);

  const started = Date.now();
  const waiting = client.claim('poller-runner', 20_000);
  await sleep(150);
  const exec = await client.createExecution('poller', 'wake up');
  const claim = await waiting;
  assert.ok(Date.now() - started < 10_000, 'the long poll returned when work arrived');
  assert.ok(claim);
  assert.equal(claim.execution.id, exec.id);
  assert.equal(claim.execution.status, 'running');
  assert.equal(claim.execution.attempts, 1);
  assert.equal(claim.agent.name, 'poller');
  assert.equal(claim.agent.instructions, 'Poll.');
  assert.equal(claim.lease_ms, 15_000);
  assert.equal(claim.execution.model, 'm1');
  await client.complete(exec.id, 'poller-runner');

  // Two waiting runners, two executions: each gets one.
  const w1 = client.claim('r-a', 20_000);
  const w2 = client.claim('r-b', 20_000);
  await sleep(100);
  const e1 = await client.createExecution('poller', 'one');
  const e2 = await client.createExecution('poller', 'two');
  const [c1, c2] = await Promise.all([w1, w2]);
  assert.deepEqual(new Set([c1?.execution.id, c2?.execution.id]), new Set([e1.id, e2.id]));
  await client.complete(c1!.execution.id, 'r-a');
  await client.complete(c2!.execution.id, 'r-b');
});

test('runner conflicts: another runner gets lease-lost, a cancelled execution says cancelled', async () => {
  await drainQueue();
  await client.putAgent('conflict', { instructions: 'C.' });
  const exec = await client.createExecution('conflict', 'x');
  const claim = await client.claim('holder', 1000);
  assert.equal(claim?.execution.id, exec.id);
  await client.heartbeat(exec.id, 'holder');
  const stranger = await raw(server.address, 'POST', `/v1/runner/executions/${exec.id}/chunks`, '{"runner_id":"stranger","text":"x"}');
  assert.equal(stranger.status, 409);
  assert.deepEqual(stranger.body.error, {
    code: 'lease-lost',
    message: `runner "stranger" does not hold execution "${exec.id}" (its status is running)`,
  });

  const cancelled = await client.cancelExecution(exec.id);
  assert.equal(cancelled.status, 'cancelled');
  for (const action of ['chunks', 'heartbeat', 'complete']) {
    const body = action === 'chunks' ? '{"runner_id":"holder","text":"late"}' : '{"runner_id":"holder"}';
    const r = await raw(server.address, 'POST', `/v1/runner/executions/${exec.id}/${action}`, body);
    assert.equal(r.status, 409, action);
    assert.deepEqual(r.body.error, { code: 'cancelled', message: `execution "${exec.id}" was cancelled; stop running it` });
  }
  // Cancelling a finished execution changes nothing.
  const again = await client.cancelExecution(exec.id);
  assert.deepEqual(again, cancelled);
  assert.equal((await client.getExecution(exec.id)).output, '');
});

test('cancel of a queued execution ends its stream; it is never claimed', async () => {
  await drainQueue();
  await client.putAgent('canceller', { instructions: 'C.' });
  const exec = await client.createExecution('canceller', 'x');
  const s = collect(exec.id);
  await until(() => s.events.length >= 1, 'the first event');
  await client.cancelExecution(exec.id);
  await s.ended;
  assert.deepEqual(s.events, [
    { type: 'status', status: 'queued', attempt: 0 },
    { type: 'done', status: 'cancelled', error: null },
  ]);
  assert.equal(await client.claim('r', 0), null);
});

test('release: back to the queue with the output reset, and the next attempt streams after a queued event', async () => {
  await drainQueue();
  await client.putAgent('releaser', { instructions: 'R.' });
  const exec = await client.createExecution('releaser', 'x');
  await client.claim('first', 1000);
  await client.appendChunk(exec.id, 'first', 'partial');
  const s = collect(exec.id);
  await until(() => s.events.length >= 2, 'the replay');
  const released = await client.release(exec.id, 'first');
  assert.equal(released.status, 'queued');
  assert.equal(released.output, '');
  assert.equal(released.attempts, 1);
  await runOnce(client, { runnerId: 'second', chunks: ['fresh'], waitMs: 1000 });
  await s.ended;
  assert.deepEqual(s.events, [
    { type: 'status', status: 'running', attempt: 1 },
    { type: 'chunk', text: 'partial' },
    { type: 'status', status: 'queued', attempt: 1 },
    { type: 'status', status: 'running', attempt: 2 },
    { type: 'chunk', text: 'fresh' },
    { type: 'done', status: 'succeeded', error: null },
  ]);
  const final = await client.getExecution(exec.id);
  assert.equal(final.output, 'fresh');
  assert.equal(final.attempts, 2);
  await assert.rejects(client.appendChunk(exec.id, 'first', 'late'), (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === 'lease-lost');
});

test('an execution of a deleted agent fails at claim time instead of running', async () => {
  await drainQueue();
  await client.putAgent('ephemeral', { instructions: 'E.' });
  const exec = await client.createExecution('ephemeral', 'x');
  await client.deleteAgent('ephemeral');
  assert.equal(await client.claim('r', 0), null);
  const failed = await client.getExecution(exec.id);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'agent "ephemeral" was deleted before the execution started');
});

test('leases: a runner that goes quiet loses the execution, which is re-queued and claimed again', async () => {
  const leaseHome = tempHome('stigmer-server-lease-');
  const quick = await startServer(leaseHome, { env: { STIGMER_LEASE_MS: '300' } });
  const c = quick.client;
  try {
    await c.putAgent('leased', { instructions: 'L.' });
    const exec = await c.createExecution('leased', 'x');
    const first = await c.claim('quiet', 1000);
    assert.equal(first?.lease_ms, 300);
    await c.appendChunk(exec.id, 'quiet', 'lost output');
    // Heartbeats keep it.
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      await c.heartbeat(exec.id, 'quiet');
    }
    assert.equal((await c.getExecution(exec.id)).status, 'running');
    // Silence loses it.
    await until(async () => (await c.getExecution(exec.id)).status === 'queued', 're-queue after the lease expired');
    const requeued = await c.getExecution(exec.id);
    assert.equal(requeued.output, '');
    assert.equal(requeued.attempts, 1);
    await assert.rejects(c.heartbeat(exec.id, 'quiet'), (e: unknown) => e instanceof ApiError && e.code === 'lease-lost');
    await quick.waitFor(`execution ${exec.id}: lease of runner "quiet" expired; re-queued`);
    await runOnce(c, { runnerId: 'steady', chunks: ['done right'], waitMs: 1000 });
    const ok = await c.getExecution(exec.id);
    assert.equal(ok.status, 'succeeded');
    assert.equal(ok.output, 'done right');
    assert.equal(ok.attempts, 2);

    // An execution whose every runner dies fails after 5 attempts instead of looping.
    const doomed = await c.createExecution('leased', 'poison');
    for (let attempt = 1; attempt <= 5; attempt++) {
      const claim = await c.claim(`victim-${attempt}`, 5000);
      assert.equal(claim?.execution.id, doomed.id);
      assert.equal(claim?.execution.attempts, attempt);
    }
    await until(async () => (await c.getExecution(doomed.id)).status === 'failed', 'giving up');
    assert.equal((await c.getExecution(doomed.id)).error, 'the runner stopped responding on each of 5 attempts (lease expired)');
  } finally {
    c.close();
    await quick.stop();
    await cleanupHome(leaseHome);
  }
});
