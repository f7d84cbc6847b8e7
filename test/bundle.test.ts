/**
 * The shipped CLI is the esbuild bundle under dist/bundle (scripts/bundle.mjs), whose chunks sit at
 * another depth than tsc's output: paths are found from the package root, not from a module's own
 * file. The other CLI tests run the bundle through bin/stigmer.js; these pin what the bundling
 * itself could break.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanupHome, cliPath, repoRoot, runCli, tempHome } from './helpers.js';
import { findPackageRoot, packageRoot, stigmerVersion, validatorFile } from '../src/util/paths.js';

const bundleDir = join(repoRoot, 'dist', 'bundle');

test('findPackageRoot: the nearest package.json named "stigmer", from any depth', async (t) => {
  assert.equal(packageRoot, repoRoot);
  assert.equal(findPackageRoot(bundleDir), repoRoot);
  assert.equal(findPackageRoot(join(repoRoot, 'dist', 'src', 'config')), repoRoot);
  assert.equal(validatorFile('tasks'), join(repoRoot, 'dist', 'validators', 'tasks.js'));

  const home = tempHome();
  t.after(() => cleanupHome(home));
  // a package of another name on the way up is walked past; none named stigmer is an internal error
  mkdirSync(join(home, 'pkg', 'node_modules', 'other', 'lib'), { recursive: true });
  writeFileSync(join(home, 'pkg', 'package.json'), JSON.stringify({ name: 'stigmer' }));
  writeFileSync(join(home, 'pkg', 'node_modules', 'other', 'package.json'), JSON.stringify({ name: 'other' }));
  assert.equal(findPackageRoot(join(home, 'pkg', 'node_modules', 'other', 'lib')), join(home, 'pkg'));
  assert.throws(() => findPackageRoot(home), /^Error: Internal error: no package\.json named "stigmer" at or above /);
});

test('bin/stigmer.js runs the bundle, whose chunks compute no path from their own location', () => {
  const bin = readFileSync(cliPath, 'utf8');
  assert.match(bin, /^#!\/usr\/bin\/env node\n/);
  assert.deepEqual(bin.match(/import\([^)]*\)/g), ["import('../dist/bundle/down.js')", "import('../dist/bundle/cli.js')"], 'the bin loads the bundle (down: its own) and nothing else lazily');
  const chunks = readdirSync(bundleDir).filter((f) => f.endsWith('.js'));
  assert.ok(chunks.includes('cli.js') && chunks.length > 10, `expected a split bundle, got ${chunks.join(', ')}`);
  for (const chunk of chunks) {
    const text = readFileSync(join(bundleDir, chunk), 'utf8');
    assert.doesNotMatch(text, /new URL\(\s*["']\.\.?\//, `${chunk}: a path relative to the chunk's own file`);
  }
});

test('local status and status are files of their own: they import no chunk (local status only ./grpc-client.js lazily, the split bundle\'s entry); cli.js imports them', () => {
  const relative = (file: string): string[] => [...readFileSync(join(bundleDir, file), 'utf8').matchAll(/(?:from|import\()\s*["'](\.[^"']*)["']/g)].map((m) => m[1]!);
  assert.deepEqual(relative('local-status.js'), ['./grpc-client.js']);
  assert.deepEqual(relative('status-light.js'), []);
  assert.doesNotMatch(readFileSync(join(bundleDir, 'status-light.js'), 'utf8'), /node_modules\/yaml\//, 'status loads no yaml');
  const cli = readFileSync(join(bundleDir, 'cli.js'), 'utf8');
  assert.match(cli, /import\("\.\/local-status\.js"\)/);
  assert.match(cli, /import\("\.\/status-light\.js"\)/);
  assert.ok(existsSync(join(bundleDir, 'grpc-client.js')));
});

test('the down bundle is one file without the engine; what it does not take (help, an undo from the state file) is the whole CLI\'s', async (t) => {
  const text = readFileSync(join(bundleDir, 'down.js'), 'utf8');
  assert.doesNotMatch(text, /^import .* from ["'](listr2|yaml|commander|@grpc\/grpc-js)["']/m, 'a package the down never needs is imported at its top');
  assert.doesNotMatch(text, /\/\/ dist\/src\/engine\/(run|drivers)\.js/, 'the engine is in the down bundle');
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const help = await runCli(['down', '--help'], { home });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: stigmer down \[options\]/);
  const empty = await runCli(['down', '--data-dir', join(home, 'none')], { home });
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stderr, /^stigmer: nothing to stop \(no state in /);
});

test('bin/stigmer.js in a checkout that was not built: exit 1 and the command that builds it, no trace', (t) => {
  const root = tempHome();
  t.after(() => cleanupHome(root));
  mkdirSync(join(root, 'bin'));
  copyFileSync(cliPath, join(root, 'bin', 'stigmer.js'));
  const r = spawnSync(process.execPath, [join(root, 'bin', 'stigmer.js'), '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `stigmer: this checkout is not built yet (no dist/bundle/cli.js)\n  hint: run: npm run build   (in ${root}/)\n`);
});

test('the version has one home, package.json: bin/stigmer.js reads it for --version before any chunk loads, the bundle inlines it, tsc\'s output reads it', async (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const home = tempHome();
  t.after(() => cleanupHome(home));
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
  }
  assert.equal(stigmerVersion(), version);
  // engine-light.cjs (validate and graph, one script of their own: scripts/bundle.mjs) holds its own copy
  const inlined = readdirSync(bundleDir).filter((f) => readFileSync(join(bundleDir, f), 'utf8').includes(`BUNDLED_VERSION = true ? ${JSON.stringify(version)} :`));
  const apart = ['engine-light.cjs', 'local-status.js', 'status-light.js', 'down.js'];
  assert.deepEqual(inlined.filter((f) => !apart.includes(f)).length, 1, 'one chunk of the split bundle holds the inlined version');
  for (const f of apart) assert.ok(inlined.includes(f), `${f}, a light file built apart, inlines the version too`);
  assert.doesNotMatch(readFileSync(join(repoRoot, 'src', 'cli.ts'), 'utf8'), /['"`]\d+\.\d+\.\d+['"`]/, 'src/cli.ts spells a version');
});

test('the bundled CLI: the packaged stack file and validators, and named exports of a lazily imported CommonJS package', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const validate = await runCli(['validate', '-f', join(repoRoot, 'stigmer.tasks.yaml')], { home });
  assert.equal(validate.code, 0, validate.stderr);
  assert.match(validate.stdout, /stigmer\.tasks\.yaml: ok \(\d+ tasks\)\n$/);

  writeFileSync(join(home, 'config.yaml'), 'backend:\n  local:\n    temporal: {port: "x"}\n');
  const bad = await runCli(['config', 'get', 'backend.local.temporal.port'], { home });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /config\.yaml:3:/);

  // `config get` of a section stringifies it with `await import('yaml')`: a CommonJS package that
  // an unadorned code-split chunk would expose as `default` only
  writeFileSync(join(home, 'config.yaml'), '');
  const section = await runCli(['config', 'get', 'backend.local.llm'], { home, env: { STIGMER_LLM_PROVIDER: 'openai', STIGMER_OLLAMA_MANAGED: 'auto' } });
  assert.equal(section.code, 0, section.stderr);
  assert.equal(section.stdout, 'provider: openai\nmodel: gpt-4.1-mini\nbase_url: https://api.openai.com/v1\nollama:\n  managed: auto\n  version: 0.32.15\n  download_url: https://github.com/ollama/ollama/releases/download\n');
});

test('validate and graph run from one script whose V8 code cache, made by the build, fits this node', (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const loader = join(bundleDir, 'engine-light.js');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(loader).href)}); process.stdout.write(String(m.script.cachedDataRejected))`], { encoding: 'utf8', env: { ...process.env, STIGMER_HOME: home } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'false', 'the code cache was accepted');
  assert.doesNotMatch(readFileSync(join(bundleDir, 'engine-light.cjs'), 'utf8'), /\bimport\((?!"\.\.\/\.\.\/tasks\/)/, 'the script imports nothing (a script with a code cache cannot); only the kinds, never loaded');
});

test('the code cache is not used when the script is newer than it (V8 checks only the length of the source)', (t) => {
  const root = tempHome();
  t.after(() => cleanupHome(root));
  // a copy of the script, its loader and its cache in a package of its own
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'stigmer', version: '0.0.0' }));
  mkdirSync(join(root, 'bundle'));
  for (const f of ['engine-light.js', 'engine-light.cjs', 'engine-light.cache']) copyFileSync(join(bundleDir, f), join(root, 'bundle', f));
  const rejected = (): string => {
    const loader = pathToFileURL(join(root, 'bundle', 'engine-light.js')).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(loader)}); process.stdout.write(String(m.script.cachedDataRejected))`], { encoding: 'utf8', env: { ...process.env, STIGMER_HOME: root } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(root, 'bundle', 'engine-light.cjs'), past, past);
  assert.equal(rejected(), 'false', 'a cache as new as the script is used');
  utimesSync(join(root, 'bundle', 'engine-light.cjs'), new Date(), new Date());
  assert.equal(rejected(), 'undefined', 'no cache is given to V8 for a script changed after it');
});
