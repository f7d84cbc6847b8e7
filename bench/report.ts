/**
 * The results: rows of the printed table, and the JSON written to bench/results.json.
 */
import type { Stats } from './lib.js';

export interface Row {
  /** the benchmark, e.g. "1 overhead" */
  bench: string;
  metric: string;
  unit: 'ms' | 'us' | 'MB' | 'x';
  stats: Stats;
  /** the goal the median is held to, if any (`min`: at least, e.g. a throughput ratio) */
  goal?: { max: number } | { min: number } | { lowest: true };
  /** for `lowest` goals: whether this row won */
  pass?: boolean;
}

export interface SuiteResult {
  name: string;
  rows: Row[];
  /** everything else worth keeping (raw samples, parameters) */
  details: Record<string, unknown>;
}

export interface Suite {
  name: string;
  /** what it measures, one line */
  title: string;
  run(opts: SuiteOptions): Promise<SuiteResult>;
}

export interface SuiteOptions {
  /** scale the number of runs (1 = the default; `--quick` uses fewer) */
  quick: boolean;
}

export function passes(row: Row): boolean | undefined {
  if (!row.goal) return undefined;
  if ('max' in row.goal) return row.stats.median <= row.goal.max;
  if ('min' in row.goal) return row.stats.median >= row.goal.min;
  return row.pass;
}

function fmt(n: number, unit: Row['unit']): string {
  if (unit === 'MB') return `${n.toFixed(1)} MB`;
  if (unit === 'x') return `${n.toFixed(2)}x`;
  if (unit === 'us') return `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} us`;
  return `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ms`;
}

/** A plain-text table (no colours: it ends up in CI logs and notes). */
export function formatTable(results: SuiteResult[]): string {
  const header = ['benchmark', 'metric', 'median', 'min .. max', 'runs', 'goal', ''];
  const body: string[][] = [];
  for (const r of results) {
    for (const row of r.rows) {
      const ok = passes(row);
      body.push([
        row.bench,
        row.metric,
        fmt(row.stats.median, row.unit),
        `${fmt(row.stats.min, row.unit)} .. ${fmt(row.stats.max, row.unit)}`,
        String(row.stats.runs.length),
        !row.goal ? '' : 'max' in row.goal ? `<= ${fmt(row.goal.max, row.unit)}` : 'min' in row.goal ? `>= ${fmt(row.goal.min, row.unit)}` : 'lowest',
        ok === undefined ? '' : ok ? 'ok' : 'MISSED',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 2 || i === 3 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
