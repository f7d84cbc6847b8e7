/**
 * 4. Cold start: spawn -> exit of `stigmer --version` and `stigmer validate` on the stack file
 * (the repo's stigmer.tasks.yaml when there is one, else the benchmark's seven-task stack), with
 * bare `node -e 0` as the floor. The commands take turns, so a busy moment hits all of them alike.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, finishHome, note, repoRoot, runToEnd, stats, tempHome } from './lib.js';
import type { Row, Suite, SuiteResult } from './report.js';
import { writeStigmerStack } from './stack.js';

export const coldStart: Suite = {
  name: 'cold-start',
  title: 'spawn -> exit of `stigmer --version` and `stigmer validate` (node -e 0 as the floor)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 5 : 15;
    const home = tempHome('stigmer-bench-');
    try {
      const repoStack = join(repoRoot, 'stigmer.tasks.yaml');
      const stackFile = existsSync(repoStack) ? repoStack : writeStigmerStack(home, { temporal: 17233, server: 17234, runner: 17235 });
      const commands: { label: string; args: string[]; goal?: number }[] = [
        { label: 'node -e 0 (the floor)', args: ['-e', '0'] },
        { label: 'stigmer --version', args: [cliPath, '--version'], goal: 120 },
        { label: `stigmer validate (${stackFile === repoStack ? 'the repo stack file' : 'the 7-task bench stack'})`, args: [cliPath, 'validate', '-f', stackFile], goal: 120 },
      ];
      note(`cold start: ${runs} runs of each of ${commands.length} commands`);
      // One unmeasured round warms the page cache.
      for (const c of commands) await runToEnd(process.execPath, c.args, { cwd: home, home });
      const samples = commands.map(() => [] as number[]);
      for (let i = 0; i < runs; i++) {
        for (const [j, c] of commands.entries()) samples[j]!.push((await runToEnd(process.execPath, c.args, { cwd: home, home })).ms);
      }
      const rows: Row[] = commands.map((c, j) => ({ bench: '4 cold start', metric: c.label, unit: 'ms', stats: stats(samples[j]!), ...(c.goal ? { goal: { max: c.goal } } : {}) }));
      return { name: 'cold-start', rows, details: { stackFile: stackFile === repoStack ? 'stigmer.tasks.yaml' : 'bench stack (generated)' } };
    } finally {
      await finishHome(home);
    }
  },
};
