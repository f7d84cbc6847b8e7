import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, freePort, runCli, sleep, tempHome } from './helpers.js';
import { runOnce, startServer, spawnCli, type Proc } from './server-rig.js';
import type { ExecutionEvent } from '../src/stack/client/index.js';

const NO_ENV = { STIGMER_SERVER_ADDRESS: undefined, STIGMER_DATA_DIR: undefined, STIGMER_LEASE_MS: undefined };

test('bad environment fails at start with exit 2 and says what to set', async () => {
  const home = tempHome('stigmer-server-env-');
  try {
    const dataDir = join(home, 'data');
    const aFile = join(home, 'a-file');
    writeFileSync(aFile, 'not a directory');
    const cases: [Record<string, string | undefined>, string][] = [
      [{ STIGMER_DATA_DIR: dataDir }, 'STIGMER_SERVER_ADDRESS is not set; expected host:port, e.g. localhost:50051'],
      [{ STIGMER_SERVER_ADDRESS: 'nonsense', STIGMER_DATA_DIR: dataDir }, 'Expected STIGMER_SERVER_ADDRESS to be host:port (e.g. localhost:50051), got "nonsense"'],
      [{ STIGMER_SERVER_ADDRESS: 'localhost:99999', STIGMER_DATA_DIR: dataDir }, 'Expected STIGMER_SERVER_ADDRESS to be host:port (e.g. localhost:50051), got "localhost:99999"'],
      [
        { STIGMER_SERVER_ADDRESS: '0.0.0.0:50051', STIGMER_DATA_DIR: dataDir },
        'Expected STIGMER_SERVER_ADDRESS to name a loopback host (localhost, 127.0.0.1 or [::1]), got "0.0.0.0:50051"',
      ],
      [{ STIGMER_SERVER_ADDRESS: 'localhost:50051' }, 'STIGMER_DATA_DIR is not set; expected the directory to keep the store in'],
      [
        { STIGMER_SERVER_ADDRESS: 'localhost:50051', STIGMER_DATA_DIR: dataDir, STIGMER_LEASE_MS: 'soon' },
        'Expected STIGMER_LEASE_MS to be a whole number of milliseconds from 100 to 3600000, got "soon"',
      ],
    ];
    for (const [env, message] of cases) {
      const r = await runCli(['internal', 'server'], { home, env: { ...NO_ENV, ...env } });
      assert.equal(r.code, 2, message);
      assert.equal(r.stderr, `stigmer-server: ${message}\n`);
      assert.equal(r.stdout, '');
    }
    const notDir = await runCli(['internal', 'server'], { home, env: { ...NO_ENV, STIGMER_SERVER_ADDRESS: '127.0.0.1:0', STIGMER_DATA_DIR: aFile } });
    assert.equal(notDir.code, 2);
    assert.match(notDir.stderr, new RegExp(`^stigmer-server: STIGMER_DATA_DIR=${aFile} cannot hold the store: `));
  } finally {
    await cleanupHome(home);
  }
});

test('a held port and a store already in use fail with exit 1 and name the cause', async () => {
  const home = tempHome('stigmer-server-busy-');
  const holder = net.createServer();
  const port = await freePort();
  await new Promise<void>((ok) => holder.listen(port, '127.0.0.1', ok));
  const first = await startServer(home);
  try {
    const taken = await runCli(['internal', 'server'], { home, env: { STIGMER_SERVER_ADDRESS: `127.0.0.1:${port}`, STIGMER_DATA_DIR: join(home, 'other') } });
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, new RegExp(`stigmer-server: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use\\n$`));

    const second = await runCli(['internal', 'server'], { home, env: { STIGMER_SERVER_ADDRESS: '127.0.0.1:0', STIGMER_DATA_DIR: first.dataDir } });
    assert.equal(second.code, 1);
    assert.equal(
      second.stderr,
      `stigmer-server: the store is in use by another stigmer-server (pid ${first.pid}); stop it first, or give this one another STIGMER_DATA_DIR\n`,
    );
  } finally {
    holder.close();
    first.client.close();
    await first.stop();
    await cleanupHome(home);
  }
});

