/**
 * Which Temporal CLI the managed server runs: stigmer's own download, a CLI the user configured
 * (backend.local.temporal.bin / STIGMER_TEMPORAL_BIN), or a `temporal` on PATH; and what a failed
 * download says to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli } from './helpers.js';
import { stackRig, standInScript } from './temporal-mirror.js';

function ownCli(dir: string, version = '1.8.2'): string {
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'temporal');
  writeFileSync(bin, standInScript(version));
  chmodSync(bin, 0o755);
  return bin;
}

test('a temporal on PATH is used instead of downloading; a configured one too; a broken one is a clear error', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const dir = join(r.home, 'tools');
  const bin = ownCli(dir);
  const env = { ...r.env, PATH: `${dir}:${process.env['PATH']}` };
  const start = await runCli(['local', 'start'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /download-temporal: skipped/);
  assert.match(start.stdout, new RegExp(`Temporal gRPC:  127\\.0\\.0\\.1:${r.ports.temporal} \\(managed, Temporal CLI 1\\.8\\.2 from PATH\\)`));
  assert.deepEqual(r.mirror.requests, [], 'nothing was downloaded');
  assert.equal(r.temporalStarts().length, 1);
  assert.equal((await runCli(['local', 'stop'], { home: r.home, env })).code, 0);

  const configured = await runCli(['local', 'start'], { home: r.home, env: { ...r.env, STIGMER_TEMPORAL_BIN: bin } });
  assert.equal(configured.code, 0, configured.stderr);
  assert.match(configured.stdout, /Temporal CLI 1\.8\.2 \(backend\.local\.temporal\.bin\)/);
  assert.deepEqual(r.mirror.requests, []);
  assert.equal((await runCli(['local', 'stop'], { home: r.home, env: r.env })).code, 0);

  const starts = r.temporalStarts().length;
  const missing = join(r.home, 'no-such-temporal');
  const broken = await runCli(['local', 'start'], { home: r.home, env: { ...r.env, STIGMER_TEMPORAL_BIN: missing } });
  assert.equal(broken.code, 1, broken.stderr);
  assert.match(broken.stderr, new RegExp(`^stigmer: resolve-config failed: backend\\.local\\.temporal\\.bin \\(or STIGMER_TEMPORAL_BIN\\): ${missing.replace(/[.]/g, '\\.')} is not a working Temporal CLI: no such file`));
  assert.doesNotMatch(broken.stderr, /\n\s+at /);
  assert.equal(r.temporalStarts().length, starts, 'nothing started');
});

test('an unreachable download location names the three ways out, and the line is not cut', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const start = await runCli(['local', 'start'], { home: r.home, env: { ...r.env, STIGMER_TEMPORAL_DOWNLOAD_URL: `http://127.0.0.1:${await freePort()}` } });
  assert.equal(start.code, 1);
  assert.match(start.stderr, /stigmer: download-temporal failed: download of http:\/\/127\.0\.0\.1:\d+\/v1\.8\.2\/checksums\.txt failed: connection refused\n/);
  assert.match(
    start.stderr,
    /hint: Three ways out: a mirror with the same layout \(STIGMER_TEMPORAL_DOWNLOAD_URL, or backend\.local\.temporal\.download_url\); a Temporal CLI you already have \(STIGMER_TEMPORAL_BIN, or backend\.local\.temporal\.bin, or `temporal` on your PATH\); or a Temporal server of your own \(TEMPORAL_SERVICE_ADDRESS=host:port, or backend\.local\.temporal\.managed: false\)\./,
  );
});

test("the user's own Temporal settings never reach the Temporal CLI stigmer runs (--version, start-dev)", async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const dir = join(r.home, 'tools');
  const real = ownCli(join(r.home, 'real'));
  mkdirSync(dir, { recursive: true });
  // A CLI that fails, as the real one does on a broken profile, whenever a Temporal variable reaches it.
  writeFileSync(
    join(dir, 'temporal'),
    `#!/bin/sh\nif env | grep -q '^TEMPORAL_'; then echo "Error: failed loading client config: profile \\"cloud\\" not found" >&2; exit 1; fi\nexec ${JSON.stringify(real)} "$@"\n`,
  );
  chmodSync(join(dir, 'temporal'), 0o755);
  const env = { ...r.env, PATH: `${dir}:${process.env['PATH']}`, TEMPORAL_PROFILE: 'cloud', TEMPORAL_CONFIG_FILE: join(r.home, 'no-such.toml') };
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /download-temporal: skipped/);
  assert.match(start.stdout, /Temporal CLI 1\.8\.2 from PATH/);
  const doctor = await runCli(['doctor'], { home: r.home, env });
  assert.match(doctor.stdout, /Temporal CLI 1\.8\.2 \(on PATH\) answers --version/);
  assert.equal((await runCli(['local', 'stop'], { home: r.home, env })).code, 0);
});
