/**
 * `stigmer init`: directories, a commented default config (0600), the Temporal CLI from a local
 * release mirror (verified, installed atomically), safe to rerun; failed downloads leave nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, runCli, tempHome } from './helpers.js';
import { packageRoot } from '../src/util/paths.js';
import { startTemporalMirror } from './temporal-mirror.js';

function home(t: { after: (fn: () => Promise<void>) => void }): string {
  const h = tempHome('stigmer-init-');
  t.after(() => cleanupHome(h));
  return h;
}

test('init --no-download twice: directories, a valid commented config, then nothing changed', async (t) => {
  const h = join(home(t), 'stigmer');
  const first = await runCli(['init', '--no-download'], { home: h, cwd: '/' });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(
    first.stdout,
    [
      `✓ Created config directory: ${h}`,
      '- Skipped the Temporal CLI v1.8.2 download (--no-download); stigmer local start downloads it',
      `✓ Created default config with Ollama: ${h}/config.yaml`,
      '✓ Configured for zero-dependency local mode (Ollama, managed Temporal)',
      '',
      'Next: stigmer local start',
      '',
    ].join('\n'),
  );
  for (const dir of ['data', 'bin', 'logs']) assert.ok(statSync(join(h, dir)).isDirectory(), dir);
  const file = join(h, 'config.yaml');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  // the schema comment points at a copy under the home, which survives upgrades and cache cleans
  assert.ok(text.startsWith(`# yaml-language-server: $schema=${join(h, 'config.schema.json')}\n`), text.split('\n')[0]);
  assert.deepEqual(JSON.parse(readFileSync(join(h, 'config.schema.json'), 'utf8')), JSON.parse(readFileSync(join(packageRoot, 'schemas', 'config.schema.json'), 'utf8')));
  assert.match(text, /\n      provider: ollama +# ollama \| anthropic \| openai/);
  assert.match(text, /\n      # model: qwen2\.5-coder:7b/);

  // the written file is valid and gives the defaults
  const list = await runCli(['config', 'list', '--json'], { home: h, cwd: '/' });
  assert.equal(list.code, 0, list.stderr);
  const values = JSON.parse(list.stdout) as Record<string, { value: unknown; origin: string }>;
  assert.deepEqual(values['backend.local.llm.provider'], { value: 'ollama', origin: 'file', source: file });
  assert.equal(values['backend.local.temporal.version']!.origin, 'default');

  writeFileSync(file, `${text}# my own note\n`);
  const second = await runCli(['init', '--no-download'], { home: h, cwd: '/' });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout.split('\n')[0], `✓ Config directory exists: ${h}`);
  assert.equal(second.stdout.split('\n')[2], `✓ Kept existing config: ${file}`);
  assert.match(readFileSync(file, 'utf8'), /# my own note\n$/);

  const forced = await runCli(['init', '--no-download', '--force'], { home: h, cwd: '/' });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout.split('\n')[2], `✓ Rewrote config with the defaults: ${file} (previous one in ${file}.bak)`);
  assert.match(readFileSync(`${file}.bak`, 'utf8'), /# my own note\n$/);
  assert.doesNotMatch(readFileSync(file, 'utf8'), /my own note/);
});

test('init downloads the Temporal CLI from the mirror, verified; a second init reuses it', async (t) => {
  const h = home(t);
  const mirror = await startTemporalMirror({ redirect: true });
  t.after(() => mirror.close());
  const env = { STIGMER_TEMPORAL_DOWNLOAD_URL: mirror.url };
  const first = await runCli(['init'], { home: h, env });
  assert.equal(first.code, 0, first.stderr);
  const bin = join(h, 'bin', 'temporal-1.8.2', 'temporal');
  assert.equal(first.stdout.split('\n')[1], `✓ Downloaded Temporal CLI v1.8.2: ${bin}`);
  assert.match(first.stderr, /^Downloading Temporal CLI v1\.8\.2: 100% \(.+\)$/m);
  assert.deepEqual(mirror.requests, ['/v1.8.2/checksums.txt', `/v1.8.2/${mirror.archiveName}`, `/assets/${mirror.archiveName}`]);
  assert.equal(statSync(bin).mode & 0o111, 0o111);
  assert.equal(execFileSync(bin, ['--version'], { encoding: 'utf8' }), 'temporal version 1.8.2 (Server 1.31.2, UI 2.50.1)\n');
  assert.ok(existsSync(join(h, 'bin', 'temporal-1.8.2', 'LICENSE')));

  const second = await runCli(['init'], { home: h, env });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout.split('\n')[1], `✓ Temporal CLI v1.8.2 already installed: ${bin}`);
  assert.equal(mirror.requests.length, 3, 'nothing fetched again');

  // another version is installed beside it
  const other = await startTemporalMirror({ versions: ['1.7.3'] });
  t.after(() => other.close());
  const v173 = await runCli(['init'], { home: h, env: { STIGMER_TEMPORAL_DOWNLOAD_URL: other.url, STIGMER_TEMPORAL_VERSION: '1.7.3' } });
  assert.equal(v173.code, 0, v173.stderr);
  assert.equal(execFileSync(join(h, 'bin', 'temporal-1.7.3', 'temporal'), ['--version'], { encoding: 'utf8' }), 'temporal version 1.7.3 (Server 1.31.2, UI 2.50.1)\n');
});

test('init: a checksum mismatch installs nothing and exits 1 with the reason', async (t) => {
  const h = home(t);
  const mirror = await startTemporalMirror({ corrupt: true });
  t.after(() => mirror.close());
  const r = await runCli(['init'], { home: h, env: { STIGMER_TEMPORAL_DOWNLOAD_URL: mirror.url } });
  assert.equal(r.code, 1);
  const url = `${mirror.url}/v1.8.2/${mirror.archiveName}`;
  assert.match(r.stderr, new RegExp(`✗ Could not install the Temporal CLI v1\\.8\\.2: checksum mismatch for ${url.replace(/[.]/g, '\\.')}: expected sha256 f{64}, got [0-9a-f]{64}\n`));
  assert.match(r.stderr, /Set STIGMER_TEMPORAL_DOWNLOAD_URL \(or backend\.local\.temporal\.download_url\) to use a mirror/);
  assert.deepEqual(readdirSync(join(h, 'bin')), [], 'nothing installed, no temp files');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('init: a truncated download installs nothing and exits 1', async (t) => {
  const h = home(t);
  const mirror = await startTemporalMirror({ truncateAt: 300 });
  t.after(() => mirror.close());
  const r = await runCli(['init'], { home: h, env: { STIGMER_TEMPORAL_DOWNLOAD_URL: mirror.url } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /✗ Could not install the Temporal CLI v1\.8\.2: download of .* failed: the connection was cut after 300 of \d+ bytes/);
  assert.deepEqual(readdirSync(join(h, 'bin')), []);
  // a retry against a good mirror then works
  const good = await startTemporalMirror();
  t.after(() => good.close());
  const retry = await runCli(['init'], { home: h, env: { STIGMER_TEMPORAL_DOWNLOAD_URL: good.url } });
  assert.equal(retry.code, 0, retry.stderr);
  assert.deepEqual(readdirSync(join(h, 'bin')), ['temporal-1.8.2']);
});

test('init with an external Temporal downloads nothing', async (t) => {
  const h = home(t);
  const r = await runCli(['init'], { home: h, env: { TEMPORAL_SERVICE_ADDRESS: '127.0.0.1:7999', STIGMER_LLM_PROVIDER: 'anthropic' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[1], '✓ Using external Temporal at 127.0.0.1:7999 (nothing to download)');
  assert.equal(r.stdout.split('\n')[3], '✓ Configured for local mode (Anthropic claude-sonnet-4-5, external Temporal at 127.0.0.1:7999)');
  assert.deepEqual(readdirSync(join(h, 'bin')), []);
});

test('init with a broken config says how to fix it (exit 2)', async (t) => {
  const h = home(t);
  writeFileSync(join(h, 'config.yaml'), 'backend:\n  tpye: local\n');
  const r = await runCli(['init', '--no-download'], { home: h });
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`^${join(h, 'config.yaml').replace(/[.]/g, '\\.')}:2:3: unknown key "backend\\.tpye" \\(did you mean "type"\\?\\)`));
  assert.match(r.stderr, /or run `stigmer init --force` to rewrite it with the defaults/);
});

test('light paths (no commander): local status answers as through the command tree; --help, a typo and other spellings still go through commander', async () => {
  const h = tempHome();
  try {
    const env = { STIGMER_LLM_BASE_URL: 'http://127.0.0.1:9', TEMPORAL_SERVICE_ADDRESS: undefined };
    // `local status [--json]` exactly takes src/cli.ts's light path; any other spelling, commander's
    const light = await runCli(['local', 'status', '--json'], { home: h, env });
    const tree = await runCli(['local', 'status', '--json', '--json'], { home: h, env });
    assert.equal(light.code, 3, light.stderr);
    assert.equal(tree.code, 3, tree.stderr);
    const stable = (text: string): unknown => JSON.parse(text.replace(/"uptime_ms": \d+/g, '"uptime_ms": 0'));
    assert.deepEqual(stable(light.stdout), stable(tree.stdout));
    assert.equal(JSON.parse(light.stdout).stack, 'stopped');
    const plain = await runCli(['local', 'status'], { home: h, env });
    assert.equal(plain.code, 3, plain.stderr);
    assert.match(plain.stdout, /^Stigmer local stack: stopped /);
    const help = await runCli(['local', 'status', '--help'], { home: h, env });
    assert.match(help.stdout, /Usage: stigmer local status \[options\]/);
    const typo = await runCli(['local', 'status', '--jsn'], { home: h, env });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown option '--jsn'/);
    // the supervisor's light path takes only the spelling the CLI spawns it with
    const noDir = await runCli(['internal', 'supervise', '--data-dir'], { home: h, env });
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /option '--data-dir <dir>' argument missing/);
  } finally {
    await cleanupHome(h);
  }
});

test('light path (no commander): status answers as through the command tree, default tasks file and flags alike; other spellings go through commander', async () => {
  const h = tempHome();
  try {
    const project = join(h, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'stigmer.tasks.yaml'), 'tasks:\n  a:\n    kind: exec\n    with: { command: "true" }\n');
    // `--json` twice is not a light spelling: commander parses it (and takes it as one --json)
    const pairs: [string[], string[]][] = [
      [['status', '--json'], ['status', '--json', '--json']],
      [['status', '--json', '-f', 'stigmer.tasks.yaml'], ['status', '--file=stigmer.tasks.yaml', '--json']],
      [['status', '--data-dir', join(h, 'd'), '--json'], ['status', '--json', '--data-dir', join(h, 'd'), '--json']],
    ];
    for (const [lightArgs, treeArgs] of pairs) {
      const light = await runCli(lightArgs, { home: h, cwd: project });
      const tree = await runCli(treeArgs, { home: h, cwd: project });
      assert.equal(light.code, 3, light.stderr);
      assert.equal(tree.code, 3, tree.stderr);
      assert.deepEqual(JSON.parse(light.stdout), JSON.parse(tree.stdout), lightArgs.join(' '));
    }
    const plain = await runCli(['status', '--data-dir', join(h, 'd')], { home: h, cwd: project });
    assert.equal(plain.stdout, `nothing is running (no state in ${join(h, 'd')}; \`stigmer ls\` lists every stack)\n`);
    const typo = await runCli(['status', '--jsn'], { home: h, cwd: project });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown option '--jsn'/);
    const missing = await runCli(['status', '--data-dir'], { home: h, cwd: project });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /option '--data-dir <dir>' argument missing/);
    const help = await runCli(['status', '--help'], { home: h, cwd: project });
    assert.match(help.stdout, /Usage: stigmer status \[options\]/);
  } finally {
    await cleanupHome(h);
  }
});

test('local status on a fresh home says the config file does not exist yet (not "valid")', async () => {
  const h = tempHome();
  try {
    const env = { STIGMER_LLM_BASE_URL: 'http://127.0.0.1:9', TEMPORAL_SERVICE_ADDRESS: undefined };
    const json = await runCli(['local', 'status', '--json'], { home: h, env });
    assert.deepEqual(JSON.parse(json.stdout).config, { file: join(h, 'config.yaml'), exists: false, valid: null });
    const text = await runCli(['local', 'status'], { home: h, env });
    assert.match(text.stdout, new RegExp(`Config: {4}${join(h, 'config.yaml').replace(/[.]/g, '\\.')} does not exist yet: the defaults apply`));
    writeFileSync(join(h, 'config.yaml'), 'backend:\n  type: local\n');
    const again = await runCli(['local', 'status', '--json'], { home: h, env });
    assert.deepEqual(JSON.parse(again.stdout).config, { file: join(h, 'config.yaml'), exists: true, valid: true });
  } finally {
    await cleanupHome(h);
  }
});