test('a restart keeps agents and executions in every state; a running one keeps its runner', async () => {
  const home = tempHome('stigmer-server-restart-');
  let server = await startServer(home);
  try {
    let c = server.client;
    await c.putAgent('keeper', { instructions: 'Keep everything.', model: 'qwen2.5-coder:7b' });
    await c.putAgent('other', { instructions: 'Other.' });
    const ok = await c.createExecution('keeper', 'succeed');
    await runOnce(c, { chunks: ['all ', 'good'] });
    const bad = await c.createExecution('keeper', 'fail');
    await runOnce(c, { chunks: ['half'], failWith: 'provider said no' });
    const running = await c.createExecution('other', 'keep running');
    await c.claim('survivor', 1000);
    await c.appendChunk(running.id, 'survivor', 'in progress');
    const queued = await c.createExecution('other', 'wait');
    const beforeAgents = await c.listAgents();
    const beforeExecs = await c.listExecutions();
    c.close();
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.match(server.stdout(), /stigmer-server: SIGTERM received, stopping\nstigmer-server: stopped\n$/);

    server = await startServer(home, { dataDir: server.dataDir });
    c = server.client;
    assert.match(server.stdout(), /stigmer-server: store .*: 2 agents, 4 executions\n/);
    assert.deepEqual(await c.listAgents(), beforeAgents);
    assert.deepEqual(await c.listExecutions(), beforeExecs);
    assert.equal((await c.getExecution(ok.id)).output, 'all good');
    assert.equal((await c.getExecution(bad.id)).error, 'provider said no');
    assert.equal((await c.getExecution(queued.id)).status, 'queued');
    // The runner that held the execution before the restart can carry on.
    await c.appendChunk(running.id, 'survivor', ', still');
    await c.complete(running.id, 'survivor');
    assert.equal((await c.getExecution(running.id)).output, 'in progress, still');
    c.close();
  } finally {
    await server.stop();
    await cleanupHome(home);
  }
});

test('kill -9 during a burst of writes loses nothing that was acknowledged; a torn tail is dropped', async () => {
  const home = tempHome('stigmer-server-kill-');
  let server = await startServer(home);
  try {
    const c = server.client;
    await c.putAgent('base', { instructions: 'Base.' });
    const exec = await c.createExecution('base', 'stream a lot');
    await c.claim('writer', 1000);
    const ackedAgents: string[] = [];
    const ackedChunks: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const name = `burst-${w}-${i}`;
        try {
          await c.putAgent(name, { instructions: `instructions of ${name}` });
          ackedAgents.push(name);
        } catch {
          return;
        }
      }
    });
    const chunker = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await c.appendChunk(exec.id, 'writer', `[${i}]`);
          ackedChunks.push(`[${i}]`);
        } catch {
          return;
        }
      }
    })();
    while (ackedAgents.length < 150) await sleep(5);
    process.kill(server.pid, 'SIGKILL');
    await server.exited;
    stop = true;
    await Promise.all([...writers, chunker]);
    c.close();
    assert.ok(ackedAgents.length >= 150 && ackedChunks.length > 0);

    const wal = join(server.dataDir, 'server', 'wal.jsonl');
    appendFileSync(wal, 'deadbeef {"t":"agent","ag');
    server = await startServer(home, { dataDir: server.dataDir });
    assert.match(server.stdout(), /, dropped a torn record of 25 bytes at the end of the log\n/);
    const c2 = server.client;
    const names = new Set((await c2.listAgents()).map((a) => a.name));
    for (const name of ackedAgents) assert.ok(names.has(name), `acknowledged agent ${name} survived`);
    assert.equal((await c2.getAgent(ackedAgents[0]!)).instructions, `instructions of ${ackedAgents[0]}`);
    const after = await c2.getExecution(exec.id);
    assert.equal(after.status, 'running');
    assert.ok(after.output.startsWith(ackedChunks.join('')), 'every acknowledged chunk survived, in order');
    c2.close();
  } finally {
    await server.stop();
    await cleanupHome(home);
  }
});

test('SIGTERM ends open event streams and waiting claims, then exits 0', async () => {
  const home = tempHome('stigmer-server-term-');
  const server = await startServer(home);
  try {
    const c = server.client;
    await c.putAgent('term', { instructions: 'T.' });
    const exec = await c.createExecution('term', 'x');
    await c.claim('r', 1000);
    const events: ExecutionEvent[] = [];
    const stream = (async () => {
      for await (const ev of c.events(exec.id)) events.push(ev);
    })();
    while (events.length === 0) await sleep(5);
    const claim = c.claim('idle-runner', 30_000);
    await sleep(100);
    const exit = server.stop('SIGTERM');
    await stream;
    assert.equal(await claim, null);
    assert.deepEqual(await exit, { code: 0, signal: null });
    assert.deepEqual(events, [{ type: 'status', status: 'running', attempt: 1 }]);
    c.close();
  } finally {
    await server.stop();
    await cleanupHome(home);
  }
});

test('the server binds localhost to 127.0.0.1 and prints the address it was given', async () => {
  const home = tempHome('stigmer-server-localhost-');
  mkdirSync(join(home, 'data'));
  let port = 0;
  let proc: Proc | undefined;
  for (let attempt = 1; !proc; attempt++) {
    port = await freePort();
    const p = spawnCli(['internal', 'server'], home, { STIGMER_SERVER_ADDRESS: `localhost:${port}`, STIGMER_DATA_DIR: join(home, 'data') });
    try {
      await p.waitFor(`stigmer-server listening on localhost:${port}\n`);
      proc = p;
    } catch (err) {
      // another test took the port meanwhile
      if (attempt >= 3 || !p.stderr().includes('the port is already in use')) throw err;
    }
  }
  try {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((ok, fail) => {
      sock.once('connect', ok);
      sock.once('error', fail);
    });
    sock.destroy();
  } finally {
    assert.deepEqual(await proc.stop(), { code: 0, signal: null });
    await cleanupHome(home);
  }
});
