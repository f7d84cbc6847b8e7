import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import waitPortKind, { type WaitPortWith } from '../tasks/wait-port.js';
import { failureOf, makeContext } from './kind-context.js';
import { cleanupHome, freePort, tempHome } from './helpers.js';
import { describeFailure } from '../src/model/failure.js';

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
}

/** A server on a free port of `host` that accepts and ends every connection; closed after the test. */
async function listening(t: TestContext, host: string): Promise<number> {
  const server = net.createServer((s) => s.end());
  t.after(() => server.close());
  const port = await freePort();
  await listen(server, port, host);
  return port;
}

test('wait-port is done once the port opens, and coerces a port given as a string', async (t) => {
  const home = tempHome();
  const server = net.createServer((s) => s.end());
  t.after(() => server.close());
  try {
    const port = await freePort();
    const { ctx } = makeContext<WaitPortWith>(home, { port: String(port), timeout: '20s' });
    const running = waitPortKind.run(ctx);
    setTimeout(() => void listen(server, port, '127.0.0.1'), 150);
    const result = await running;
    assert.deepEqual(result.outputs, { address: `localhost:${port}` });
    assert.match(result.summary ?? '', new RegExp(`^localhost:${port} accepted a connection after `));
  } finally {
    await cleanupHome(home);
  }
});

for (const bind of ['::1', '127.0.0.1']) {
  test(`localhost is ready when a server listens only on ${bind}`, async (t) => {
    const home = tempHome();
    try {
      const port = await listening(t, bind);
      const { ctx } = makeContext<WaitPortWith>(home, { host: 'localhost', port, timeout: '10s' });
      assert.deepEqual((await waitPortKind.run(ctx)).outputs, { address: `localhost:${port}` });
    } finally {
      await cleanupHome(home);
    }
  });
}

test('an explicit IPv6 address is probed as given', async (t) => {
  const home = tempHome();
  try {
    const port = await listening(t, '::1');
    const { ctx } = makeContext<WaitPortWith>(home, { host: '::1', port });
    assert.deepEqual((await waitPortKind.run(ctx)).outputs, { address: `[::1]:${port}` });
  } finally {
    await cleanupHome(home);
  }
});

test('wait-port fails at its deadline naming the address and the last probe', async () => {
  const home = tempHome();
  try {
    const port = await freePort();
    const { ctx } = makeContext<WaitPortWith>(home, { port, timeout: '300ms' });
    const err = await failureOf(waitPortKind.run(ctx));
    assert.equal(err.failure.reason, 'port-timeout');
    assert.equal(
      err.message,
      `nothing accepted connections on localhost:${port} within 300 ms (connect ECONNREFUSED 127.0.0.1:${port}; connect ECONNREFUSED ::1:${port})`,
    );
    assert.equal(describeFailure(err.failure).hint, `Check that the service at localhost:${port} is running and reachable.`);
  } finally {
    await cleanupHome(home);
  }
});

test('wait-port stops waiting when aborted', async () => {
  const home = tempHome();
  try {
    const port = await freePort();
    const { ctx, abort } = makeContext<WaitPortWith>(home, { host: '127.0.0.1', port, timeout: '60s' });
    const running = waitPortKind.run(ctx);
    setTimeout(() => abort.abort('another task failed'), 100);
    const err = await failureOf(running);
    assert.equal(err.failure.reason, 'aborted');
    assert.equal(err.message, 'aborted: another task failed');
  } finally {
    await cleanupHome(home);
  }
});

test('wait-port rejects a port that is not one', async () => {
  const home = tempHome();
  try {
    const { ctx } = makeContext<WaitPortWith>(home, { port: 'http' });
    const err = await failureOf(waitPortKind.run(ctx));
    assert.equal(err.failure.reason, 'invalid-input');
    assert.equal(err.message, 'Expected with.port to be a TCP port (1-65535), got "http"');
    const bad = makeContext<WaitPortWith>(home, { port: 80, timeout: 'soon' });
    assert.equal(
      (await failureOf(waitPortKind.run(bad.ctx))).message,
      'Expected with.timeout to be a duration like "250ms", "30s" or "2m", got "soon"',
    );
  } finally {
    await cleanupHome(home);
  }
});

test("wait-port keeps the engine's context whole: its signal and methods on the prototype reach the wait (a spread of it dropped them)", async (t) => {
  const home = tempHome();
  try {
    const port = await listening(t, '127.0.0.1');
    const { ctx } = makeContext<WaitPortWith>(home, { port, timeout: '20s' });
    // as src/engine/run-task.ts's Context: a class, its signal a getter and output a method over a private field
    const { signal, output, ...own } = ctx;
    class EngineLike {
      readonly #inner = { signal, output };
      get signal(): AbortSignal {
        return this.#inner.signal;
      }
      output(line: string): void {
        this.#inner.output(line);
      }
    }
    const classLike = Object.assign(new EngineLike(), own) as unknown as typeof ctx;
    const result = await waitPortKind.run(classLike);
    assert.deepEqual(result.outputs, { address: `localhost:${port}` });
  } finally {
    await cleanupHome(home);
  }
});

test("wait-port runs under the engine's own context (runGraph, the real kinds): done once the port is open", async (t) => {
  const { join } = await import('node:path');
  const { runGraph } = await import('../src/engine/run.js');
  const { buildGraph } = await import('../src/engine/graph.js');
  const { StateStore } = await import('../src/engine/state.js');
  const { kinds } = await import('../src/commands/kinds.js');
  const home = tempHome();
  try {
    const port = await listening(t, '127.0.0.1');
    const tasks = new Map([['w', { name: 'w', uses: 'wait-port', needs: [], with: { port, timeout: '20s' }, optional: false, env: {} }]]);
    const graph = buildGraph({ path: join(home, 'x.yaml'), displayPath: 'x.yaml', dir: home, tasks, usesConfig: false });
    const events: string[] = [];
    const outcome = await runGraph({
      graph,
      kinds,
      baseDir: home,
      dataDir: home,
      state: new StateStore(join(home, 'state.json')),
      config: {},
      env: {},
      signal: new AbortController().signal,
      canPrompt: false,
      emit: (ev) => events.push(ev.type === 'failed' ? `failed: ${describeFailure(ev.failure).message}` : ev.type),
    });
    assert.deepEqual(events, ['queued', 'started', 'done']);
    assert.equal(outcome.ok, true);
  } finally {
    await cleanupHome(home);
  }
});
