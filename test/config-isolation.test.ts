/**
 * The generic commands read the stigmer config only for a tasks file that references
 * `${{ config.* }}`: a broken ~/.stigmer/config.yaml cannot make `up`, `down`, `run`, `graph`,
 * `validate`, `status` or `logs` fail on any other file. Where the config is needed, its problem
 * is reported once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, repoRoot, runCli, tempHome } from './helpers.js';

const BROKEN = {
  'invalid YAML': 'backend:\n  local: [\n',
  'a wrong value': 'backend:\n  local:\n    temporal:\n      port: nope\n',
};

const GENERIC = [
  'version: 1',
  'tasks:',
  '  hello:',
  '    uses: exec',
  '    with: { command: sh, args: ["-c", "echo hello ${{ env.WHO }}"] }',
  '  after:',
  '    uses: exec',
  '    needs: [hello]',
  '    with: { command: echo, args: ["${{ tasks.hello.outputs.stdout }}"] }',
  '',
].join('\n');

for (const [what, text] of Object.entries(BROKEN)) {
  test(`a config.yaml with ${what} does not touch the generic commands on a file without config.*`, async (t) => {
    const home = tempHome();
    t.after(() => cleanupHome(home));
    writeFileSync(join(home, 'config.yaml'), text);
    const file = join(home, 'any.tasks.yaml');
    writeFileSync(file, GENERIC);
    const env = { WHO: 'world' };
    const cli = (...args: string[]): ReturnType<typeof runCli> => runCli(args, { home, env });

    const checks: [string[], RegExp][] = [
      [['validate', '-f', file], /: ok \(2 tasks\)\n$/],
      [['graph', '-f', file], /hello/],
      [['up', '-f', file, '--output', 'plain'], /after: done/],
      [['run', 'after', '-f', file, '--output', 'plain'], /after: done/],
      [['status', '-f', file], /hello/],
      [['logs', 'hello', '--file', file], /hello world/],
      [['down', '-f', file], /.*/],
    ];
    for (const [args, out] of checks) {
      const r = await cli(...args);
      assert.equal(r.code, 0, `stigmer ${args[0]}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stdout, out, `stigmer ${args[0]}`);
      assert.doesNotMatch(r.stderr, /config\.yaml/, `stigmer ${args[0]} mentions the config`);
    }
  });
}

test('a file that reads config.* gets the broken config reported once, with its position', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const config = join(home, 'config.yaml');
  writeFileSync(config, BROKEN['a wrong value']);
  const file = join(home, 'uses-config.tasks.yaml');
  writeFileSync(file, 'version: 1\ntasks:\n  a:\n    uses: exec\n    with: { command: echo, args: ["${{ config.backend.local.endpoint }}"] }\n');
  for (const f of [file, join(repoRoot, 'stigmer.tasks.yaml')]) {
    for (const command of ['validate', 'up']) {
      const r = await runCli([command, '-f', f], { home });
      assert.equal(r.code, 2, `${command} ${f}: ${r.stderr}`);
      const at = `${config}:4:13: Expected backend.local.temporal.port to be an integer from 1 to 65535, got "nope"`;
      assert.equal(r.stderr.split(at).length - 1, 1, `${command} ${f}: reported once:\n${r.stderr}`);
      assert.equal(r.stdout, '');
    }
  }
});
