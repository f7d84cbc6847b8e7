/**
 * Benchmarks of the reference stigmer-server and agent-runner (issue 4), on the fake providers:
 *
 *   latency     `stigmer agent run` first token vs the same prompt sent to the provider directly,
 *               both seen from outside (spawn -> first stdout byte), and the in-process view
 *               (execution created -> provider called -> first chunk at an SSE client)
 *   throughput  200 executions against a provider with a fixed 100 ms answer, with 1, 4 and 16
 *               runner slots, against the ideal 100 ms x 200 / slots
 *   store       10,000 executions created and completed through the runner API: store size on
 *               disk, server memory (VmRSS), and the time a restart takes to load them
 *
 *   node dist/bench/agent.js [latency|throughput|store ...] [--quick] [--no-save]
 *
 * Prints a table of medians and writes bench/agent-results.json. `benchAgent()` returns the rows
 * (the same shape as bench/report.ts's Row), and `agentSuite` has the shape of its Suite, so
 * `npm run bench` can include them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { assertNothingLeft, cliEnv, cliPath, fixture, freePort, repoRoot, sleep, tempHome } from '../test/helpers.js';
import { StigmerClient } from '../src/stack/client/index.js';
import type { FakeLlm } from '../test/fixtures/fake-llm.mjs';

// ---- results ---------------------------------------------------------------------------------

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** One line of the table (the shape of bench/report.ts's Row). */
export interface Row {
  bench: string;
  metric: string;
  unit: 'ms' | 'MB' | 'x';
  stats: Stats;
  goal?: { max: number };
}

export interface AgentBenchOptions {
  /** fewer runs, for a smoke check */
  quick?: boolean;
  /** which parts to run (default all) */
  parts?: Part[];
}

export type Part = 'latency' | 'throughput' | 'store';
const PARTS: Part[] = ['latency', 'throughput', 'store'];

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

function stats(values: number[], digits = 1): Stats {
  if (values.length === 0) throw new Error('Internal error: no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const r = (v: number): number => round(v, digits);
  return { median: r(median), min: r(sorted[0]!), max: r(sorted[sorted.length - 1]!), runs: values.map(r) };
}

/** Epoch ms with sub-ms resolution (comparable across processes of this machine). */
const now = (): number => performance.timeOrigin + performance.now();
const note = (text: string): void => void process.stderr.write(`${text}\n`);

// ---- processes ---------------------------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** The built CLI, detached in its own process group, with STIGMER_HOME=home in its environment. */
function startCli(args: string[], home: string, env: Record<string, string | undefined>): Proc {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, output: () => out, exited };
}

async function waitForOutput(p: Proc, text: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!p.output().includes(text)) {
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`expected "${text}" from ${p.child.spawnargs.join(' ')}, got:\n${p.output()}`);
    await sleep(5);
  }
}

/** SIGTERM to the group, then SIGKILL after a grace period. */
async function stopProc(p: Proc, graceMs = 10_000): Promise<void> {
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-p.child.pid!, sig);
    } catch {
      // gone
    }
  };
  if (p.child.exitCode === null && p.child.signalCode === null) kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: round(kb('VmRSS') / 1024), hwm: round(kb('VmHWM') / 1024) };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

/**
 * A server, an agent-runner and a stand-in for Temporal (the reference runner only checks that
 * Temporal accepts connections), all under one temp STIGMER_HOME.
 */
interface Rig {
  home: string;
  address: string;
  client: StigmerClient;
  server: Proc;
  runner?: Proc | undefined;
  startRunner(env?: Record<string, string | undefined>): Promise<void>;
  stopRunner(): Promise<void>;
  restartServer(): Promise<number>;
  close(): Promise<void>;
}

