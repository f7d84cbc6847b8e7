/**
 * The package as a user gets it: `npm pack`, then `npm install -g --prefix <tmp>` of the tarball,
 * then the installed `stigmer` runs. Tests reach nothing beyond loopback, so the dependencies come
 * from a registry stand-in on 127.0.0.1 that serves the versions package-lock.json installed
 * (each packed from node_modules): npm still resolves the ranges, fetches the tarballs over HTTP and
 * runs (or does not run) the lifecycle scripts as it would against registry.npmjs.org.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create as tarCreate } from 'tar';
import { cleanupHome, repoRoot, tempHome } from './helpers.js';

const run = promisify(execFile);

interface Manifest {
  name: string;
  version: string;
  [field: string]: unknown;
}

/** A registry on loopback with exactly the non-dev packages package-lock.json installed. */
async function lockRegistry(): Promise<{ url: string; server: Server }> {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const packuments = new Map<string, { name: string; 'dist-tags': { latest: string }; versions: Record<string, unknown> }>();
  const tarballs = new Map<string, Buffer>();
  let base = '';
  const dirs = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.devOptional);
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!).slice(1);
    const body = tarballs.get(path) ?? (packuments.has(path) ? Buffer.from(JSON.stringify(packuments.get(path))) : undefined);
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': tarballs.has(path) ? 'application/octet-stream' : 'application/json', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  for (const [path] of dirs) {
    const dir = join(repoRoot, path);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
    const files = readdirSync(dir).filter((f) => f !== 'node_modules');
    const tgz = await streamToBuffer(tarCreate({ gzip: true, cwd: dir, prefix: 'package', portable: true }, files));
    const file = `${manifest.name}/-/${manifest.name.split('/').pop()}-${manifest.version}.tgz`;
    tarballs.set(file, tgz);
    const dist = {
      tarball: base + file,
      integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
      shasum: createHash('sha1').update(tgz).digest('hex'),
    };
    const doc = packuments.get(manifest.name) ?? { name: manifest.name, 'dist-tags': { latest: manifest.version }, versions: {} };
    doc.versions[manifest.version] = { ...manifest, dist };
    packuments.set(manifest.name, doc);
  }
  return { url: base, server };
}

async function streamToBuffer(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** npm with nothing of the caller's npm configuration (npm test exports npm_config_*). */
function npmEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, HOME: home, NO_COLOR: '1', CI: 'true' };
}

test('npm pack ships what a user needs and nothing else; the tarball installs globally and stigmer runs from there', async (t) => {
  const tmp = tempHome('stigmer-pack-');
  const registry = await lockRegistry();
  t.after(async () => {
    await new Promise<void>((resolve) => registry.server.close(() => resolve()));
    registry.server.closeAllConnections();
    await cleanupHome(tmp);
  });
  const npmrc = join(tmp, 'npmrc');
  writeFileSync(npmrc, '');
  const npmFlags = ['--userconfig', npmrc, '--cache', join(tmp, 'cache'), '--registry', registry.url, '--no-audit', '--no-fund', '--update-notifier=false'];
  const env = npmEnv(tmp);

  // the suite has built dist/ already: pack what is there (prepare would build it again)
  const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp, ...npmFlags], { cwd: repoRoot, env, timeout: 120_000 });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  const files = info.files.map((f) => f.path).sort();
  const shipped = /^(README\.md|LICENSE|package\.json|stigmer\.tasks\.yaml|bin\/stigmer\.js|schemas\/[\w-]+\.schema\.json|dist\/validators\/\w+\.js|dist\/bundle\/[\w-]+\.js|dist\/bundle\/engine-light\.(cjs|cache))$/;
  assert.deepEqual(files.filter((f) => !shipped.test(f)), [], 'files outside what a user needs');
  for (const needed of ['bin/stigmer.js', 'dist/bundle/cli.js', 'dist/bundle/engine-light.cjs', 'dist/validators/tasks.js', 'dist/validators/config.js', 'schemas/config.schema.json', 'stigmer.tasks.yaml']) {
    assert.ok(files.includes(needed), `${needed} is not in the package`);
  }
  assert.ok(!files.some((f) => /^dist\/(test|bench|src|tasks)\/|tsbuildinfo/.test(f)), files.join('\n'));

  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; scripts?: Record<string, string> };

  const prefix = join(tmp, 'prefix');
  const installed = await run('npm', ['install', '-g', '--prefix', prefix, join(tmp, info.filename), ...npmFlags], { cwd: tmp, env, timeout: 300_000 });
  // npm 11 lists every package with an install or prepare script it did not run. stigmer has none;
  // protobufjs (under @grpc/grpc-js's @grpc/proto-loader) has a postinstall that only checks its
  // dependents' version scheme, so nothing here needs it: the CLI runs below without it.
  const scripted = [...installed.stderr.matchAll(/^npm warn install-scripts {3}(\S+)@/gm)].map((m) => m[1]);
  assert.deepEqual(scripted, ['protobufjs'], installed.stderr);
  assert.doesNotMatch(installed.stderr.replace(/^npm warn install-scripts.*\n/gm, ''), /npm (warn|error)/i, installed.stderr);

  const bin = join(prefix, 'bin', 'stigmer');
  const root = join(prefix, 'lib', 'node_modules', 'stigmer');
  assert.ok(existsSync(bin), `${bin} was not installed`);
  const stigmerEnv = { ...env, STIGMER_HOME: join(tmp, 'home') };
  const version = await run(bin, ['--version'], { cwd: tmp, env: stigmerEnv, timeout: 60_000 });
  assert.equal(version.stdout, `${manifest.version}\n`);
  const validate = await run(bin, ['validate', '-f', join(root, 'stigmer.tasks.yaml')], { cwd: tmp, env: stigmerEnv, timeout: 60_000 });
  assert.match(validate.stdout, /stigmer\.tasks\.yaml: ok \(\d+ tasks\)\n$/);
  assert.equal(validate.stderr, '');
});
