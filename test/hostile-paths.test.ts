/**
 * Paths that can never be a data dir, and help for a command that does not exist: one line that
 * says so, exit 2, never a stack trace and never a hang (a STIGMER_HOME under /proc used to spin
 * at 100% CPU in mkdir).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, runCli, tempHome } from './helpers.js';

const OK_FILE = 'version: 1\ntasks:\n  a: { uses: exec, with: { command: "true" } }\n';

function assertNoTrace(r: { stdout: string; stderr: string }): void {
  assert.doesNotMatch(r.stdout + r.stderr, /internal error|\n\s+at |EEXIST/);
}

test('a file as --data-dir: exit 2 with one line, for up, run and down', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  writeFileSync(join(home, 't.yaml'), OK_FILE);
  const file = join(home, 'not-a-dir');
  writeFileSync(file, 'x');
  for (const args of [['up', '-f', 't.yaml'], ['run', 'a', '-f', 't.yaml']]) {
    const r = await runCli([...args, '--data-dir', file], { home, timeout: 20_000 });
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stderr, `stigmer: cannot use ${file} as the data dir: it is a file, not a directory\n`);
    assertNoTrace(r);
  }
  const under = await runCli(['up', '-f', 't.yaml', '--data-dir', join(file, 'sub')], { home, timeout: 20_000 });
  assert.equal(under.code, 2);
  assert.equal(under.stderr, `stigmer: cannot use ${join(file, 'sub')} as the data dir: ${file}: it is a file, not a directory\n`);
  const down = await runCli(['down', '--data-dir', file], { home, timeout: 20_000 });
  assert.ok(down.code === 0 || down.code === 2, down.stderr);
  assertNoTrace(down);
});

test('a STIGMER_HOME under /proc fails fast: init, local start and up', { skip: !existsSync('/proc/self/stat') }, async (t) => {
  const scratch = tempHome();
  t.after(() => cleanupHome(scratch));
  writeFileSync(join(scratch, 't.yaml'), OK_FILE);
  const home = `/proc/stigmer-test-${process.pid}`;
  for (const args of [['init', '--no-download'], ['local', 'start', '--no-input'], ['up', '-f', 't.yaml']]) {
    const r = await runCli(args, { home, cwd: scratch, timeout: 20_000 });
    assert.equal(r.signal, null, `${args.join(' ')} hung and was killed`);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    // `up` names the project's data dir under the home first
    assert.match(r.stderr, new RegExp(`^(stigmer: this stack keeps .*\\n)?stigmer: cannot use ${home}\\S* as the (STIGMER_HOME|data dir): (${home}: )?the file system does not allow creating it \\(ENOENT\\)\\n$`), args.join(' '));
    assertNoTrace(r);
  }
  // /proc itself exists, but nothing can be made in it
  const r = await runCli(['up', '-f', 't.yaml', '--data-dir', '/proc'], { home: '/proc', cwd: scratch, timeout: 20_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, 'stigmer: cannot use /proc/logs as the log dir: the file system does not allow creating it (ENOENT)\n');
});

test('help for an unknown command says so, exit 2, at any level', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const nope = await runCli(['help', 'nope'], { home });
  assert.equal(nope.code, 2);
  assert.equal(nope.stdout, '');
  assert.equal(nope.stderr, "error: unknown command 'nope'\n(run with --help for usage)\n");
  const typo = await runCli(['help', 'locl'], { home });
  assert.equal(typo.stderr, "error: unknown command 'locl' (Did you mean local?)\n(run with --help for usage)\n");
  const nested = await runCli(['local', 'help', 'strat'], { home });
  assert.equal(nested.code, 2);
  assert.equal(nested.stderr, "error: unknown command 'strat' (Did you mean start?)\n(run with --help for usage)\n");
  // known topics still print their help
  const local = await runCli(['help', 'local'], { home });
  assert.equal(local.code, 0, local.stderr);
  assert.match(local.stdout, /^Usage: stigmer local /);
  const start = await runCli(['local', 'help', 'start'], { home });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /^Usage: stigmer local start /);
});