async function startRig(fake: FakeLlm | undefined, serverEnv: Record<string, string | undefined> = {}): Promise<Rig> {
  const home = tempHome('stigmer-bench-agent-');
  // The runner checks Temporal over gRPC (Health/Check, DescribeNamespace) before it says ready:
  // the test rig's gRPC frontend, serving at once. (A bare TCP listener was never SERVING: the
  // runner waited its 30 s and the bench then hung closing the ~500 connections it never read.)
  const { startFrontend } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof import('../test/fixtures/temporal-frontend.mjs');
  const temporal = await startFrontend({ host: '127.0.0.1' });
  const temporalAddress = temporal.address;
  const address = `127.0.0.1:${await freePort()}`;
  const env = { STIGMER_SERVER_ADDRESS: address, STIGMER_DATA_DIR: join(home, 'data'), ...serverEnv };
  const launch = async (): Promise<Proc> => {
    const p = startCli(['internal', 'server'], home, env);
    await waitForOutput(p, `stigmer-server listening on ${address}`);
    return p;
  };
  const rig: Rig = {
    home,
    address,
    client: new StigmerClient(address, { keepAlive: true }),
    server: await launch(),
    async startRunner(extra = {}) {
      if (!fake) throw new Error('Internal error: no provider for the runner');
      rig.runner = startCli(['internal', 'agent-runner'], home, {
        MODE: 'local',
        STIGMER_BACKEND_ENDPOINT: address,
        TEMPORAL_SERVICE_ADDRESS: temporalAddress,
        STIGMER_LLM_PROVIDER: 'ollama',
        STIGMER_LLM_MODEL: 'qwen2.5-coder:7b',
        STIGMER_LLM_BASE_URL: fake.baseUrl('ollama'),
        ANTHROPIC_API_KEY: undefined,
        OPENAI_API_KEY: undefined,
        ...extra,
      });
      await waitForOutput(rig.runner, 'agent-runner ready');
    },
    async stopRunner() {
      if (rig.runner) await stopProc(rig.runner);
      rig.runner = undefined;
    },
    async restartServer() {
      await stopProc(rig.server);
      const t0 = now();
      rig.server = await launch();
      return now() - t0;
    },
    async close() {
      rig.client.close();
      await rig.stopRunner();
      await stopProc(rig.server);
      await temporal.close();
      await assertNothingLeft(home, 5000);
      const { rmSync } = await import('node:fs');
      rmSync(home, { recursive: true, force: true });
    },
  };
  return rig;
}

async function loadFake(): Promise<typeof import('../test/fixtures/fake-llm.mjs')> {
  return (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('../test/fixtures/fake-llm.mjs');
}

/**
 * Stamp every request the fake receives with a sub-ms time. The fake records requests by pushing
 * onto `fake.requests`; with no chunk delay it writes the first chunk right after that push.
 */
function stampRequests(fake: FakeLlm): number[] {
  const stamps: number[] = [];
  const requests = fake.requests;
  requests.push = (...items) => {
    stamps.push(now());
    return Array.prototype.push.apply(requests, items);
  };
  return stamps;
}

// ---- latency -------------------------------------------------------------------------------------

/** A node process that sends one streaming chat request with node:http and prints the first chunk. */
const DIRECT_CLIENT = `
import http from 'node:http';
const [url, body] = process.argv.slice(1);
const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
  res.once('data', (d) => process.stdout.write(d));
  res.resume();
});
req.end(body);
`;

/** Spawn a command; ms from spawn to its first stdout byte (it must then exit 0). */
function firstByte(args: string[], home: string, env: Record<string, string | undefined>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, args, { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let first: number | undefined;
    let err = '';
    child.stdout.once('data', () => (first = now() - t0));
    child.stdout.resume();
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      if (code === 0 && first !== undefined) resolve(first);
      else reject(new Error(`${args.join(' ')} exited with ${code}: ${err}`));
    });
  });
}

