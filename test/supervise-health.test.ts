/**
 * Liveness checks (src/supervisor/health.ts): `with.health` parsing, each probe kind failing and
 * passing, a hung service caught by its timeout; and in `up --foreground`, a hung service that
 * ignores SIGTERM is found unhealthy, stopped (SIGKILL after its grace) and restarted, while one
 * with policy no is only marked unhealthy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkOnce, DEFAULT_HEALTH, parseHealth, startHealth, type HealthResult } from '../src/supervisor/health.js';
import { readEvents } from '../src/supervisor/events.js';
import { isAlive, readProcStat } from '../src/process/proc.js';
import { cleanupHome, cliEnv, cliPath, fixture, freePort, sleep, tempHome } from './helpers.js';
import type * as FrontendModule from './fixtures/temporal-frontend.mjs';

const { startFrontend, WORKFLOW_SERVICE } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof FrontendModule;
const node = process.execPath;
const where = { cwd: tmpdir(), env: process.env };

test('with.health: defaults 5s / 2s / 3; one of tcp, http, exec, grpc; a log pattern is refused', () => {
  const h = parseHealth({ tcp: { port: 80 } }, where);
  assert.equal(h.probe.kind, 'tcp');
  assert.deepEqual([h.intervalMs, h.timeoutMs, h.failures], [DEFAULT_HEALTH.intervalMs, DEFAULT_HEALTH.timeoutMs, DEFAULT_HEALTH.failures]);
  assert.deepEqual([5000, 2000, 3], [DEFAULT_HEALTH.intervalMs, DEFAULT_HEALTH.timeoutMs, DEFAULT_HEALTH.failures]);
  const g = parseHealth({ grpc: { address: '127.0.0.1:7233' }, interval: '100ms', timeout: '50ms', failures: '2' }, where);
  assert.deepEqual([g.probe.kind, g.intervalMs, g.timeoutMs, g.failures], ['grpc', 100, 50, 2]);
  assert.throws(() => parseHealth({ log: 'ready' }, where), /with\.health\.log: a log pattern is a readiness probe only/);
  assert.throws(() => parseHealth({ tcp: { port: 1 }, http: { url: 'http://x/' } }, where), /exactly one of tcp, http, exec or grpc, got tcp and http/);
  assert.throws(() => parseHealth({ interval: '1s' }, where), /exactly one of tcp, http, exec or grpc/);
  assert.throws(() => parseHealth({ tcp: { port: 1 }, retries: 3 }, where), /with\.health\.retries is not a health setting/);
  assert.throws(() => parseHealth({ tcp: { port: 1 }, failures: 0 }, where), /with\.health\.failures to be a whole number \(1 or more\)/);
  assert.throws(() => parseHealth({ http: { url: 'not a url' } }, where), /with\.health\.http\.url to be a URL/);
  assert.throws(() => parseHealth({ tcp: { port: 1 }, interval: 'often' }, where), /with\.health\.interval to be a duration/);
});

/** Run a loop until unhealthy (bounded); the results it reported. */
async function untilUnhealthy(raw: Record<string, unknown>): Promise<{ results: HealthResult[]; unhealthy: HealthResult }> {
  const results: HealthResult[] = [];
  let loop: { stop(): void } | undefined;
  const unhealthy = await new Promise<HealthResult>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('never unhealthy')), 30_000);
    loop = startHealth(raw, where, {
      onResult: (r) => results.push(r),
      onUnhealthy: (r) => {
        clearTimeout(t);
        resolve(r);
      },
    });
  }).finally(() => loop?.stop());
  return { results, unhealthy };
}

