/**
 * The `wait` kind: one probe (tcp, http or grpc) for something the run did not start; the first
 * failure shown at once, an answer waiting cannot change failing at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import waitKind, { type WaitWith } from '../tasks/wait.js';
import { failureOf, makeContext } from './kind-context.js';
import { cleanupHome, fixture, freePort, tempHome } from './helpers.js';
import type * as FrontendModule from './fixtures/temporal-frontend.mjs';

const { startFrontend, WORKFLOW_SERVICE } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof FrontendModule;

test('wait grpc: says "connection refused" at once, then is done when the WorkflowService serves', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const port = await freePort();
  const { ctx, lines } = makeContext<WaitWith>(home, { grpc: { address: `127.0.0.1:${port}`, service: WORKFLOW_SERVICE, namespace: 'default' }, timeout: '20s' });
  const running = waitKind.run(ctx);
  let fe: Awaited<ReturnType<typeof startFrontend>> | undefined;
  // NOT_SERVING for 1.5 s, so a probe sees it even on a loaded machine (150 ms could pass between two probes)
  setTimeout(() => void startFrontend({ port, servingAfterMs: 1500 }).then((f) => (fe = f)), 300);
  t.after(() => fe?.close());
  const result = await running;
  assert.equal(lines[0], `connection refused (127.0.0.1:${port}); waiting up to 20 s`);
  assert.ok(lines.some((l) => l.startsWith(`NOT_SERVING (${WORKFLOW_SERVICE} at 127.0.0.1:${port}); waited `)), lines.join('\n'));
  assert.deepEqual(result.outputs, { address: `127.0.0.1:${port}` });
  assert.equal(result.lastProbe, 'SERVING; namespace default REGISTERED');
});

test('wait grpc: an unknown namespace fails at once as probe-rejected, a timeout names what was last seen', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const fe = await startFrontend();
  t.after(() => fe.close());
  const { ctx } = makeContext<WaitWith>(home, { grpc: { address: fe.address, service: WORKFLOW_SERVICE, namespace: 'prod' }, timeout: '30s' });
  const started = performance.now();
  const err = await failureOf(waitKind.run(ctx));
  assert.ok(performance.now() - started < 5000);
  assert.equal(err.failure.reason, 'probe-rejected');
  assert.equal(err.message, `namespace prod not found at ${fe.address} [grpc ${fe.address} Health/Check ${WORKFLOW_SERVICE} answering SERVING, then DescribeNamespace prod]`);
  assert.equal(err.failure.hint, 'Check the namespace name; Temporal Cloud namespaces look like name.account-id.');

  fe.setServing(false);
  const slow = makeContext<WaitWith>(home, { grpc: { address: fe.address, service: WORKFLOW_SERVICE }, timeout: '300ms' });
  const timeout = await failureOf(waitKind.run(slow.ctx));
  assert.equal(timeout.failure.reason, 'ready-timeout');
  assert.equal(timeout.message, `${fe.address} did not answer SERVING within 300 ms (last probe: NOT_SERVING (${WORKFLOW_SERVICE} at ${fe.address}))`);
});

test('wait needs exactly one probe', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const { ctx } = makeContext<WaitWith>(home, { tcp: { port: 1 }, http: { url: 'http://x' } });
  assert.equal((await failureOf(waitKind.run(ctx))).message, 'Expected with to have exactly one of tcp, http or grpc, got tcp, http');
});
