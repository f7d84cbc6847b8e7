/**
 * The terminal view, through a pseudo-terminal (util-linux `script`): listr2 on a real TTY, the
 * plain renderer when the terminal reports a width of 0 or CI is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, cleanupHome, cliEnv, cliPath, tempHome } from './helpers.js';
import { startScreen } from './tmux.js';
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

test('on a terminal after a failure: the reason in full, a cancelled task unlike the failed one, no stale waiting titles', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  // `breaks` fails only once `slow` runs, so `slow` is cancelled mid-run, never skipped.
  const script = 'while [ ! -f slow.started ]; do sleep 0.05; done; echo a reason long enough to need some lines >&2; exit 3';
  writeFileSync(
    join(home, 'stigmer.tasks.yaml'),
    [
      'version: 1',
      'tasks:',
      '  quick:',
      '    uses: exec',
      '    with: { command: "true" }',
      '  slow:',
      '    uses: exec',
      '    needs: [quick]',
      '    with: { command: sh, args: ["-c", "touch slow.started; exec sleep 60"] }',
      '  breaks:',
      '    uses: exec',
      `    with: { command: sh, args: ["-c", "${script}"] }`,
      '  after:',
      '    uses: exec',
      '    needs: [breaks]',
      '    with: { command: "true" }',
      '',
    ].join('\n'),
  );
  const screen = await startScreen(['up'], { home, env: { NO_COLOR: '1' }, cols: 60, rows: 40 });
  t.after(() => screen.close());
  assert.equal(await screen.exitCode(), 1, await screen.text());
  const text = await screen.text();
  const view = text.slice(0, text.indexOf('stigmer: breaks failed'));
  assert.ok(view.length > 0, text);
  assert.match(view, /^✔ quick \(\d/m);
  assert.match(view, /^✖ breaks \(\d[^)]*\)$/m);
  // the failure line under it is wrapped, never cut: all of it is on the screen
  const flat = view.slice(view.indexOf('✖ breaks')).replace(/\s+/g, ' ');
  assert.ok(flat.includes(`› sh -c '${script}' exited with code 3`), view);
  assert.doesNotMatch(view, /…/, 'nothing in the view is cut');
  assert.match(view, /^◼ slow: cancelled after \d[^(]*\(breaks failed\)$/m, 'a cancelled task has its own mark and says so');
  assert.doesNotMatch(view, /✖ slow/);
  assert.match(view, /^↓ after: skipped, needs breaks, which failed$/m);
  assert.doesNotMatch(view, /waiting for/, 'no task still says what it waited for');
  assert.equal(view.match(/✖/g)?.length, 1, 'one failure, one ✖');
  await screen.close();
  await assertNothingLeft(home);
});
