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
import { inPty, strip } from './pty.js';


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