async function latency(runs: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const { startFakeLlm } = await loadFake();
  const fake = await startFakeLlm({ chunks: ['Hello', ', ', 'world', '!'] });
  const rig = await startRig(fake);
  const prompt = 'Say hello.';
  const instructions = 'Answer in one short sentence.';
  const chatBody = JSON.stringify({ model: 'qwen2.5-coder:7b', stream: true, messages: [{ role: 'system', content: instructions }, { role: 'user', content: prompt }] });
  try {
    await rig.startRunner();
    await rig.client.putAgent('bench', { instructions });
    const env = { STIGMER_SERVER_ADDRESS: rig.address };
    // the zero-config way: no variable, the endpoint comes from config.yaml through the cascade
    writeFileSync(join(rig.home, 'config.yaml'), `backend:\n  type: local\n  local:\n    endpoint: ${rig.address}\n`);
    const configEnv = { STIGMER_SERVER_ADDRESS: undefined };
    const directInProcess: number[] = [];
    const directSpawned: number[] = [];
    const cli: number[] = [];
    const added: number[] = [];
    const viaConfig: number[] = [];
    const addedViaConfig: number[] = [];
    const version: number[] = [];
    const beyondStartup: number[] = [];
    const dispatch: number[] = [];
    const forward: number[] = [];
    const inProcess: number[] = [];

    // warm-up: the runner's LLM connection pool, the page cache for the CLI's modules
    for (let i = 0; i < 3; i++) {
      await firstByte([cliPath, 'agent', 'run', 'bench', '--message', prompt], rig.home, env);
      await firstByte([cliPath, 'agent', 'run', 'bench', '--message', prompt], rig.home, configEnv);
      await firstByte(['--input-type=module', '-e', DIRECT_CLIENT, `${fake.url}/api/chat`, chatBody], rig.home, {});
    }
    const stamps = stampRequests(fake);
    for (let i = 0; i < runs; i++) {
      // the provider alone, from this process: request start -> first chunk
      directInProcess.push(
        await new Promise<number>((resolve, reject) => {
          const t0 = now();
          const req = http.request(`${fake.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
            res.once('data', () => resolve(now() - t0));
            res.resume();
          });
          req.on('error', reject);
          req.end(chatBody);
        }),
      );
      // seen from outside, the same way: spawn -> first stdout byte
      const d = await firstByte(['--input-type=module', '-e', DIRECT_CLIENT, `${fake.url}/api/chat`, chatBody], rig.home, {});
      const c = await firstByte([cliPath, 'agent', 'run', 'bench', '--message', prompt], rig.home, env);
      // the CLI's own start-up, for the share of the added time that is loading stigmer itself
      const v = await firstByte([cliPath, '--version'], rig.home, env);
      const k = await firstByte([cliPath, 'agent', 'run', 'bench', '--message', prompt], rig.home, configEnv);
      viaConfig.push(k);
      addedViaConfig.push(k - d);
      directSpawned.push(d);
      cli.push(c);
      added.push(c - d);
      version.push(v);
      beyondStartup.push(c - v);

      // in process: create -> the runner calls the provider -> the first chunk reaches an SSE client
      const before = stamps.length;
      const t0 = now();
      const exec = await rig.client.createExecution('bench', prompt);
      let firstChunk: number | undefined;
      for await (const ev of rig.client.events(exec.id)) {
        if (ev.type === 'chunk' && firstChunk === undefined) firstChunk = now();
      }
      const called = stamps[before];
      if (firstChunk === undefined || called === undefined) throw new Error('Internal error: the execution produced no chunk');
      dispatch.push(called - t0);
      forward.push(firstChunk - called);
      inProcess.push(firstChunk - t0);
    }
    const rows: Row[] = [
      { bench: 'latency', metric: 'provider direct, in process: request -> first chunk', unit: 'ms', stats: stats(directInProcess) },
      { bench: 'latency', metric: 'provider direct, spawned node: spawn -> first byte', unit: 'ms', stats: stats(directSpawned) },
      { bench: 'latency', metric: 'agent run, STIGMER_SERVER_ADDRESS: -> first byte', unit: 'ms', stats: stats(cli) },
      { bench: 'latency', metric: '  added (pairwise, spawned)', unit: 'ms', stats: stats(added), goal: { max: 30 } },
      { bench: 'latency', metric: 'agent run, endpoint from config.yaml: -> first byte', unit: 'ms', stats: stats(viaConfig) },
      { bench: 'latency', metric: '  added (pairwise, spawned)', unit: 'ms', stats: stats(addedViaConfig), goal: { max: 30 } },
      { bench: 'latency', metric: 'stigmer --version: spawn -> first byte', unit: 'ms', stats: stats(version) },
      { bench: 'latency', metric: 'agent run minus --version (pairwise)', unit: 'ms', stats: stats(beyondStartup) },
      { bench: 'latency', metric: 'in process: create -> provider called', unit: 'ms', stats: stats(dispatch) },
      { bench: 'latency', metric: 'in process: provider -> SSE chunk at client', unit: 'ms', stats: stats(forward) },
      { bench: 'latency', metric: 'in process: create -> first SSE chunk', unit: 'ms', stats: stats(inProcess), goal: { max: 30 } },
    ];
    return { rows, details: { runs, provider: 'ollama (fake, no delay)', prompt } };
  } finally {
    await rig.close();
    await fake.close();
  }
}

// ---- throughput ------------------------------------------------------------------------------------

async function throughput(runs: number, count: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const { startFakeLlm } = await loadFake();
  const answerMs = 100;
  // a fixed 100 ms answer: the provider waits, then sends it whole
  const fake = await startFakeLlm({ chunks: ['done'], headerDelayMs: answerMs });
  const rig = await startRig(fake);
  const rows: Row[] = [];
  const details: Record<string, unknown> = { executions: count, answer_ms: answerMs };
  try {
    await rig.client.putAgent('bench', { instructions: 'Answer.' });
    for (const slots of [1, 4, 16]) {
      await rig.startRunner({ STIGMER_RUNNER_SLOTS: String(slots) });
      const totals: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t0 = now();
        const ids = new Set<string>();
        // created as fast as the server takes them, a few at a time
        const creators = Array.from({ length: 8 }, async (_, w) => {
          for (let i = w; i < count; i += 8) ids.add((await rig.client.createExecution('bench', `task ${i}`)).id);
        });
        await Promise.all(creators);
        for (;;) {
          const done = await rig.client.listExecutions({ status: 'succeeded', limit: count });
          if (done.filter((e) => ids.has(e.id)).length === count) break;
          const failed = await rig.client.listExecutions({ status: 'failed', limit: 10 });
          if (failed.some((e) => ids.has(e.id))) throw new Error(`an execution failed: ${JSON.stringify(failed[0])}`);
          await sleep(10);
        }
        totals.push(now() - t0);
        note(`  throughput: ${count} executions, ${slots} slot(s): ${Math.round(totals.at(-1)!)} ms`);
      }
      await rig.stopRunner();
      const ideal = (answerMs * count) / slots;
      const s = stats(totals);
      rows.push({ bench: 'throughput', metric: `${count} executions, ${slots} slot${slots === 1 ? '' : 's'} (ideal ${ideal} ms)`, unit: 'ms', stats: s });
      rows.push({ bench: 'throughput', metric: `  vs ideal, ${slots} slot${slots === 1 ? '' : 's'}`, unit: 'x', stats: stats(totals.map((t) => t / ideal), 3) });
      details[`slots_${slots}`] = { ideal_ms: ideal, total_ms: s.runs };
    }
    return { rows, details };
  } finally {
    await rig.close();
    await fake.close();
  }
}

// ---- store ------------------------------------------------------------------------------------------

async function store(count: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const rig = await startRig(undefined);
  const storeDir = join(rig.home, 'data', 'server');
  try {
    await rig.client.putAgent('bench', { instructions: 'Answer in one short sentence.' });
    const idle = rssMb(rig.server.child.pid!);
    // A typical short answer, in a few chunks, as a runner would send it.
    const answer = ['The answer ', 'is 42, as computed ', 'from the question you asked. ', 'Anything else?'];
    const workers = 32;
    let next = 0;
    const t0 = now();
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        const runner = `bench-runner-${w}`;
        while (next < count) {
          next++;
          await rig.client.createExecution('bench', `Question number ${next}: what is the answer?`);
          const claim = await rig.client.claim(runner, 5000);
          if (!claim) throw new Error('Internal error: nothing to claim');
          for (const text of answer) await rig.client.appendChunk(claim.execution.id, runner, text);
          await rig.client.complete(claim.execution.id, runner);
        }
      }),
    );
    const elapsed = now() - t0;
    const loaded = rssMb(rig.server.child.pid!);
    const walBytes = dirBytes(storeDir);
    note(`  store: ${count} executions in ${Math.round(elapsed)} ms; RSS ${loaded.rss} MB; store ${round(walBytes / 2 ** 20, 2)} MB`);
    // A clean stop writes a snapshot and empties the log; a start loads it.
    const restartMs = await rig.restartServer();
    const compacted = dirBytes(storeDir);
    const reloaded = rssMb(rig.server.child.pid!);
    const check = await rig.client.listExecutions({ status: 'succeeded', limit: 1 });
    if (check.length !== 1) throw new Error('Internal error: the executions did not survive the restart');
    const one = (v: number): Stats => stats([v], 2);
    const rows: Row[] = [
      { bench: 'store', metric: `${count} executions: create + claim + 4 chunks + complete`, unit: 'ms', stats: one(elapsed) },
      { bench: 'store', metric: 'store on disk (log + snapshot), before restart', unit: 'MB', stats: one(walBytes / 2 ** 20) },
      { bench: 'store', metric: 'store on disk after a clean restart (snapshot)', unit: 'MB', stats: one(compacted / 2 ** 20) },
      { bench: 'store', metric: 'server VmRSS, empty store', unit: 'MB', stats: one(idle.rss) },
      { bench: 'store', metric: `server VmRSS after ${count} executions`, unit: 'MB', stats: one(loaded.rss) },
      { bench: 'store', metric: `server VmHWM (peak) during the ${count}`, unit: 'MB', stats: one(loaded.hwm) },
      { bench: 'store', metric: `server restart with ${count} executions: -> listening`, unit: 'ms', stats: one(restartMs) },
      { bench: 'store', metric: 'server VmRSS after that restart', unit: 'MB', stats: one(reloaded.rss) },
    ];
    return {
      rows,
      details: { executions: count, workers, store_bytes: walBytes, snapshot_bytes: compacted, rss_mb: { idle, loaded, reloaded }, per_execution_ms: round(elapsed / count, 3) },
    };
  } finally {
    await rig.close();
  }
}

// ---- entry -------------------------------------------------------------------------------------------

export interface AgentBenchResult {
  rows: Row[];
  details: Record<string, unknown>;
}

/** Run the parts asked for (default all), one after another; the rows of the table. */
export async function benchAgent(opts: AgentBenchOptions = {}): Promise<AgentBenchResult> {
  const parts = opts.parts ?? PARTS;
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  for (const part of parts) {
    const t0 = now();
    note(`== agent ${part}`);
    const r =
      part === 'latency' ? await latency(opts.quick ? 5 : 40) : part === 'throughput' ? await throughput(opts.quick ? 1 : 3, 200) : await store(opts.quick ? 2000 : 10_000);
    rows.push(...r.rows);
    details[part] = r.details;
    note(`== agent ${part} took ${((now() - t0) / 1000).toFixed(1)} s`);
  }
  return { rows, details };
}

/** The shape of bench/report.ts's Suite, so `npm run bench` can list it beside the engine's. */
export const agentSuite = {
  name: 'agent',
  title: 'reference server + agent-runner: added latency, throughput by slots, store size and memory',
  async run(opts: { quick: boolean }): Promise<{ name: string; rows: Row[]; details: Record<string, unknown> }> {
    const r = await benchAgent({ quick: opts.quick });
    return { name: 'agent', rows: r.rows, details: r.details };
  },
};

function fmt(n: number, unit: Row['unit']): string {
  if (unit === 'MB') return `${n.toFixed(2)} MB`;
  if (unit === 'x') return `${n.toFixed(2)}x`;
  return `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ms`;
}

export function formatRows(rows: Row[]): string {
  const header = ['benchmark', 'metric', 'median', 'min .. max', 'runs', 'goal'];
  const body = rows.map((r) => [
    r.bench,
    r.metric,
    fmt(r.stats.median, r.unit),
    r.stats.runs.length > 1 ? `${fmt(r.stats.min, r.unit)} .. ${fmt(r.stats.max, r.unit)}` : '',
    String(r.stats.runs.length),
    r.goal ? `<= ${fmt(r.goal.max, r.unit)} ${r.stats.median <= r.goal.max ? 'ok' : 'MISSED'}` : '',
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('-')));
  const names = argv.filter((a) => !a.startsWith('-'));
  const bad = [...flags].filter((f) => f !== '--quick' && f !== '--no-save');
  const unknown = names.filter((n) => !(PARTS as string[]).includes(n));
  if (bad.length || unknown.length) {
    process.stderr.write(`bench/agent: unknown ${[...bad, ...unknown].join(', ')}\nusage: node dist/bench/agent.js [${PARTS.join('|')} ...] [--quick] [--no-save]\n`);
    return 2;
  }
  const parts = names.length ? PARTS.filter((p) => names.includes(p)) : PARTS;
  const result = await benchAgent({ parts, quick: flags.has('--quick') });
  const table = formatRows(result.rows);
  process.stdout.write(`${table}\n`);
  if (!flags.has('--no-save')) {
    const file = join(repoRoot, 'bench', 'agent-results.json');
    const machine = { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', loadavg: loadavg().map((l) => round(l, 2)) };
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, quick: flags.has('--quick'), table: table.split('\n'), rows: result.rows, details: result.details }, null, 2)}\n`);
    note(`wrote ${file}`);
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`bench/agent: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
