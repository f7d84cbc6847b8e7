import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, tempHome } from './helpers.js';
import { Store, StoreCorruptError } from '../src/stack/server/store.js';
import type { Agent, StoredExecution } from '../src/stack/server/model.js';

const agent = (name: string, instructions = `be ${name}`): Agent => ({
  name,
  instructions,
  model: null,
  created_at: '2025-01-01T00:00:00.000Z',
  updated_at: '2025-01-01T00:00:00.000Z',
});

const execution = (id: string, agentName: string): StoredExecution => ({
  id,
  agent: agentName,
  message: 'hi',
  model: null,
  status: 'queued',
  output: '',
  error: null,
  created_at: '2025-01-01T00:00:00.000Z',
  updated_at: '2025-01-01T00:00:00.000Z',
  attempts: 0,
  runner_id: null,
});

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = tempHome('stigmer-store-');
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Write some state and leave the store open, as a killed server would (nothing compacted). */
async function writeState(dir: string): Promise<Store> {
  const { store } = Store.open(dir);
  await store.putAgent(agent('a'));
  await store.putAgent(agent('b'));
  await store.deleteAgent('a');
  const e = execution('e1', 'b');
  await store.saveExecution(e, true);
  e.status = 'running';
  e.attempts = 1;
  e.runner_id = 'r';
  await store.saveExecution(e, true);
  store.appendOutput(e, 'Hello, ');
  store.appendOutput(e, 'world');
  e.status = 'succeeded';
  await store.saveExecution(e, false);
  return store;
}

function expectState(store: Store): void {
  assert.deepEqual([...store.agents.keys()], ['b']);
  const e = store.executions.get('e1');
  assert.equal(e?.status, 'succeeded');
  assert.equal(e?.output, 'Hello, world');
  assert.equal(e?.attempts, 1);
}

/** Reopen as if after a crash: the old store's lock belongs to this (live) process, so it is taken over. */
function reopen(dir: string): { store: Store; report: ReturnType<typeof Store.open>['report'] } {
  return Store.open(dir);
}

test(
  'replays the log after a crash and starts again from a fresh snapshot',
  withDir(async (dir) => {
    await writeState(dir); // never closed: like kill -9
    const wal = readFileSync(join(dir, 'wal.jsonl'), 'utf8').split('\n').filter(Boolean);
    assert.equal(wal.length, 8);
    assert.match(wal[0]!, /^[0-9a-f]{8} \{"t":"agent","agent":\{"name":"a"/);
    const { store, report } = reopen(dir);
    assert.deepEqual(report, { agents: 1, executions: 1, replayed: 8, droppedBytes: 0 });
    expectState(store);
    assert.equal(statSync(join(dir, 'wal.jsonl')).size, 0, 'compacted at open');
    await store.close();
    const again = reopen(dir);
    assert.equal(again.report.replayed, 0);
    expectState(again.store);
    await again.store.close();
  }),
);

test(
  'a torn last record (cut short, bad checksum, or zeros) is dropped; everything before it is kept',
  withDir(async (dir) => {
    for (const tail of ['0badc0de {"s":99,"t":"agent","agent":{"name":"x', '00000000 {"s":99,"t":"agent-delete","name":"b"}\n', '\0\0\0\0\0\0']) {
      await writeState(dir);
      appendFileSync(join(dir, 'wal.jsonl'), tail);
      const { store, report } = reopen(dir);
      assert.equal(report.droppedBytes, Buffer.byteLength(tail), JSON.stringify(tail));
      expectState(store);
      await store.close();
      rmSync(join(dir, 'snapshot.json'));
    }
  }),
);

test(
  'a damaged line followed by intact ones is refused, not silently dropped',
  withDir(async (dir) => {
    await writeState(dir);
    const file = join(dir, 'wal.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"agent-delete"', '"agent-dElete"');
    writeFileSync(file, lines.join('\n'));
    assert.throws(
      () => reopen(dir),
      (e: unknown) =>
        e instanceof StoreCorruptError &&
        e.message === `${file}: line 3 is damaged but later lines are intact, so this is not a torn write; restore the file from a backup or move it away to start empty`,
    );
  }),
);

test(
  'records already in the snapshot are skipped if the log truncation after a snapshot was lost',
  withDir(async (dir) => {
    const store = await writeState(dir);
    const wal = readFileSync(join(dir, 'wal.jsonl'));
    await store.close(); // snapshot + empty log
    writeFileSync(join(dir, 'wal.jsonl'), wal); // as if the truncation never reached the disk
    const { store: s2, report } = reopen(dir);
    assert.equal(report.replayed, 0);
    expectState(s2); // chunks not appended twice
    await s2.close();
  }),
);

test(
  'the log is compacted into a snapshot once it grows past the threshold',
  withDir(async (dir) => {
    const { store } = Store.open(dir, { compactBytes: 4096 });
    for (let i = 0; i < 100; i++) await store.putAgent(agent(`agent-${i}`, 'x'.repeat(100)));
    await sleep(20);
    assert.ok(statSync(join(dir, 'wal.jsonl')).size < 4096 + 300, 'the log was cut back');
    assert.ok(existsSync(join(dir, 'snapshot.json')));
    // Simulate a crash: reopen without close.
    const { store: s2 } = reopen(dir);
    assert.equal(s2.agents.size, 100);
    await s2.close();
    void store;
  }),
);

test(
  'commits that arrive together share an fsync and all resolve',
  withDir(async (dir) => {
    const { store } = Store.open(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.putAgent(agent(`c-${i}`))));
    assert.equal(store.agents.size, 200);
    await store.close();
    const { store: s2 } = reopen(dir);
    assert.equal(s2.agents.size, 200);
    await s2.close();
  }),
);
