/**
 * 3. Scale: random DAGs of in-process no-op tasks through `runGraph` with the plain renderer
 * writing to a null stream, each run in a fresh process (bench/scale-worker.ts) so its peak
 * memory is its own. Sizes 1,000 / 10,000 / 50,000: time per task (build graph + run) and peak
 * RSS, with issue 13's goals at 50,000 (<= 60 us a task, <= 200 MB).
 */
import { join } from 'node:path';
import { note, repoRoot, runToEnd, stats, tempHome, finishHome, round } from './lib.js';
import type { Row, Suite, SuiteResult } from './report.js';

const SIZES = [1000, 10_000, 50_000];
const LARGEST = 50_000;

interface WorkerResult {
  tasks: number;
  edges: number;
  events: number;
  buildMs: number;
  runMs: number;
  peakRssMB: number;
  peakHeapMB: number;
  baseRssMB: number;
  baseHeapMB: number;
}

async function measure(tasks: number, seed: number, home: string): Promise<WorkerResult> {
  const worker = join(repoRoot, 'dist', 'bench', 'scale-worker.js');
  const r = await runToEnd(process.execPath, [worker, String(tasks), String(seed)], { cwd: home, home, timeoutMs: 600_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as WorkerResult;
}

export const scale: Suite = {
  name: 'scale',
  title: 'random DAGs of 1,000 / 10,000 / 50,000 in-process no-op tasks through runGraph (plain renderer)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 1 : 3;
    const home = tempHome('stigmer-bench-');
    const bySize = new Map<number, WorkerResult[]>();
    try {
      for (const size of SIZES) {
        note(`scale: ${size} tasks, ${runs} run(s)`);
        const rs: WorkerResult[] = [];
        for (let i = 0; i < runs; i++) rs.push(await measure(size, i + 1, home));
        bySize.set(size, rs);
      }
    } finally {
      await finishHome(home);
    }
    const rows: Row[] = [];
    for (const [size, rs] of bySize) {
      const label = size.toLocaleString('en-US');
      const goal = size === LARGEST;
      rows.push({ bench: '3 scale', metric: `${label} tasks: build graph + run, per task`, unit: 'us', stats: stats(rs.map((r) => ((r.buildMs + r.runMs) * 1000) / size)), ...(goal ? { goal: { max: 60 } } : {}) });
      rows.push({ bench: '3 scale', metric: `${label} tasks: peak RSS`, unit: 'MB', stats: stats(rs.map((r) => r.peakRssMB)), ...(goal ? { goal: { max: 200 } } : {}) });
      rows.push({ bench: '3 scale', metric: `${label} tasks: peak heap used`, unit: 'MB', stats: stats(rs.map((r) => r.peakHeapMB)) });
    }
    // Linear growth: time per task should stay flat as the graph grows.
    const perTask = (size: number): number => stats(bySize.get(size)!.map((r) => r.buildMs + r.runMs)).median / size;
    const growth = round(perTask(LARGEST) / perTask(1000), 2);
    rows.push({ bench: '3 scale', metric: 'time per task, 50,000 vs 1,000 (1.00 = linear)', unit: 'x', stats: stats([growth]) });
    return { name: 'scale', rows, details: { sizes: Object.fromEntries([...bySize].map(([k, v]) => [k, v])) } };
  },
};
