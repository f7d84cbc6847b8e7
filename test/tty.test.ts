/**
 * The terminal view, through a pseudo-terminal (util-linux `script`): listr2 on a real TTY, the
 * plain renderer when the terminal reports a width of 0 or CI is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, cliEnv, cliPath, tempHome } from './helpers.js';

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

const strip = (s: string): string => s.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

function graph(home: string): void {
  writeFileSync(
    join(home, 'stigmer.tasks.yaml'),
    [
      'version: 1',
      'tasks:',
      '  first:',
      '    uses: exec',
      '    with: { command: sh, args: ["-c", "echo warming up; sleep 0.6"] }',
      '  second:',
      '    uses: exec',
      '    needs: [first]',
      '    with: { command: sh, args: ["-c", "echo second says hi; sleep 0.4"] }',
      '',
    ].join('\n'),
  );
}

test('on a terminal, listr2 shows what pending tasks wait for, running tasks and a result per task', async () => {
  const home = tempHome();
  try {
    graph(home);
    const r = await inPty(['up'], home, { cols: 100 });
    assert.equal(r.code, 0, r.screen);
    const screen = strip(r.screen);
    assert.match(screen, /second \(waiting for first\)/);
    assert.match(screen, /warming up/); // the running task's last output line
    assert.match(screen, /✔ first \(\d/);
    assert.match(screen, /✔ second \(\d/);
    assert.ok(r.screen.includes('\u001b['), 'a live view uses cursor movement');
  } finally {
    await cleanupHome(home);
  }
});

test('a terminal reporting width 0, or CI set, gets plain lines without ANSI', async () => {
  const home = tempHome();
  try {
    graph(home);
    for (const [cols, env] of [
      [0, {}],
      [100, { CI: 'true' }],
    ] as const) {
      const r = await inPty(['up'], home, { cols, env });
      assert.equal(r.code, 0, r.screen);
      assert.doesNotMatch(r.screen, /\u001b\[/, 'no escape codes');
      assert.match(r.screen, /^\d\d:\d\d:\d\d\.\d{3} first: (started|done)/m);
      assert.match(r.screen, /second: done \(already done, reused\)|second: done/);
      await new Promise<void>((res) => spawn(process.execPath, [cliPath, 'down'], { cwd: home, env: cliEnv(home), stdio: 'ignore' }).on('close', () => res()));
    }
  } finally {
    await cleanupHome(home);
  }
});
