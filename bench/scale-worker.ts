/**
 * One scale measurement in a fresh process (so peak memory is this run's alone):
 *
 *   node dist/bench/scale-worker.js <tasks> <seed>
 *
 * Builds a random DAG of in-process no-op tasks (each needs up to three earlier tasks), runs it
 * through `runGraph` with the plain renderer writing to a null stream, and prints one JSON line:
 * { tasks, edges, buildMs, runMs, peakRssMB, peakHeapMB, baseRssMB }.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runGraph } from '../src/engine/run.js';
import { buildGraph } from '../src/engine/graph.js';
import type { TasksFile } from '../src/engine/load.js';
import type { TaskSpec } from '../src/model/task.js';
import { createPlainRenderer } from '../src/render/plain.js';
import { StateStore } from '../src/engine/state.js';
import type { TaskKind } from '../src/model/kind.js';
import { kindRegistry } from '../src/model/kind.js';
import { mulberry32 } from '../test/helpers.js';

const KIND = 'bench-noop';

/** In-process and instant: what is left to measure is the engine. */
const noop: TaskKind = { name: KIND, mode: 'oneshot', pure: true, run: async () => ({ outputs: {} }) };


function randomDag(n: number, seed: number): { file: TasksFile; edges: number } {
  const rnd = mulberry32(seed); // the same kind of graph for every run and size
  const tasks = new Map<string, TaskSpec>();
  let edges = 0;
  for (let i = 0; i < n; i++) {
    const needs = new Set<string>();
    const k = i === 0 ? 0 : Math.floor(rnd() * 4);
    for (let j = 0; j < k; j++) needs.add(`t${Math.floor(rnd() * i)}`);
    edges += needs.size;
    tasks.set(`t${i}`, { name: `t${i}`, uses: KIND, needs: [...needs], with: {}, optional: false, env: {} });
  }
  return { file: { path: '/bench/random.tasks.yaml', displayPath: 'random.tasks.yaml', dir: tmpdir(), tasks, usesConfig: false }, edges };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? '10000');
  const seed = Number(process.argv[3] ?? '1');
  const dataDir = mkdtempSync(join(tmpdir(), 'stigmer-bench-scale-'));
  try {
    const base = process.memoryUsage();
    let peakHeap = base.heapUsed;
    let peakRss = base.rss;
    const sample = (): void => {
      const m = process.memoryUsage();
      if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
      if (m.rss > peakRss) peakRss = m.rss;
    };
    // Sparse: process.memoryUsage() is not free, and this measures the engine (peak RSS is maxRSS below).
    const sampler = setInterval(sample, 25);

    const t0 = performance.now();
    const { file, edges } = randomDag(n, seed);
    const graph = buildGraph(file);
    const buildMs = performance.now() - t0;

    const out = new Writable({ write: (_chunk, _enc, cb) => cb() });
    const renderer = createPlainRenderer(out);
    let events = 0;
    const t1 = performance.now();
    const outcome = await runGraph({
      graph,
      kinds: kindRegistry({ [KIND]: async () => ({ default: noop }) }),
      baseDir: file.dir,
      dataDir,
      state: new StateStore(join(dataDir, 'state.json')),
      config: {},
      env: {},
      signal: new AbortController().signal,
      canPrompt: false,
      emit: (ev) => {
        if ((++events & 4095) === 0) sample();
        renderer.event(ev);
      },
    });
    await renderer.end();
    const runMs = performance.now() - t1;
    clearInterval(sampler);
    sample();
    const done = [...outcome.status.values()].filter((s) => s === 'done').length;
    if (!outcome.ok || done !== n) throw new Error(`expected ${n} tasks done, got ${done} (failed: ${outcome.failed.join(', ')})`);
    const maxRss = process.resourceUsage().maxRSS * 1024; // kB -> bytes
    const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
    process.stdout.write(
      JSON.stringify({ tasks: n, edges, events, buildMs, runMs, peakRssMB: mb(Math.max(peakRss, maxRss)), peakHeapMB: mb(peakHeap), baseRssMB: mb(base.rss), baseHeapMB: mb(base.heapUsed) }) + '\n',
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`scale-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
