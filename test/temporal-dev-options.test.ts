/**
 * The managed dev server: start-dev options from the config reach `temporal server start-dev`
 * (and the stand-in accepts them as the real CLI does), bad ones are schema errors, and the SQLite
 * file of another CLI minor version is kept as a backup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import resolveConfig from '../tasks/resolve-config.js';
import { loadConfig } from '../src/stack/config/index.js';
import { makeContext } from './kind-context.js';
import { cleanupHome, runCli, tempHome } from './helpers.js';
import { stackRig } from './temporal-mirror.js';

const OPTIONS = `backend:
  local:
    temporal:
      namespaces: [team-a, team-b]
      namespace: team-a
      search_attributes: { CustomerId: Keyword, Amount: double }
      dynamic_config: { frontend.enableUpdateWorkflowExecution: true, limit.maxIDLength: 1000 }
      headless: true
      log_level: info
      extra_args: [--sqlite-pragma, journal_mode=wal]
`;

test('start-dev options from the config are passed through; the runner gets the chosen namespace', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  writeFileSync(join(r.home, 'config.yaml'), OPTIONS);
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const argv = r.temporalStarts()[0]!.argv;
  assert.deepEqual(argv, [
    'server', 'start-dev', '--ip', '127.0.0.1', '--port', String(r.ports.temporal), '--headless',
    '--db-filename', join(r.home, 'data', 'temporal.db'),
    '--namespace', 'default', '--namespace', 'team-a', '--namespace', 'team-b',
    '--search-attribute', 'CustomerId=Keyword', '--search-attribute', 'Amount=double',
    '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true', '--dynamic-config-value', 'limit.maxIDLength=1000',
    '--log-level', 'info', '--sqlite-pragma', 'journal_mode=wal',
  ]);
  assert.equal(r.records('agent-runner')[0]!.env['TEMPORAL_NAMESPACE'], 'team-a');
  assert.doesNotMatch(start.stdout, /Temporal UI:/, 'headless: no UI');
});

test('a bad start-dev option is a schema error naming its line', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  writeFileSync(join(home, 'config.yaml'), 'backend:\n  local:\n    temporal:\n      search_attributes: { CustomerId: Keywrd }\n      log_level: loud\n');
  const r = await runCli(['config', 'list'], { home });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /config\.yaml:4:40: Expected backend\.local\.temporal\.search_attributes\.CustomerId to be a search attribute type: Text, Keyword, Int, Double, Bool, Datetime or KeywordList, got "Keywrd"/);
  assert.match(r.stderr, /config\.yaml:5:18: Expected backend\.local\.temporal\.log_level to be one of debug, info, warn, error, never, got "loud"/);
});

test('switching temporal.version to another minor keeps the old SQLite file as a backup and says so', async (t) => {
  const h = tempHome();
  t.after(() => cleanupHome(h));
  const data = join(h, 'data');
  mkdirSync(data);
  const run = async (version: string): Promise<{ lines: string[]; summary: string }> => {
    const { config } = loadConfig({ home: h, cwd: h, env: { STIGMER_TEMPORAL_VERSION: version } });
    const { ctx, lines } = makeContext(h, { config });
    const out = await resolveConfig.run(ctx);
    return { lines, summary: out.summary ?? '' };
  };
  const db = join(data, 'temporal.db');
  assert.deepEqual((await run('1.7.3')).lines, []);
  assert.equal(readFileSync(`${db}.version`, 'utf8'), '1.7.3\n');
  writeFileSync(db, 'workflows of 1.7.3');
  writeFileSync(`${db}-wal`, 'its journal');
  assert.deepEqual((await run('1.7.1')).lines, [], 'another patch of the same minor: same file');
  assert.ok(existsSync(db));
  const switched = await run('1.8.2');
  assert.deepEqual(switched.lines, [
    `Temporal CLI 1.7.3 created ${db}; 1.8.2 is another minor version and dev-server files have no migration guarantee, ` +
      `so the old file is kept as ${db}.1.7.3.bak and 1.8.2 starts a new one (switch temporal.version back to 1.7.3 to use it again).`,
  ]);
  assert.equal(readFileSync(`${db}.1.7.3.bak`, 'utf8'), 'workflows of 1.7.3');
  assert.equal(readFileSync(`${db}.1.7.3.bak-wal`, 'utf8'), 'its journal');
  assert.ok(!existsSync(db) && !existsSync(`${db}-wal`));
  assert.equal(readFileSync(`${db}.version`, 'utf8'), '1.8.2\n');
});
