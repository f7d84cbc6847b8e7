/**
 * The HTTP layer in-process, for what is slow or awkward through the real process: heartbeats on
 * idle streams, the bound on open streams, and a runner that hangs up during its long poll.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { sleep, tempHome } from './helpers.js';
import { Store } from '../src/stack/server/store.js';
import { Service } from '../src/stack/server/service.js';
import { createApiServer } from '../src/stack/server/http.js';
import { StigmerClient } from '../src/stack/client/index.js';
import { parseAddress } from '../src/util/address.js';

async function withServer(
  opts: { heartbeatMs?: number; maxStreams?: number },
  fn: (address: string, client: StigmerClient, service: Service) => Promise<void>,
): Promise<void> {
  const dir = tempHome('stigmer-server-http-');
  const { store } = Store.open(dir);
  const service = new Service(store, { leaseMs: 15_000 });
  const api = createApiServer({ service, version: 'test', startedAt: Date.now(), ...opts });
  await new Promise<void>((ok) => api.server.listen(0, '127.0.0.1', ok));
  const address = `127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const client = new StigmerClient(address, { keepAlive: true });
  try {
    await fn(address, client, service);
  } finally {
    client.close();
    api.endStreams();
    service.stop();
    api.server.closeAllConnections();
    await new Promise<void>((ok) => api.server.close(() => ok()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Open an event stream and collect its raw text. */
function rawStream(address: string, id: string): { text: () => string; status: Promise<number>; close: () => void } {
  const { host, port } = parseAddress(address)!;
  let text = '';
  let req!: http.ClientRequest;
  const status = new Promise<number>((resolve, reject) => {
    req = http.get({ host, port, path: `/v1/executions/${id}/events` }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('error', () => {});
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  return { text: () => text, status, close: () => req.destroy() };
}

test('idle event streams get `: ping` heartbeats', async () => {
  await withServer({ heartbeatMs: 40 }, async (address, client) => {
    await client.putAgent('quiet', { instructions: 'Q.' });
    const exec = await client.createExecution('quiet', 'x');
    const s = rawStream(address, exec.id);
    assert.equal(await s.status, 200);
    const deadline = Date.now() + 5000;
    while ((s.text().match(/: ping\n\n/g) ?? []).length < 2 && Date.now() < deadline) await sleep(10);
    assert.ok(s.text().startsWith('event: status\ndata: {"status":"queued","attempt":0}\n\n: ping\n\n: ping\n\n'), s.text());
    s.close();
  });
});

test('open event streams are bounded: one too many gets 503', async () => {
  await withServer({ maxStreams: 2 }, async (address, client) => {
    await client.putAgent('busy', { instructions: 'B.' });
    const exec = await client.createExecution('busy', 'x');
    const a = rawStream(address, exec.id);
    const b = rawStream(address, exec.id);
    assert.equal(await a.status, 200);
    assert.equal(await b.status, 200);
    const c = rawStream(address, exec.id);
    assert.equal(await c.status, 503);
    await sleep(20);
    assert.deepEqual(JSON.parse(c.text()), { error: { code: 'too-many-streams', message: 'more than 2 event streams are open; try again later' } });
    a.close();
    // A closed stream frees its slot.
    const deadline = Date.now() + 5000;
    for (;;) {
      const d = rawStream(address, exec.id);
      const st = await d.status;
      d.close();
      if (st === 200) break;
      assert.ok(Date.now() < deadline, 'the slot was freed');
      await sleep(20);
    }
    b.close();
  });
});

test('a runner that hangs up during its long poll is not handed an execution', async () => {
  await withServer({}, async (_address, client) => {
    await client.putAgent('polled', { instructions: 'P.' });
    const ac = new AbortController();
    const gone = client.claim('vanishing', 20_000, { signal: ac.signal });
    await sleep(100);
    ac.abort('hang up');
    await assert.rejects(gone);
    await sleep(50);
    const exec = await client.createExecution('polled', 'x');
    assert.equal((await client.getExecution(exec.id)).status, 'queued');
    const claim = await client.claim('present', 1000);
    assert.equal(claim?.execution.id, exec.id);
  });
});