test('a hung HTTP service (accepts, never answers) fails each check by its timeout; failures in a row make it unhealthy', async () => {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => held.push(res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  try {
    const { results, unhealthy } = await untilUnhealthy({ http: { url: `http://127.0.0.1:${port}/healthz` }, interval: '20ms', timeout: '100ms', failures: 3 });
    assert.deepEqual(results.map((r) => [r.ok, r.failures]), [[false, 1], [false, 2], [false, 3]]);
    assert.equal(unhealthy.failures, 3);
    assert.match(unhealthy.detail, /^no answer within 100 ms \(GET http:\/\/127\.0\.0\.1:\d+\/healthz answering 200\)$/);
    assert.deepEqual(results.map((r) => r.changed), [true, false, false]);
  } finally {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('tcp and exec checks: pass and fail', async () => {
  const closed = await freePort();
  assert.equal((await checkOnce(parseHealth({ tcp: { host: '127.0.0.1', port: closed }, timeout: '1s' }, where), new AbortController().signal)).ok, false);
  const ok = await checkOnce(parseHealth({ exec: { command: 'sh', args: ['-c', 'echo fine'] } }, where), new AbortController().signal);
  assert.deepEqual(ok, { ok: true, value: 'exit 0: fine' });
  const { unhealthy } = await untilUnhealthy({ exec: { command: 'sh', args: ['-c', 'echo broken; exit 4'] }, interval: '10ms', failures: 2 });
  assert.equal(unhealthy.detail, 'exit 4: broken');
  // a check that hangs is ended by its timeout (the command's group is stopped)
  const hung = await checkOnce(parseHealth({ exec: { command: 'sleep', args: ['30'] }, timeout: '100ms' }, where), new AbortController().signal);
  assert.equal(hung.ok, false);
  assert.match(hung.ok ? '' : hung.error, /^no answer within 100 ms/);
});

test('grpc: grpc.health.v1 SERVING passes; NOT_SERVING counts as failed, and is a change', async () => {
  const frontend = await startFrontend({ host: '127.0.0.1' });
  let loop: { stop(): void } | undefined;
  try {
    const results: HealthResult[] = [];
    let flippedAt = -1;
    const unhealthy = new Promise<HealthResult>((resolve, reject) => {
      setTimeout(() => reject(new Error('never unhealthy')), 30_000).unref();
      // The first check also loads @grpc/grpc-js and connects: on a loaded machine it may time out.
      // The frontend flips to NOT_SERVING once two checks in a row passed.
      loop = startHealth({ grpc: { address: frontend.address, service: WORKFLOW_SERVICE }, interval: '20ms', timeout: '5s', failures: 2 }, where, {
        onResult: (r) => {
          results.push(r);
          const n = results.length;
          if (flippedAt < 0 && n >= 2 && results[n - 1]!.ok && results[n - 2]!.ok) {
            flippedAt = n;
            frontend.setServing(false);
          }
        },
        onUnhealthy: resolve,
      });
    });
    const r = await unhealthy;
    assert.match(r.detail, /NOT_SERVING/);
    const oks = results.map((x) => x.ok);
    assert.ok(flippedAt >= 2, `SERVING passed twice in a row: ${oks.join()}`);
    assert.deepEqual(oks.slice(-2), [false, false]);
    assert.equal(results.slice(flippedAt).find((x) => !x.ok)!.changed, true);
  } finally {
    loop?.stop();
    await frontend.close();
  }
});

test('up --foreground: a hung service ignoring SIGTERM is unhealthy, killed after its grace and restarted; with policy no it is only marked', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const home = tempHome();
  const data = join(home, 'data');
  mkdirSync(data, { recursive: true });
  const marker = join(home, 'hung-once');
  const task = (name: string, port: number, args: string[], extra: string[]): string =>
    [
      `  ${name}:`,
      `    uses: process`,
      `    with:`,
      `      command: ${node}`,
      `      args: [${[fixture('service.mjs'), '--http', '--listen', String(port), ...args].map((a) => JSON.stringify(a)).join(', ')}]`,
      `      ports: [${port}]`,
      `      ready: { http: { url: "http://127.0.0.1:${port}/healthz" }, timeout: 20s }`,
      `      health: { http: { url: "http://127.0.0.1:${port}/healthz" }, interval: 50ms, timeout: 200ms, failures: 2 }`,
      `      stop: { signal: SIGTERM, grace: 300ms }`,
      ...extra.map((l) => `      ${l}`),
    ].join('\n');
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(
    file,
    ['version: 1', 'tasks:', task('hung', p1, ['--hang-after', '300', '--hang-once', marker], ['restart: { policy: on-failure, backoff: 50ms }']), task('marked', p2, ['--hang-after', '300'], []), ''].join('\n'),
  );
  const child = spawn(node, [cliPath, 'up', '--foreground', '-f', file, '--data-dir', data], { cwd: home, env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const evs = (t: string): string => readEvents(data).filter((e) => e.task === t).map((e) => e.type).join(' ');
  const state = (): Record<string, { service?: string; health?: { ok: boolean; failures: number; detail?: string }; undo: { pid: number; startTime: number; pgid: number }[] }> => {
    try {
      return JSON.parse(readFileSync(join(data, 'state.json'), 'utf8')).tasks;
    } catch {
      return {};
    }
  };
  try {
    const end = Date.now() + 60_000;
    while (!(evs('hung') === 'unhealthy restarting started ready' && evs('marked') === 'unhealthy') && Date.now() < end && child.exitCode === null) await sleep(25);
    assert.equal(evs('hung'), 'unhealthy restarting started ready', err);
    assert.equal(evs('marked'), 'unhealthy');
    const all = readEvents(data);
    const restarting = all.find((e) => e.task === 'hung' && e.type === 'restarting')!;
    assert.match(restarting.detail!, /^unhealthy: no answer within 200 ms/);
    assert.equal(restarting.attempt, 1);
    assert.equal(restarting.delay_ms, 50);
    // the hung instance (it ignored SIGTERM) is gone: SIGKILL after its grace
    const first = Number(readFileSync(marker, 'utf8'));
    assert.ok(!existsSync(`/proc/${first}`) || readProcStat(first) === undefined, `the hung pid ${first} is gone`);
    const s = state();
    assert.notEqual(s['hung']!.undo[0]!.pid, first, 'a new instance is recorded');
    assert.ok(isAlive(s['hung']!.undo[0]!));
    // policy no: marked unhealthy, left running
    assert.equal(s['marked']!.service, 'unhealthy');
    assert.equal(s['marked']!.health?.ok, false);
    assert.equal(s['marked']!.health?.failures, 2);
    assert.ok(isAlive(s['marked']!.undo[0]!), 'not restarted, not stopped');
    const log = readFileSync(join(data, 'logs', 'hung.log'), 'utf8');
    assert.match(log, / --- unhealthy after 2 failed liveness checks: no answer within 200 ms/);
    assert.match(log, / --- restarted after failed liveness checks \(1\/5\)\n/);
    assert.match(readFileSync(join(data, 'logs', 'marked.log'), 'utf8'), / --- not restarted \(restart policy no\); it stays unhealthy\n/);
  } finally {
    if (child.exitCode === null) child.kill('SIGINT');
    assert.equal(await exit, 130, err);
    await cleanupHome(home);
    rmSync(marker, { force: true });
  }
});
