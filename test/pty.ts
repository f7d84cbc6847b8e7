/** Running the built CLI in a pseudo-terminal (util-linux `script`), for tests of what a terminal shows. */
import { spawn } from 'node:child_process';
import { cliEnv, cliPath } from './helpers.js';

/** Run the CLI inside a pty of the given size; returns everything the terminal showed. */
export function inPty(args: string[], home: string, opts: { cols: number; env?: Record<string, string | undefined>; input?: { when: RegExp; send: string } }): Promise<{ code: number | null; screen: string }> {
  const cmd = `stty cols ${opts.cols} rows 40; exec ${[process.execPath, cliPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: home, env: cliEnv(home, { CI: undefined, ...opts.env }), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let sent = false;
    const onData = (d: Buffer): void => {
      screen += d.toString();
      if (opts.input && !sent && opts.input.when.test(screen)) {
        sent = true;
        child.stdin.write(opts.input.send);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

/** The screen without ANSI escape sequences. */
export const strip = (s: string): string => s.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
