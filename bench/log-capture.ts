/**
 * Log capture throughput (issue 9): a service printing numbered lines as fast as it can
 * (test/fixtures/print-fast.mjs, one write per line like console.log) through the capture module
 * (src/process/log-writer.ts, hosted by this process as the supervisor would) vs the same service
 * writing to /dev/null, interleaved. The service's own run time is what counts: capture must not
 * slow it down. A third variant, a pipe read and thrown away, shows what the pipe alone costs.
 *
 *   node dist/bench/log-capture.js [--quick]
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openLogWriter } from '../src/process/log-writer.js';
import { cliEnv, finishHome, fixture, note, round, runIfMain, stats, tempHome, type Stats } from './lib.js';
import { formatTable, type Suite, type SuiteResult } from './report.js';

const LINES = 200_000;

interface Run {
  /** the service's run time, spawn to exit */
  ms: number;
  /** CPU of this (the capturing) process over the run, flush included */
  cpuMs: number;
  dropped: number;
}

function args(batch: number): string[] {
  return [fixture('print-fast.mjs'), '--lines', String(LINES), '--batch', String(batch)];
}

async function toDevNull(home: string, batch: number): Promise<Run> {
  const fd = openSync('/dev/null', 'w');
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  try {
    const child = spawn(process.execPath, args(batch), { stdio: ['ignore', fd, fd], env: cliEnv(home) });
    await new Promise((r) => child.once('exit', r));
  } finally {
    closeSync(fd);
  }
  return { ms: performance.now() - t0, cpuMs: cpuMsSince(cpu), dropped: 0 };
}

async function toPipe(home: string, batch: number, capture: boolean, i: number): Promise<Run> {
  const writer = capture ? openLogWriter({ file: join(home, 'logs', `svc-${i}.log`) }) : undefined;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const child = spawn(process.execPath, args(batch), { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv(home) });
  const reading = writer
    ? Promise.all([writer.attach(child.stdout, 'out'), writer.attach(child.stderr, 'err')])
    : Promise.all([child.stdout, child.stderr].map((s) => new Promise((r) => s.on('data', () => {}).once('end', r))));
  await new Promise((r) => child.once('exit', r));
  const ms = performance.now() - t0;
  await reading;
  await writer?.close();
  return { ms, cpuMs: cpuMsSince(cpu), dropped: writer?.stats.dropped ?? 0 };
}

/** Stats of ratios to 3 decimals (stats() keeps one). */
function ratioStats(values: number[]): Stats {
  const s = stats(values.map((v) => v * 1000));
  const r = (n: number): number => round(n / 1000, 3);
  return { median: r(s.median), min: r(s.min), max: r(s.max), runs: s.runs.map(r) };
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function logBytes(home: string): number {
  const dir = join(home, 'logs');
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

async function variant(batch: number, runs: number): Promise<{ ratio: number[]; pipeRatio: number[]; cpuPer100k: number[]; dropped: number; rates: Record<string, number> }> {
  const home = tempHome('stigmer-bench-');
  const ratio: number[] = [];
  const pipeRatio: number[] = [];
  const cpuPer100k: number[] = [];
  const ms = { devnull: [] as number[], pipe: [] as number[], capture: [] as number[] };
  let dropped = 0;
  try {
    await toPipe(home, batch, true, -1); // warm-up: file cache, JIT
    for (let i = 0; i < runs; i++) {
      const order = i % 2 ? (['capture', 'devnull', 'pipe'] as const) : (['devnull', 'pipe', 'capture'] as const);
      const got: Partial<Record<(typeof order)[number], Run>> = {};
      for (const what of order) got[what] = what === 'devnull' ? await toDevNull(home, batch) : await toPipe(home, batch, what === 'capture', i);
      ratio.push(got.devnull!.ms / got.capture!.ms);
      pipeRatio.push(got.pipe!.ms / got.capture!.ms);
      cpuPer100k.push((got.capture!.cpuMs * 100_000) / LINES);
      dropped += got.capture!.dropped;
      for (const k of order) ms[k].push(got[k]!.ms);
    }
    note(`  batch ${batch}: ${round(logBytes(home) / 1e6)} MB of logs written`);
  } finally {
    await finishHome(home);
  }
  const rate = (xs: number[]): number => Math.round(LINES / (stats(xs).median / 1000));
  return { ratio, pipeRatio, cpuPer100k, dropped, rates: { devnull: rate(ms.devnull), pipe: rate(ms.pipe), capture: rate(ms.capture) } };
}

export const logCapture: Suite = {
  name: 'log-capture',
  title: 'log capture: a service printing as fast as it can, through the capture module vs to /dev/null',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 3 : 9;
    const rows: SuiteResult['rows'] = [];
    const details: Record<string, unknown> = { lines: LINES, runs };
    for (const [batch, label] of [
      [1, 'one write per line'],
      [100, '100 lines per write'],
    ] as const) {
      note(`log capture, ${label}`);
      const v = await variant(batch, runs);
      rows.push(
        { bench: '9 log capture', metric: `throughput vs /dev/null (${label})`, unit: 'x', stats: ratioStats(v.ratio), ...(batch === 1 ? { goal: { min: 0.8 } } : {}) },
        { bench: '9 log capture', metric: `throughput vs a bare pipe (${label})`, unit: 'x', stats: ratioStats(v.pipeRatio) },
        { bench: '9 log capture', metric: `capturing process CPU per 100k lines (${label})`, unit: 'ms', stats: stats(v.cpuPer100k) },
      );
      details[`batch_${batch}`] = { lines_per_s: v.rates, dropped_lines: v.dropped };
    }
    return { name: 'log-capture', rows, details };
  },
};

runIfMain(import.meta.url, async (argv) => {
  const r = await logCapture.run({ quick: argv.includes('--quick') });
  process.stdout.write(`${formatTable([r])}\n${JSON.stringify(r.details, null, 2)}\n`);
  return 0;
});
