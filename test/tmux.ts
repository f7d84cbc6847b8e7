/**
 * The built CLI in a real terminal: tmux runs it in a detached session of a given size, and
 * `capture-pane` reads the screen as a person sees it (after every redraw), which a raw pty log
 * cannot show. Each screen uses its own tmux server socket, killed by `close()`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from './helpers.js';

const run = promisify(execFile);
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Screen {
  /** the visible screen, trailing blank lines dropped */
  text(): Promise<string>;
  /** poll the screen until `re` matches it; returns that screen */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** tmux key names or literal text (`-l`) */
  keys(...keys: string[]): Promise<void>;
  type(text: string): Promise<void>;
  /** the CLI's exit code, once it has exited */
  exitCode(ms?: number): Promise<number>;
  close(): Promise<void>;
}

export async function startScreen(args: string[], o: { home: string; env: Record<string, string | undefined>; cols?: number; rows?: number }): Promise<Screen> {
  const socket = `stigmer-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const script = join(o.home, `${socket}.sh`);
  // as cliEnv (test/helpers.ts): managed Ollama is off unless the test turns it on, so nothing looks
  // for a release beyond loopback
  const exports = Object.entries({ STIGMER_OLLAMA_MANAGED: 'false', STIGMER_HOME: o.home, ...o.env })
    .map(([k, v]) => (v === undefined ? `unset ${k}` : `export ${k}=${quote(v)}`))
    .join('\n');
  writeFileSync(script, `${exports}\nunset CI\ncd ${quote(o.home)}\n${[process.execPath, cliPath, ...args].map(quote).join(' ')}\necho "[exit $?]"\nexec sleep 600\n`);
  const tmux = (...a: string[]) => run('tmux', ['-L', socket, ...a]);
  await tmux('new-session', '-d', '-s', 'cli', '-x', String(o.cols ?? 100), '-y', String(o.rows ?? 30), `sh ${quote(script)}`);
  const screen: Screen = {
    async text() {
      const { stdout } = await tmux('capture-pane', '-p', '-t', 'cli');
      return stdout.replace(/\s+$/, '');
    },
    async waitFor(re, ms = 15_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const t = await screen.text();
        if (re.test(t)) return t;
        if (Date.now() > deadline) throw new Error(`the screen never matched ${re}; it shows:\n${t}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async keys(...keys) {
      await tmux('send-keys', '-t', 'cli', ...keys);
    },
    async type(text) {
      await tmux('send-keys', '-t', 'cli', '-l', text);
    },
    async exitCode(ms = 30_000) {
      const m = /\[exit (\d+)\]/.exec(await screen.waitFor(/\[exit \d+\]/, ms));
      return Number(m![1]);
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
  return screen;
}
