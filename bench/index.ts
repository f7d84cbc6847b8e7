/**
 * `npm run bench`: runs the benchmarks one after another (never in parallel: they measure time),
 * prints a table of medians, and writes bench/results.json.
 *
 *   node dist/bench/index.js [suite...] [--quick] [--no-save]
 *
 * Suites: overhead, readiness, scale, cold-start, compare (the engine, issue 2), local-stack (the
 * stack, issue 3), agent (server and agent-runner, issue 4), log-capture (issue 9), diagnostics (a
 * broken tasks file's errors, issue 8), whole (what a user pays as whole processes against the
 * physical limit: stack up/down, exec tasks, port open -> dependent runs, issue 13), supervisor
 * (crash -> ready again, a hung service noticed, log throughput through the supervisor, issue 9),
 * ollama-download (installing the Ollama release vs curl | sha256sum + zstd -d | tar x, issue 11);
 * default: all, in that order.
 * `--quick` takes fewer runs (for a smoke check); `--no-save` leaves bench/results.json alone.
 * A full run of every suite (no names, no --quick) also rewrites README.md's results table;
 * `--except=a,b` leaves suites out of it (the table says which).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { note, repoRoot, runIfMain } from './lib.js';
import { formatTable, passes, type Suite, type SuiteResult } from './report.js';
import { readmeBlock, replaceBlock } from './readme-table.js';
import { overhead } from './overhead.js';
import { readiness } from './readiness.js';
import { scale } from './scale.js';
import { coldStart } from './cold-start.js';
import { compare } from './compare.js';
import { localStack } from './local-stack.js';
import { agentSuite } from './agent.js';
import { logCapture } from './log-capture.js';
import { diagnostics } from './diagnostics.js';
import { whole } from './whole.js';
import { supervisor } from './supervisor.js';
import { ollamaDownload } from './ollama-download.js';

const SUITES: Suite[] = [overhead, readiness, scale, coldStart, compare, localStack, agentSuite, logCapture, diagnostics, whole, supervisor, ollamaDownload];

interface SavedSuite extends SuiteResult {
  date: string;
  machine: { node: string; platform: string; cpus: number; cpu: string; loadavg: number[] };
}

/** Replace the suites just run in bench/results.json, keeping the others' last results. */
function saveResults(file: string, results: SuiteResult[]): void {
  let saved: SavedSuite[] = [];
  try {
    saved = (JSON.parse(readFileSync(file, 'utf8')) as { suites: SavedSuite[] }).suites ?? [];
  } catch {
    // none yet
  }
  const machine = { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
  const date = new Date().toISOString();
  for (const r of results) {
    const entry: SavedSuite = { ...r, date, machine };
    const i = saved.findIndex((x) => x.name === r.name);
    if (i >= 0) saved[i] = entry;
    else saved.push(entry);
  }
  saved.sort((a, b) => SUITES.findIndex((x) => x.name === a.name) - SUITES.findIndex((x) => x.name === b.name));
  writeFileSync(file, JSON.stringify({ table: formatTable(saved).split('\n'), suites: saved }, null, 2) + '\n');
}

function usage(): string {
  return `usage: node dist/bench/index.js [${SUITES.map((s) => s.name).join('|')}...] [--except=suite,...] [--quick] [--no-save]\n${SUITES.map((s) => `  ${s.name.padEnd(11)} ${s.title}`).join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const except = argv.filter((a) => a.startsWith('--except=')).flatMap((a) => a.slice('--except='.length).split(','));
  const flags = new Set(argv.filter((a) => a.startsWith('-') && !a.startsWith('--except=')));
  const names = argv.filter((a) => !a.startsWith('-'));
  for (const f of flags) {
    if (f === '--help' || f === '-h') {
      process.stdout.write(usage());
      return 0;
    }
    if (f !== '--quick' && f !== '--no-save') {
      process.stderr.write(`bench: unknown option ${f}\n${usage()}`);
      return 2;
    }
  }
  const unknown = [...names, ...except].filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}\n${usage()}`);
    return 2;
  }
  const selected = (names.length ? SUITES.filter((s) => names.includes(s.name)) : SUITES).filter((s) => !except.includes(s.name));
  const quick = flags.has('--quick');
  const results: SuiteResult[] = [];
  const began = performance.now();
  for (const suite of selected) {
    const t0 = performance.now();
    note(`== ${suite.name}: ${suite.title}`);
    results.push(await suite.run({ quick }));
    note(`== ${suite.name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const table = formatTable(results);
  process.stdout.write(`\n${table}\n`);
  const missed = results.flatMap((r) => r.rows).filter((row) => passes(row) === false);
  process.stdout.write(missed.length ? `\n${missed.length} goal(s) missed.\n` : '\nAll goals met.\n');
  note(`benchmarks took ${((performance.now() - began) / 1000).toFixed(1)} s`);

  if (!flags.has('--no-save') && !quick) {
    const file = join(repoRoot, 'bench', 'results.json');
    note(`results written to ${file}`);
    saveResults(file, results);
    // The README shows one run's figures: only a run of every suite rewrites its table.
    if (names.length === 0) {
      const readme = join(repoRoot, 'README.md');
      const text = replaceBlock(readFileSync(readme, 'utf8'), readmeBlock(results, { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100), skipped: except }));
      if (text === undefined) note('README.md has no bench:results markers: its table is left alone');
      else {
        writeFileSync(readme, text);
        note(`README table written from this run`);
      }
    }
  }
  return 0;
}

runIfMain(import.meta.url, async (argv) => {
  const code = await main(argv);
  // A bench must end: whatever is still open 5 s after the last suite (a server a suite forgot to
  // close, a socket nobody reads) is named and the process exits instead of hanging. The timer
  // itself keeps nothing alive.
  setTimeout(() => {
    // (resources, not only handles: a pending fs or DNS request keeps node alive too, and named none)
    const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    note(`bench: still open after the last suite, exiting anyway: ${open.join(', ') || 'a timer'}`);
    process.exit(code || 1);
  }, 5000).unref();
  return code;
});
