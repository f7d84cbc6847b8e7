/**
 * `stigmer validate` and `stigmer graph` have a light path (src/commands/engine-light.ts, bundled
 * as a file of its own) for the spellings it parses; every other spelling goes through commander.
 * Both must say the same thing: each case runs once in a light spelling (`-f X`) and once in one
 * only commander takes (`--file=X`), and their output and exit code must be equal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLight } from '../src/commands/engine-light.js';
import { cleanupHome, repoRoot, runCli, tempHome, type CliResult } from './helpers.js';

const stackFile = join(repoRoot, 'stigmer.tasks.yaml');

test('the light path takes -f/--file, --data-dir and (graph) --format, each once with a value; anything else is commander\'s', () => {
  assert.deepEqual(parseLight(['validate']), { command: 'validate', opts: { file: './stigmer.tasks.yaml', format: 'text' } });
  assert.deepEqual(parseLight(['validate', '-f', 'a.yaml']), { command: 'validate', opts: { file: 'a.yaml', format: 'text' } });
  assert.deepEqual(parseLight(['graph', '--file', 'a.yaml', '--format', 'json', '--data-dir', 'd']), { command: 'graph', opts: { file: 'a.yaml', dataDir: 'd', format: 'json' } });
  for (const args of [
    ['validate', '--file=a.yaml'],
    ['validate', '-f'],
    ['validate', '-f', '-x'],
    ['validate', '-f', 'a', '-f', 'b'],
    ['validate', '--help'],
    ['validate', '-f', 'a', '--help'],
    ['validate', '--format', 'json'],
    ['graph', '--format', 'svg'],
    ['graph', 'extra'],
    ['graph', '-h'],
    ['status'],
  ]) {
    assert.equal(parseLight(args), undefined, args.join(' '));
  }
});

test('validate and graph: the light path and commander say the same (output, errors, exit codes)', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const bad = join(home, 'bad.tasks.yaml');
  writeFileSync(bad, 'version: 1\ntasks:\n  a:\n    uses: exec\n    needs: [b, c]\n    with: {command: "${{ tasks.nope.outputs.x }}"}\n  b:\n    uses: exce\n    timeout: soon\n');
  const broken = join(home, 'broken.tasks.yaml');
  writeFileSync(broken, 'version: 1\ntasks: [\n');
  const secret = 'sk-ant-light-path-0123456789';
  const env = { ANTHROPIC_API_KEY: secret };
  const cases: { args: (file: string[]) => string[]; file: string; code: number }[] = [
    { args: (f) => ['validate', ...f], file: stackFile, code: 0 },
    { args: (f) => ['graph', ...f], file: stackFile, code: 0 },
    { args: (f) => ['graph', ...f, '--format', 'mermaid'], file: stackFile, code: 0 },
    { args: (f) => ['graph', '--format', 'json', ...f], file: stackFile, code: 0 },
    { args: (f) => ['validate', ...f], file: bad, code: 2 },
    { args: (f) => ['graph', ...f], file: broken, code: 2 },
    { args: (f) => ['validate', ...f], file: join(home, `missing-${secret}.yaml`), code: 2 },
    { args: (f) => ['graph', ...f, '--data-dir', join(home, 'dd')], file: join(home, 'missing.yaml'), code: 2 },
  ];
  for (const c of cases) {
    const lightArgs = c.args(['-f', c.file]);
    const commanderArgs = c.args([`--file=${c.file}`]);
    assert.ok(parseLight(lightArgs), `${lightArgs.join(' ')} takes the light path`);
    assert.equal(parseLight(commanderArgs), undefined, `${commanderArgs.join(' ')} goes through commander`);
    const light: CliResult = await runCli(lightArgs, { home, env });
    const commander: CliResult = await runCli(commanderArgs, { home, env });
    assert.equal(light.code, c.code, `${lightArgs.join(' ')}: ${light.stderr}`);
    assert.deepEqual(light, commander, lightArgs.join(' '));
    assert.doesNotMatch(light.stderr, new RegExp(secret), 'a key in a message is masked');
    if (c.code !== 0) assert.ok(light.stderr.length > 0 && !/internal error|\n\s+at /.test(light.stderr), light.stderr);
  }
});
