/**
 * Fresh installs in a child process (src/process/download/child.ts), as the supervisor runs them:
 * the same outputs, progress, lines and failures as in process, the child really the one that
 * fetches, and an abort that stops it with nothing left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, tempHome, until } from './helpers.js';
import { buildTarGz, checksumsFile, sha256hex, startMirror, withMirror, type Mirror } from './mirror.js';
import { installDownload, installInChildProcess } from '../src/process/download/install.js';
import type { InstallOptions } from '../src/process/download/install.js';
import { TaskError, type Progress } from '../src/model/kind.js';
import { describeFailure } from '../src/model/failure.js';

installInChildProcess(true);

const ARCHIVE = 'temporal_cli_1.8.2_linux_amd64.tar.gz';
const TEMPORAL = '#!/bin/sh\necho "temporal version 1.8.2"\n';

/** This process's children whose command line is the install child's. */
function installChildren(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const text = readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim();
    for (const pid of text ? text.split(/\s+/).map(Number) : []) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('install-download')) out.push(pid);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

function collect(signal?: AbortSignal): { opts: InstallOptions; progress: Progress[]; lines: string[] } {
  const progress: Progress[] = [];
  const lines: string[] = [];
  return { opts: { signal, onProgress: (p) => progress.push(p), onOutput: (l) => lines.push(l) }, progress, lines };
}

test('an archive via a redirect, verified by checksums.txt, installed by the child: outputs, progress and lines as in process; then satisfied here', async () => {
  const archive = await buildTarGz([{ path: 'LICENSE', content: 'MIT\n' }, { path: 'temporal', content: TEMPORAL, mode: 0o755 }]);
  await withMirror(
    {
      [`/v1.8.2/${ARCHIVE}`]: { redirectTo: `/assets/${ARCHIVE}` },
      [`/assets/${ARCHIVE}`]: archive,
      '/v1.8.2/checksums.txt': checksumsFile({ [ARCHIVE]: archive }),
    },
    async (m, home) => {
      const dest = join(home, 'bin', 'temporal-1.8.2');
      const params = { url: `${m.url}/v1.8.2/${ARCHIVE}`, checksumsUrl: `${m.url}/v1.8.2/checksums.txt`, dest };
      const c = collect();
      const first = await installDownload(params, c.opts);
      assert.equal(first.satisfied, false);
      assert.deepEqual(first.outputs, { dest, path: join(dest, 'temporal'), sha256: sha256hex(archive), files: ['LICENSE', 'temporal'], bytes: archive.length });
      assert.equal(statSync(join(dest, 'temporal')).mode & 0o777, 0o755);
      assert.equal(readFileSync(join(dest, 'temporal'), 'utf8'), TEMPORAL);
      assert.deepEqual(c.progress.at(-1), { done: archive.length, total: archive.length, unit: 'bytes' });
      assert.ok(c.lines.includes(`downloading ${params.url}`), c.lines.join('\n'));
      assert.deepEqual(readdirSync(join(home, 'bin')), ['temporal-1.8.2']);
      assert.deepEqual(m.requests, ['/v1.8.2/checksums.txt', `/v1.8.2/${ARCHIVE}`, `/assets/${ARCHIVE}`]);
      // verified here, without a child or the network
      await m.close();
      const second = await installDownload(params);
      assert.equal(second.satisfied, true);
      assert.deepEqual(second.outputs, first.outputs);
    },
  );
});

test("the child's failures come back whole: HTTP 404 with its reason, message and hint", async () => {
  await withMirror({}, async (m, home) => {
    const url = `${m.url}/v1.25.1/temporal_cli_1.25.1_linux_amd64.tar.gz`;
    await assert.rejects(installDownload({ url, sha256: 'a'.repeat(64), dest: join(home, 'bin', 't') }), (err: unknown) => {
      assert.ok(err instanceof TaskError);
      assert.equal(err.failure.reason, 'download-failed');
      assert.equal(err.message, `download of ${url} failed: HTTP 404`);
      assert.equal(describeFailure(err.failure).hint, 'Check the version and the download mirror.');
      return true;
    });
    assert.deepEqual(existsSync(join(home, 'bin')) ? readdirSync(join(home, 'bin')) : [], []);
  });
});

test('an abort mid-download stops the child, which leaves nothing installed and no temp files', async () => {
  const big = randomBytes(256 * 1024);
  await withMirror({ '/big.bin': { body: big, stall: true } }, async (m, home) => {
    const ac = new AbortController();
    const dest = join(home, 'big');
    const c = collect(ac.signal);
    const pending = installDownload({ url: `${m.url}/big.bin`, sha256: sha256hex(big), dest }, c.opts).then(
      () => assert.fail('the install should have been aborted'),
      (err: unknown) => err,
    );
    // the bytes flow through the child (the stall keeps it mid-download)
    await until('the download under way', () => readdirSync(home).some((n) => n.startsWith('big.tmp-') && existsSync(join(home, n, 'big.bin')) && statSync(join(home, n, 'big.bin')).size > 0), 30_000, { everyMs: 10 });
    const [child] = installChildren();
    assert.ok(child, 'expected an install-download child of this process');
    ac.abort('SIGINT');
    const err = await pending;
    assert.ok(err instanceof TaskError);
    assert.equal(err.failure.reason, 'aborted');
    assert.equal(err.message, 'aborted: SIGINT');
    assert.deepEqual(installChildren(), [], 'the child exited (and was reaped) before the abort was reported');
    assert.deepEqual(readdirSync(home), []);
  });
});
