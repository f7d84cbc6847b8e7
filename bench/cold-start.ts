/**
 * 4. Cold start: spawn -> exit of each command a script or an editor runs often, measured
 * interleaved with bare `node -e 0` (node's own start is the floor): each round runs the floor
 * and every command once, in a rotating order, so a busy moment hits all of them alike. The rows
 * are per-pair ratios (command / the floor of the same round), with the absolute times beside.
 *
 *   --version, validate and graph on the stack file, status and down on an empty data dir
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, finishHome, note, repoRoot, runToEnd, stats, tempHome } from './lib.js';
import type { Row, Suite, SuiteResult } from './report.js';
import { writeStigmerStack } from './stack.js';

interface Command {
  label: string;
  args: string[];
  /** goal for the ratio to `node -e 0` (issue 13) */
  goal?: number;
  /** its exit code when all goes as expected (status of a stack that is not running: 3, LSB) */
  exitCode?: number;
}

export const coldStart: Suite = {
  name: 'cold-start',
  title: 'spawn -> exit of --version, validate, graph, status and down (empty), each as a ratio to node -e 0 in the same round',
  async run({ quick }): Promise<SuiteResult> {
    const rounds = quick ? 5 : 15;
    const home = tempHome('stigmer-bench-');
    try {
      const repoStack = join(repoRoot, 'stigmer.tasks.yaml');
      const stackFile = existsSync(repoStack) ? repoStack : writeStigmerStack(home, { temporal: 17233, server: 17234, runner: 17235 });
      const empty = join(home, 'empty-data-dir');
      mkdirSync(empty, { recursive: true });
      const floor: Command = { label: 'node -e 0 (the floor)', args: ['-e', '0'] };
      const commands: Command[] = [
        { label: 'stigmer --version', args: [cliPath, '--version'], goal: 1.25 },
        { label: 'stigmer validate', args: [cliPath, 'validate', '-f', stackFile], goal: 1.5 },
        { label: 'stigmer graph', args: [cliPath, 'graph', '-f', stackFile], goal: 1.5 },
        { label: 'stigmer status (empty)', args: [cliPath, 'status', '-f', stackFile, '--data-dir', empty], goal: 1.5, exitCode: 3 },
        { label: 'stigmer down (empty)', args: [cliPath, 'down', '--data-dir', empty], goal: 1.5 },
      ];
      const all = [floor, ...commands];
      note(`cold start: ${rounds} rounds of ${all.length} commands, interleaved, rotating the order`);
      // One unmeasured round warms the page cache.
      for (const c of all) await runToEnd(process.execPath, c.args, { cwd: home, home, ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }) });
      const ms = all.map(() => [] as number[]);
      for (let i = 0; i < rounds; i++) {
        for (let k = 0; k < all.length; k++) {
          const j = (i + k) % all.length;
          const c = all[j]!;
          ms[j]!.push((await runToEnd(process.execPath, c.args, { cwd: home, home, ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }) })).ms);
        }
      }
      const base = ms[0]!;
      const rows: Row[] = [{ bench: '4 cold start', metric: floor.label, unit: 'ms', stats: stats(base) }];
      for (const [n, c] of commands.entries()) {
        const own = ms[n + 1]!;
        rows.push({ bench: '4 cold start', metric: `${c.label} / node -e 0`, unit: 'x', stats: stats(own.map((v, i) => v / base[i]!), 2), ...(c.goal ? { goal: { max: c.goal } } : {}) });
        rows.push({ bench: '4 cold start', metric: `${c.label} (absolute)`, unit: 'ms', stats: stats(own) });
      }
      return { name: 'cold-start', rows, details: { rounds, stackFile: stackFile === repoStack ? 'stigmer.tasks.yaml' : 'bench stack (generated)' } };
    } finally {
      await finishHome(home);
    }
  },
};
