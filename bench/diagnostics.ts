/**
 * Diagnostics of a broken tasks file: load (parse, schema, graph and reference checks) and
 * format files with 2,000 and 16,000 errors in-process, interleaved. The time per error must
 * stay flat as the errors grow (it grew 4x per doubling before: 8,000 errors took 43 s).
 */
import { parseTasks } from '../src/engine/load.js';
import { kinds } from '../src/commands/kinds.js';
import { note, round, stats } from './lib.js';
import type { Row, Suite, SuiteResult } from './report.js';

const SIZES = [2000, 16_000];

/** A tasks file with `n` errors of four kinds (unknown key, unknown need, bad reference, wrong type). */
export function brokenFile(n: number): string {
  const lines = ['version: 1', 'tasks:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  t${i}:`, '    uses: exec');
    switch (i % 4) {
      case 0:
        lines.push('    colour: red', '    with: { command: "true" }');
        break;
      case 1:
        lines.push(`    needs: [nope${i}]`, '    with: { command: "true" }');
        break;
      case 2:
        lines.push(`    with: { command: "\${{ tasks.zz${i}.outputs.x }}" }`);
        break;
      default:
        lines.push('    with: { command: 5 }');
    }
  }
  return `${lines.join('\n')}\n`;
}

async function timeLoad(source: string): Promise<number> {
  const t0 = performance.now();
  try {
    await parseTasks(source, '/bench/f.yaml', 'f.yaml', { kinds });
  } catch {
    // the point: every error found and formatted
  }
  return performance.now() - t0;
}

export const diagnostics: Suite = {
  name: 'diagnostics',
  title: 'a tasks file with 2,000 and 16,000 errors: load and format (linear, capped output)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 2 : 5;
    const files = new Map(SIZES.map((n) => [n, brokenFile(n)]));
    await timeLoad(files.get(SIZES[0]!)!); // warm up the validator and the JIT
    const samples = new Map<number, number[]>(SIZES.map((n) => [n, []]));
    for (let i = 0; i < runs; i++) {
      for (const n of SIZES) samples.get(n)!.push(await timeLoad(files.get(n)!));
      note(`diagnostics: run ${i + 1}/${runs}`);
    }
    const rows: Row[] = SIZES.map((n) => ({ bench: 'diagnostics', metric: `${n.toLocaleString('en-US')} errors: load + format`, unit: 'ms' as const, stats: stats(samples.get(n)!) }));
    const perError = (n: number): number => stats(samples.get(n)!).median / n;
    const growth = round(perError(SIZES[1]!) / perError(SIZES[0]!), 2);
    rows.push({ bench: 'diagnostics', metric: 'time per error, 16,000 vs 2,000 (1.00 = linear)', unit: 'x', stats: stats([growth]), goal: { max: 1.5 } });
    return { name: 'diagnostics', rows, details: { sizes: SIZES, samples: Object.fromEntries(samples), bytes: Object.fromEntries([...files].map(([n, f]) => [n, f.length])) } };
  },
};
