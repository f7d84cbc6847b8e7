/**
 * `stigmer doctor [--json]`: checks what a broken setup usually comes down to (Node, platform,
 * disk, config, ports, Temporal, the download location, the LLM, the stack) and advises; it
 * changes nothing. Exit 0 when no check failed, 1 otherwise.
 */
import type { Command } from 'commander';
import type { App } from '../model/app.js';
import { EXIT } from '../util/errors.js';

export function register(program: Command, app: App): void {
  program
    .command('doctor')
    .description('check the setup (Node, disk, config, ports, Temporal, LLM, the stack) and say what to fix; changes nothing')
    .option('--json', 'print JSON: { ok, checks: [{ name, status, message, advice }] }')
    .addHelpText('after', '\nExit status: 0 when no check failed, 1 otherwise.\nExample:\n  stigmer doctor')
    .action(async (o: { json?: boolean }) => {
      const { runDoctor, formatDoctor } = await import('../stack/doctor.js');
      const { mask } = await import('../util/mask.js');
      const report = await runDoctor();
      process.stdout.write(mask(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report)));
      app.exitCode = report.ok ? EXIT.ok : EXIT.taskFailed;
    });
}
