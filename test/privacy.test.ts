/**
 * Secrets and permissions: a key a service wrote to its log is masked by `logs` and `local logs`
 * in a later process (from the environment, `.env`, or the environment of the stack's running
 * processes, where a prompted key lives); the key variables reach no child that does not name
 * them (Temporal and the server never see the provider key); what stigmer creates is private
 * (directories 0700, logs and Temporal's SQLite file 0600).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv } from '../src/process/proc.js';
import { clearSecrets, registerSecretVariables } from '../src/util/mask.js';
import { assertNothingLeft, cleanupHome, runCli, tempHome } from './helpers.js';
import { stackRig } from './temporal-mirror.js';

const mode = (path: string): number => statSync(path).mode & 0o777;
const octal = (m: number): string => `0${m.toString(8)}`;

test('childEnv: a secret variable is not inherited unless a layer names it', (t) => {
  t.after(() => {
    clearSecrets();
    delete process.env['OPENAI_API_KEY'];
  });
  process.env['OPENAI_API_KEY'] = 'sk-test-inherit-0123456789';
  assert.equal(childEnv()['OPENAI_API_KEY'], 'sk-test-inherit-0123456789', 'inherited before it is registered');
  registerSecretVariables(['OPENAI_API_KEY'], process.env);
  assert.equal(childEnv()['OPENAI_API_KEY'], undefined);
  assert.equal(childEnv({ OPENAI_API_KEY: 'sk-explicit-0123456789' })['OPENAI_API_KEY'], 'sk-explicit-0123456789');
});

test('logs and status mask a key from the environment or .env; an exec task sees a key only when it names it', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const envKey = 'sk-test-temporal-env-5b1e9d0c';
  const dotenvKey = 'sk-test-openai-dotenv-8a3f2c6e';
  writeFileSync(join(home, '.env'), `OPENAI_API_KEY=${dotenvKey}\n`);
  writeFileSync(
    join(home, 't.yaml'),
    [
      'version: 1',
      'tasks:',
      '  plain:',
      '    uses: exec',
      `    with: { command: node, args: [-e, 'console.log("plain sees " + (process.env.TEMPORAL_API_KEY || "no key"))'] }`,
      '  named:',
      '    uses: exec',
      '    env: { TEMPORAL_API_KEY: "${{ env.TEMPORAL_API_KEY }}" }',
      `    with: { command: node, args: [-e, 'console.log("named sees " + process.env.TEMPORAL_API_KEY)'] }`,
      '',
    ].join('\n'),
  );
  const env = { TEMPORAL_API_KEY: envKey };
  const up = await runCli(['up', '-f', 't.yaml', '--data-dir', home, '--output', 'plain'], { home, env });
  assert.equal(up.code, 0, up.stderr);
  const log = (task: string): string => readFileSync(join(home, 'logs', `${task}.log`), 'utf8');
  assert.match(log('plain'), /plain sees no key/);
  assert.match(log('named'), /named sees \*{8}/, 'it got the key, and its log line is masked as it is written');
  // a service writing a key stigmer did not know of in that run (a key from .env, say)
  writeFileSync(join(home, 'logs', 'plain.log'), `leaked ${dotenvKey} and ${envKey}\n`, { flag: 'a' });
  for (const args of [['logs', '--data-dir', home], ['logs', 'plain', '--data-dir', home], ['local', 'logs', 'plain']]) {
    const r = await runCli(args, { home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /leaked \*{8} and \*{8}/, `${args.join(' ')}: ${r.stdout}`);
    assert.ok(!r.stdout.includes(dotenvKey) && !r.stdout.includes(envKey));
  }
  // the log files and the directories are private
  assert.equal(octal(mode(join(home, 'logs'))), '0700');
  for (const f of readdirSync(join(home, 'logs'))) assert.equal(octal(mode(join(home, 'logs', f))), '0600', f);
  // status masks too (a recorded error quoting the key)
  const state = JSON.parse(readFileSync(join(home, 'state.json'), 'utf8')) as { tasks: Record<string, { error?: string }> };
  state.tasks['plain']!.error = `boom ${dotenvKey}`;
  writeFileSync(join(home, 'state.json'), JSON.stringify(state));
  const status = await runCli(['status', '--data-dir', home], { home, env });
  assert.match(status.stdout, /boom \*{8}/);
  assert.ok(!status.stdout.includes(dotenvKey));
  assert.equal((await runCli(['down', '--data-dir', home], { home, env })).code, 0);
});

test('up creates its data dir 0700; a process with private_files creates 0600 files', async (t) => {
  const base = tempHome();
  t.after(() => cleanupHome(base));
  const dataDir = join(base, 'a', 'b', 'data');
  writeFileSync(
    join(base, 't.yaml'),
    [
      'version: 1',
      'tasks:',
      '  svc:',
      '    uses: process',
      `    with: { command: node, args: [-e, "require('fs').writeFileSync('made.db', 'x'); console.log('ready'); setInterval(() => {}, 1000)"], ready: { log: ready }, private_files: true }`,
      '',
    ].join('\n'),
  );
  const up = await runCli(['up', '-f', 't.yaml', '--data-dir', dataDir, '--output', 'plain'], { home: base });
  assert.equal(up.code, 0, up.stderr);
  try {
    for (const d of [join(base, 'a'), join(base, 'a', 'b'), dataDir, join(dataDir, 'logs')]) assert.equal(octal(mode(d)), '0700', d);
    assert.equal(octal(mode(join(dataDir, 'logs', 'svc.log'))), '0600');
    assert.equal(octal(mode(join(base, 'made.db'))), '0600');
  } finally {
    assert.equal((await runCli(['down', '--data-dir', dataDir], { home: base })).code, 0);
  }
});

test('local start: the provider key reaches the agent-runner only; a later `local logs` masks it; home, data and logs private', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const home = join(r.home, 'fresh'); // created by `local start` itself
  const key = 'sk-test-ant-privacy-7c2d9e4f1a';
  const env = { ...r.env, STIGMER_LLM_PROVIDER: 'anthropic', STIGMER_LLM_BASE_URL: undefined, ANTHROPIC_API_KEY: key };
  t.after(() => assertNothingLeft(home));
  const start = await runCli(['local', 'start', '--no-input'], { home, cwd: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  try {
    assert.equal(r.records('agent-runner')[0]?.env['ANTHROPIC_API_KEY'], key);
    assert.equal(r.records('server')[0]?.env['ANTHROPIC_API_KEY'], undefined, 'the server does not inherit the key');
    const temporalPid = r.temporalStarts()[0]!.pid;
    const temporalEnv = readFileSync(`/proc/${temporalPid}/environ`, 'utf8').split('\0');
    assert.ok(temporalEnv.some((e) => e.startsWith('STIGMER_HOME=')), 'read the right environment');
    assert.ok(!temporalEnv.some((e) => e.startsWith('ANTHROPIC_API_KEY=')), 'Temporal does not inherit the key');

    for (const d of [home, join(home, 'data'), join(home, 'logs')]) assert.equal(octal(mode(d)), '0700', d);
    for (const f of readdirSync(join(home, 'logs'))) assert.equal(octal(mode(join(home, 'logs', f))), '0600', f);
    const db = readdirSync(join(home, 'data')).find((f) => f.endsWith('.db'));
    assert.ok(db, 'the SQLite file exists');
    assert.equal(octal(mode(join(home, 'data', db))), '0600', 'the SQLite file is private');

    // a later shell without the key (it was typed at a prompt, say): known from the agent-runner
    writeFileSync(join(home, 'logs', 'start-server.log'), `debug: got ${key}\n`, { flag: 'a' });
    const noKey = { ...env, ANTHROPIC_API_KEY: undefined };
    for (const args of [['local', 'logs', 'server'], ['logs', 'start-server', '--data-dir', home]]) {
      const logs = await runCli(args, { home, cwd: r.home, env: noKey });
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /debug: got \*{8}/, args.join(' '));
      assert.ok(!logs.stdout.includes(key));
    }
  } finally {
    const stop = await runCli(['local', 'stop'], { home, cwd: r.home, env });
    assert.equal(stop.code, 0, stop.stderr);
  }
});

test('a data dir made by an older version stays as it is, but a new log in it is 0600', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  mkdirSync(join(home, 'logs'), { recursive: true, mode: 0o755 });
  writeFileSync(join(home, 'logs', 'a.log'), 'old\n', { mode: 0o644 });
  writeFileSync(join(home, 't.yaml'), 'version: 1\ntasks:\n  a: { uses: exec, with: { command: "true" } }\n');
  assert.equal((await runCli(['up', '-f', 't.yaml', '--data-dir', home, '--output', 'plain'], { home })).code, 0);
  assert.equal(octal(mode(join(home, 'logs', 'a.log'))), '0600', 'an existing log is made private when written again');
  assert.equal(octal(mode(join(home, 'logs'))), '0755', 'a directory that exists is not changed');
});
