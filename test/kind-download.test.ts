/**
 * The `download` kind against a local mirror: redirects, checksums files, inline sha256,
 * truncated and failed downloads, hostile archives, tampered installs, abort and SIGKILL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cleanupHome, repoRoot, sleep, tempHome, until } from './helpers.js';
import { buildTarGz, buildTarZst, checksumsFile, sha256hex, startMirror, withMirror, zstdCompress } from './mirror.js';
import type { ArchiveEntry, Mirror } from './mirror.js';
import download from '../tasks/download.js';
import type { DownloadWith } from '../tasks/download.js';
import { checkInstalled, installDownload, parseMode } from '../src/process/download/install.js';
import { findChecksum } from '../src/process/download/checksums.js';
import { TaskError } from '../src/model/kind.js';
import type { Progress, TaskContext, TaskResult } from '../src/model/kind.js';
import { describeFailure } from '../src/model/failure.js';

const ARCHIVE = 'temporal_cli_1.8.2_linux_amd64.tar.gz';
const TEMPORAL = '#!/bin/sh\necho "temporal version 1.8.2 (Server 1.31.2, UI 2.50.1)"\n';

function temporalArchive(extra: ArchiveEntry[] = []): Promise<Buffer> {
  return buildTarGz([{ path: 'LICENSE', content: 'MIT\n' }, { path: 'temporal', content: TEMPORAL, mode: 0o755 }, ...extra]);
}

interface Run {
  progress: Progress[];
  lines: string[];
  result?: TaskResult;
  error?: TaskError;
}

/** Run the kind the way the engine does, collecting progress and output. */
async function runKind(w: DownloadWith, opts: { baseDir: string; signal?: AbortSignal; force?: boolean; env?: Record<string, string> }): Promise<Run> {
  const run: Run = { progress: [], lines: [] };
  const ctx: TaskContext<DownloadWith> = {
    task: 'download-temporal',
    with: w,
    env: opts.env ?? {},
    baseDir: opts.baseDir,
    dataDir: join(opts.baseDir, 'data'),
    logFile: join(opts.baseDir, 'data', 'download-temporal.log'),
    signal: opts.signal ?? new AbortController().signal,
    specHash: 'x',
    force: opts.force ?? false,
    output: (line) => run.lines.push(line),
    progress: (p) => run.progress.push(p),
    recordUndo: () => assert.fail('download must not record undo steps'),
    forgetUndo: () => assert.fail('download must not record undo steps'),
    secret: () => undefined,
    prompt: () => Promise.reject(new Error('no prompt in tests')),
    canPrompt: false,
  };
  try {
    run.result = await download.run(ctx);
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    run.error = err;
  }
  return run;
}

/** Every path under `dir`, relative, sorted (to prove nothing was written anywhere). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** Siblings of dest that look like temp dirs of an install. */
function temps(dest: string): string[] {
  const parent = join(dest, '..');
  const base = dest.slice(parent.length + 1);
  return existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith(`${base}.tmp-`)) : [];
}

test('archive via a redirect, verified by checksums.txt: installed, executable, marker, outputs; then satisfied offline', async () => {
  const archive = await temporalArchive();
  const home = tempHome();
  const mirror = await startMirror({
    [`/v1.8.2/${ARCHIVE}`]: { redirectTo: `/assets/${ARCHIVE}` },
    [`/assets/${ARCHIVE}`]: archive,
    '/v1.8.2/checksums.txt': { redirectTo: '/assets/checksums.txt' },
    '/assets/checksums.txt': checksumsFile({ [ARCHIVE]: archive, 'temporal_cli_1.8.2_darwin_arm64.tar.gz': Buffer.from('other') }),
  });
  try {
    const w: DownloadWith = { url: `${mirror.url}/v1.8.2/${ARCHIVE}`, checksums_url: `${mirror.url}/v1.8.2/checksums.txt`, dest: 'bin/temporal-1.8.2' };
    const first = await runKind(w, { baseDir: home });
    assert.equal(first.error, undefined, first.error?.message);
    const dest = join(home, 'bin', 'temporal-1.8.2');
    const sha = sha256hex(archive);
    assert.deepEqual(first.result!.outputs, { dest, path: join(dest, 'temporal'), sha256: sha, files: ['LICENSE', 'temporal'], bytes: archive.length });
    assert.equal(first.result!.satisfied, false);
    assert.equal(first.result!.undo, undefined);
    assert.equal(statSync(join(dest, 'temporal')).mode & 0o777, 0o755);
    assert.equal(statSync(join(dest, 'LICENSE')).mode & 0o777, 0o644);
    assert.equal(readFileSync(join(dest, 'temporal'), 'utf8'), TEMPORAL);
    const marker = JSON.parse(readFileSync(join(dest, '.stigmer-install.json'), 'utf8'));
    assert.equal(marker.url, w.url);
    assert.equal(marker.sha256, sha);
    assert.deepEqual(marker.files, { LICENSE: sha256hex('MIT\n'), temporal: sha256hex(TEMPORAL) });
    assert.ok(!Number.isNaN(Date.parse(marker.installedAt)));
    assert.deepEqual(mirror.requests, ['/v1.8.2/checksums.txt', '/assets/checksums.txt', `/v1.8.2/${ARCHIVE}`, `/assets/${ARCHIVE}`]);
    assert.deepEqual(first.progress.at(-1), { done: archive.length, total: archive.length, unit: 'bytes' });
    assert.ok(first.lines.includes(`downloading ${w.url}`), first.lines.join('\n'));
    assert.deepEqual(temps(dest), []);

    await mirror.close();
    const second = await runKind(w, { baseDir: home });
    assert.equal(second.error, undefined, second.error?.message);
    assert.equal(second.result!.satisfied, true);
    assert.deepEqual(second.result!.outputs, first.result!.outputs);
    assert.equal(second.result!.summary, `already installed: ${join(dest, 'temporal')}`);
  } finally {
    await mirror.close();
    await cleanupHome(home);
  }
});

test('progress reports bytes with the total, throttled, ending at 100%', async () => {
  const big = randomBytes(512 * 1024);
  await withMirror({ '/tool.bin': { body: big, chunks: 8, delayMs: 40 } }, async (m, home) => {
    const run = await runKind({ url: `${m.url}/tool.bin`, sha256: sha256hex(big), dest: join(home, 'tool') }, { baseDir: home });
    assert.equal(run.error, undefined, run.error?.message);
    assert.ok(run.progress.length >= 3, `expected several progress reports, got ${run.progress.length}`);
    assert.ok(run.progress.length < 20, `expected throttled progress, got ${run.progress.length}`);
    for (const p of run.progress) assert.equal(p.total, big.length);
    assert.deepEqual(run.progress[0], { done: 0, total: big.length, unit: 'bytes' });
    assert.deepEqual(run.progress.at(-1), { done: big.length, total: big.length, unit: 'bytes' });
    const dones = run.progress.map((p) => p.done);
    assert.deepEqual(dones, [...dones].sort((a, b) => a - b));
  });
});

test('a single file with an inline sha256 is installed as dest/<filename>, 0755 by default, mode when given', async () => {
  const bin = Buffer.from('#!/bin/sh\necho hi\n');
  await withMirror({ '/dl/jq-linux64': bin, '/dl/tool.tar.gz': bin }, async (m, home) => {
    const run = await runKind({ url: `${m.url}/dl/jq-linux64`, sha256: sha256hex(bin).toUpperCase(), dest: 'jq' }, { baseDir: home });
    assert.equal(run.error, undefined, run.error?.message);
    const dest = join(home, 'jq');
    assert.deepEqual(run.result!.outputs, { dest, path: join(dest, 'jq-linux64'), sha256: sha256hex(bin), files: ['jq-linux64'], bytes: bin.length });
    assert.equal(statSync(join(dest, 'jq-linux64')).mode & 0o777, 0o755);

    // extract: "false" (as an expression yields it) keeps a .tar.gz as a file; mode applies
    const run2 = await runKind({ url: `${m.url}/dl/tool.tar.gz`, sha256: sha256hex(bin), dest: 'raw', extract: 'false', mode: '0700' }, { baseDir: home });
    assert.equal(run2.error, undefined, run2.error?.message);
    assert.equal(statSync(join(home, 'raw', 'tool.tar.gz')).mode & 0o777, 0o700);
  });
});

test('checksum mismatch: exact message, nothing at dest, no temp dirs left', async () => {
  const archive = await temporalArchive();
  const wrong = sha256hex('something else');
  await withMirror({ [`/${ARCHIVE}`]: archive }, async (m, home) => {
    const url = `${m.url}/${ARCHIVE}`;
    const dest = join(home, 'bin', 'temporal');
    const run = await runKind({ url, sha256: wrong, dest }, { baseDir: home });
    assert.equal(run.error?.failure.reason, 'checksum-mismatch');
    assert.equal(run.error?.message, `checksum mismatch for ${url}: expected sha256 ${wrong}, got ${sha256hex(archive)}`);
    assert.equal(describeFailure(run.error!.failure).hint, 'The file is corrupt or was tampered with; nothing was installed. Retry, or check the mirror.');
    assert.equal(existsSync(dest), false);
    assert.deepEqual(tree(home), ['bin']);
  });
});

test('checksums file without the file: names the file and the checksums URL', async () => {
  const archive = await temporalArchive();
  await withMirror({ [`/${ARCHIVE}`]: archive, '/checksums.txt': checksumsFile({ 'temporal_cli_1.8.2_darwin_arm64.tar.gz': archive }) }, async (m, home) => {
    const run = await runKind({ url: `${m.url}/${ARCHIVE}`, checksums_url: `${m.url}/checksums.txt`, dest: 'bin/t' }, { baseDir: home });
    assert.equal(run.error?.failure.reason, 'download-failed');
    assert.equal(run.error?.message, `no checksum for ${ARCHIVE} in ${m.url}/checksums.txt`);
    assert.deepEqual(m.requests, ['/checksums.txt']);
    assert.deepEqual(tree(home), ['bin']);
  });
});

test('checksums file format: two spaces, *binary marker, CRLF', () => {
  const a = 'a'.repeat(64);
  const b = 'B'.repeat(64);
  const text = `${a}  other.tar.gz\r\n${b} *${ARCHIVE}\r\n\r\n`;
  assert.equal(findChecksum(text, ARCHIVE), 'b'.repeat(64));
  assert.equal(findChecksum(text, 'other.tar.gz'), a);
  assert.equal(findChecksum(text, 'missing.tar.gz'), undefined);
});

test('truncated download: failed, nothing installed', async () => {
  const archive = await temporalArchive([{ path: 'pad', content: randomBytes(4096) }]);
  await withMirror({ [`/${ARCHIVE}`]: { body: archive, truncateAt: 1000 } }, async (m, home) => {
    const url = `${m.url}/${ARCHIVE}`;
    const run = await runKind({ url, sha256: sha256hex(archive), dest: 'bin/t' }, { baseDir: home });
    assert.equal(run.error?.failure.reason, 'download-failed');
    assert.equal(run.error?.message, `download of ${url} failed: the connection was cut after 1000 of ${archive.length} bytes`);
    assert.deepEqual(tree(home), ['bin']);
  });
});

test('HTTP 404: the status and a hint', async () => {
  await withMirror({}, async (m, home) => {
    const url = `${m.url}/v1.25.1/temporal_cli_1.25.1_linux_amd64.tar.gz`;
    const run = await runKind({ url, sha256: 'a'.repeat(64), dest: 'bin/t' }, { baseDir: home });
    assert.equal(run.error?.failure.reason, 'download-failed');
    assert.equal(run.error?.message, `download of ${url} failed: HTTP 404`);
    assert.equal(describeFailure(run.error!.failure).hint, 'Check the version and the download mirror.');
    const viaChecksums = await runKind({ url, checksums_url: `${m.url}/v1.25.1/checksums.txt`, dest: 'bin/t' }, { baseDir: home });
    assert.equal(viaChecksums.error?.message, `download of ${m.url}/v1.25.1/checksums.txt failed: HTTP 404`);
    assert.deepEqual(tree(home), ['bin']);
  });
});

test('a server that stops sending fails after the idle timeout', async () => {
  const big = randomBytes(64 * 1024);
  await withMirror({ '/slow.bin': { body: big, stall: true } }, async (m, home) => {
    const url = `${m.url}/slow.bin`;
    await assert.rejects(installDownload({ url, sha256: sha256hex(big), dest: join(home, 'slow'), idleTimeoutMs: 300 }), (err: TaskError) => {
      assert.equal(err.failure.reason, 'download-failed');
      assert.equal(err.message, `download of ${url} failed: no data for 300 ms after ${big.length / 8} bytes`);
      assert.equal(describeFailure(err.failure).hint, 'Check your network connection and the download mirror.');
      return true;
    });
    // the kind takes the idle timeout from STIGMER_DOWNLOAD_TIMEOUT
    const run = await runKind({ url, sha256: sha256hex(big), dest: 'slow' }, { baseDir: home, env: { STIGMER_DOWNLOAD_TIMEOUT: '250ms' } });
    assert.equal(run.error?.message, `download of ${url} failed: no data for 250 ms after ${big.length / 8} bytes`);
    assert.deepEqual(tree(home), []);
  });
});

const hostile: { name: string; entries: (home: string) => ArchiveEntry[]; entry: (home: string) => string; why: string }[] = [
  { name: 'absolute path', entries: (h) => [{ path: `${h}/abs-evil`, content: 'x' }], entry: (h) => `${h}/abs-evil`, why: 'has an absolute path' },
  { name: '.. segment', entries: () => [{ path: 'ok/../../evil', content: 'x' }], entry: () => 'ok/../../evil', why: 'has a ".." path segment' },
  { name: 'symlink to /etc/passwd', entries: () => [{ path: 'passwd', type: 'symlink', linkpath: '/etc/passwd' }], entry: () => 'passwd', why: 'is a symlink to "/etc/passwd", outside the destination' },
  { name: 'relative symlink escape', entries: () => [{ path: 'sub/up', type: 'symlink', linkpath: '../../x' }], entry: () => 'sub/up', why: 'is a symlink to "../../x", outside the destination' },
  {
    name: 'symlink escaping through a symlink declared later',
    entries: () => [{ path: 'b', type: 'symlink', linkpath: 'a/../..' }, { path: 'a', type: 'symlink', linkpath: '.' }],
    entry: () => 'b',
    why: 'is a symlink to "a/../..", through the symlink "a"',
  },
  {
    name: 'file written through a symlink',
    entries: () => [{ path: 'lib', type: 'symlink', linkpath: 'share' }, { path: 'share', type: 'dir' }, { path: 'lib/evil', content: 'x' }],
    entry: () => 'lib/evil',
    why: 'is inside the symlink "lib"',
  },
  { name: 'hardlink escape', entries: () => [{ path: 'hl', type: 'link', linkpath: '../../outside' }], entry: () => 'hl', why: 'is a hard link to "../../outside", outside the destination' },
  { name: 'hardlink to an absolute path', entries: () => [{ path: 'hl', type: 'link', linkpath: '/etc/passwd' }], entry: () => 'hl', why: 'is a hard link to "/etc/passwd", outside the destination' },
  { name: 'device file', entries: () => [{ path: 'null', type: 'chardev' }], entry: () => 'null', why: 'is a device file' },
];

test('hostile archives are rejected whole: nothing installed, nothing written outside', async () => {
  const home = tempHome();
  const mirror = await startMirror({});
  try {
    mkdirSync(join(home, 'a', 'b'), { recursive: true });
    writeFileSync(join(home, 'a', 'keep'), 'untouched');
    const before = tree(home);
    for (const h of hostile) {
      const archive = await temporalArchive(h.entries(home));
      mirror.routes[`/${ARCHIVE}`] = archive;
      const dest = join(home, 'a', 'b', 'dest');
      const run = await runKind({ url: `${mirror.url}/${ARCHIVE}`, sha256: sha256hex(archive), dest }, { baseDir: home });
      assert.equal(run.error?.failure.reason, 'unsafe-archive', `${h.name}: ${run.error?.message ?? 'installed'}`);
      assert.equal(run.error?.message, `refused archive: entry "${h.entry(home)}" ${h.why}`, h.name);
      assert.equal(describeFailure(run.error!.failure).hint, 'Nothing was extracted. Use a trusted archive.');
      assert.deepEqual(tree(home), before, h.name);
      assert.equal(readFileSync(join(home, 'a', 'keep'), 'utf8'), 'untouched');
    }
  } finally {
    await mirror.close();
    await cleanupHome(home);
  }
});

test('safe links inside the archive are fine; the main path is dest when there is no single program', async () => {
  const archive = await buildTarGz([
    { path: 'tool-1.0', type: 'dir' },
    { path: 'tool-1.0/bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
    { path: 'tool-1.0/lib/data.txt', content: 'data' },
    { path: 'tool-1.0/bin/data', type: 'symlink', linkpath: '../lib/data.txt' },
    { path: 'tool-1.0/lib/copy.txt', type: 'link', linkpath: 'tool-1.0/lib/data.txt' },
  ]);
  await withMirror({ '/tool.tgz': archive }, async (m, home) => {
    const run = await runKind({ url: `${m.url}/tool.tgz`, sha256: sha256hex(archive), dest: 'tool' }, { baseDir: home });
    assert.equal(run.error, undefined, run.error?.message);
    const dest = join(home, 'tool');
    assert.equal(run.result!.outputs['path'], dest);
    assert.deepEqual(run.result!.outputs['files'], ['tool-1.0/bin/tool', 'tool-1.0/lib/copy.txt', 'tool-1.0/lib/data.txt']);
    assert.equal(readFileSync(join(dest, 'tool-1.0/bin/data'), 'utf8'), 'data');
    assert.equal(statSync(join(dest, 'tool-1.0/bin/tool')).mode & 0o777, 0o755);
  });
});

test('a tampered install is not satisfied and is downloaded again; force re-downloads', async () => {
  const archive = await temporalArchive();
  await withMirror({ [`/${ARCHIVE}`]: archive }, async (m, home) => {
    const w: DownloadWith = { url: `${m.url}/${ARCHIVE}`, sha256: sha256hex(archive), dest: 'bin/t' };
    const dest = join(home, 'bin', 't');
    assert.equal((await runKind(w, { baseDir: home })).result?.satisfied, false);
    writeFileSync(join(dest, 'temporal'), '#!/bin/sh\necho evil\n');
    assert.equal(await checkInstalled({ url: w.url, sha256: w.sha256, dest }), undefined);
    const again = await runKind(w, { baseDir: home });
    assert.equal(again.result?.satisfied, false);
    assert.equal(readFileSync(join(dest, 'temporal'), 'utf8'), TEMPORAL);
    assert.equal(m.requests.length, 2);

    assert.equal((await runKind(w, { baseDir: home })).result?.satisfied, true);
    assert.equal(m.requests.length, 2);
    assert.equal((await runKind(w, { baseDir: home, force: true })).result?.satisfied, false);
    assert.equal(m.requests.length, 3);

    // a missing file, or another version's URL, is not satisfied either
    await import('node:fs/promises').then((fs) => fs.rm(join(dest, 'LICENSE')));
    assert.equal(await checkInstalled({ url: w.url, sha256: w.sha256, dest }), undefined);
    assert.equal(await checkInstalled({ url: `${m.url}/other/${ARCHIVE}`, sha256: w.sha256, dest }), undefined);
    assert.deepEqual(temps(dest), []);
  });
});

test('a new version replaces an older install atomically', async () => {
  const v1 = await temporalArchive([{ path: 'old-only', content: 'v1' }]);
  const v2 = await temporalArchive();
  await withMirror({ '/v1/t.tar.gz': v1, '/v2/t.tar.gz': v2 }, async (m, home) => {
    const dest = join(home, 'bin', 'temporal');
    const r1 = await runKind({ url: `${m.url}/v1/t.tar.gz`, sha256: sha256hex(v1), dest }, { baseDir: home });
    assert.equal(r1.error, undefined, r1.error?.message);
    const r2 = await runKind({ url: `${m.url}/v2/t.tar.gz`, sha256: sha256hex(v2), dest }, { baseDir: home });
    assert.equal(r2.error, undefined, r2.error?.message);
    assert.deepEqual(r2.result!.outputs['files'], ['LICENSE', 'temporal']);
    assert.equal(existsSync(join(dest, 'old-only')), false);
    assert.deepEqual(readdirSync(join(home, 'bin')), ['temporal']);
  });
});

test('a dest holding files stigmer did not install is never replaced', async () => {
  const bin = Buffer.from('x');
  await withMirror({ '/x': bin }, async (m, home) => {
    mkdirSync(join(home, 'mine'));
    writeFileSync(join(home, 'mine', 'notes.txt'), 'keep me');
    const run = await runKind({ url: `${m.url}/x`, sha256: sha256hex(bin), dest: 'mine' }, { baseDir: home });
    assert.equal(run.error?.message, `${join(home, 'mine')} already exists and holds files stigmer did not install`);
    assert.equal(describeFailure(run.error!.failure).hint, 'Remove it, or choose another dest: stigmer only replaces its own installs.');
    assert.deepEqual(m.requests, []);
    assert.deepEqual(tree(home), ['mine', 'mine/notes.txt']);
  });
});

test('abort through the signal mid-download leaves nothing installed', async () => {
  const big = randomBytes(256 * 1024);
  await withMirror({ '/big.bin': { body: big, stall: true } }, async (m, home) => {
    const ac = new AbortController();
    const dest = join(home, 'big');
    const started = until('the download to begin', () => temps(dest).some((n) => existsSync(join(home, n, 'big.bin')) && statSync(join(home, n, 'big.bin')).size > 0), 60_000, { everyMs: 10 });
    const pending = runKind({ url: `${m.url}/big.bin`, sha256: sha256hex(big), dest }, { baseDir: home, signal: ac.signal });
    await started;
    ac.abort('SIGINT');
    const run = await pending;
    assert.equal(run.error?.failure.reason, 'aborted');
    assert.equal(run.error?.message, 'aborted: SIGINT');
    assert.deepEqual(tree(home), []);
  });
});

test('a download killed with SIGKILL leaves no install; the next run cleans up and installs', async () => {
  const archive = await temporalArchive([{ path: 'pad', content: randomBytes(128 * 1024) }]);
  await withMirror({ [`/${ARCHIVE}`]: { body: archive, stall: true } }, async (m, home) => {
    const dest = join(home, 'bin', 'temporal');
    const url = `${m.url}/${ARCHIVE}`;
    const installer = join(repoRoot, 'dist', 'src', 'process', 'download', 'install.js');
    const script = `import { installDownload } from ${JSON.stringify(installer)};
await installDownload({ url: ${JSON.stringify(url)}, sha256: ${JSON.stringify(sha256hex(archive))}, dest: ${JSON.stringify(dest)} });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, STIGMER_HOME: home }, stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    try {
      const deadline = Date.now() + 20_000;
      const part = (): string | undefined => temps(dest).find((n) => n.endsWith('.part'));
      while (!(part() && statSync(join(home, 'bin', part()!)).size > 0)) {
        assert.ok(Date.now() < deadline, 'the child never started downloading');
        await sleep(20);
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    assert.equal(existsSync(dest), false);
    assert.ok(temps(dest).length > 0, 'expected the killed run to leave temp files');

    m.routes[`/${ARCHIVE}`] = archive;
    const run = await runKind({ url, sha256: sha256hex(archive), dest }, { baseDir: home });
    assert.equal(run.error, undefined, run.error?.message);
    assert.deepEqual(readdirSync(join(home, 'bin')), ['temporal']);
    assert.ok(lstatSync(join(dest, '.stigmer-install.json')).isFile());
  });
});

test('mode: octal strings, and YAML integers written with octal digits', () => {
  assert.equal(parseMode('0755'), 0o755);
  assert.equal(parseMode('755'), 0o755);
  assert.equal(parseMode('0o700'), 0o700);
  assert.equal(parseMode(755), 0o755);
  assert.equal(parseMode(0o755), 0o755);
  assert.equal(parseMode('04755'), undefined);
  assert.equal(parseMode('0999'), undefined);
});

test('invalid parameters are reported as invalid input', async () => {
  const home = tempHome();
  try {
    const bad = await runKind({ url: 'ftp://example.invalid/x.tar.gz', sha256: 'a'.repeat(64), dest: 'x' }, { baseDir: home });
    assert.equal(bad.error?.message, 'Expected url to be an http(s) URL, got "ftp://example.invalid/x.tar.gz"');
    const sha = await runKind({ url: 'http://127.0.0.1:9/x.tar.gz', sha256: 'abc', dest: 'x' }, { baseDir: home });
    assert.equal(sha.error?.message, 'Expected sha256 to be 64 hex digits, got "abc"');
    const mode = await runKind({ url: 'http://127.0.0.1:9/x', sha256: 'a'.repeat(64), dest: 'x', mode: 'rwx' }, { baseDir: home });
    assert.equal(mode.error?.message, 'Expected mode to be octal permissions like "0755", got "rwx"');
    const ex = await runKind({ url: 'http://127.0.0.1:9/x', sha256: 'a'.repeat(64), dest: 'x', extract: 'yes' }, { baseDir: home });
    assert.equal(ex.error?.message, 'Expected extract to be true or false, got "yes"');
    assert.deepEqual(tree(home), []);
  } finally {
    await cleanupHome(home);
  }
});

// ---------------------------------------------------------------------------------------------
// .tar.zst archives (Ollama's Linux releases), with both decoders: the `zstd` program and fzstd.

const OLLAMA_TREE: ArchiveEntry[] = [
  { path: 'bin', type: 'dir' },
  { path: 'bin/ollama', content: '#!/bin/sh\necho "ollama version is 0.32.15"\n', mode: 0o755 },
  { path: 'lib/ollama', type: 'dir' },
  { path: 'lib/ollama/libggml-base.so', content: randomBytes(300_000) },
  { path: 'lib/ollama/cuda_v12/libcudart.so.12.8.90', content: 'cuda'.repeat(50_000) },
  { path: 'lib/ollama/cuda_v12/libcudart.so.12', type: 'symlink', linkpath: 'libcudart.so.12.8.90' },
];

for (const decoder of ['program', 'js'] as const) {
  const env: Record<string, string> = decoder === 'js' ? { STIGMER_ZSTD: 'js' } : {};
  const withDecoder = async <T>(fn: () => Promise<T>): Promise<T> => {
    const before = process.env['STIGMER_ZSTD'];
    if (decoder === 'js') process.env['STIGMER_ZSTD'] = 'js';
    else delete process.env['STIGMER_ZSTD'];
    try {
      return await fn();
    } finally {
      if (before === undefined) delete process.env['STIGMER_ZSTD'];
      else process.env['STIGMER_ZSTD'] = before;
    }
  };

  test(`.tar.zst (${decoder} decoder): verified by a sha256sum.txt with ./ names, extracted with its bin/ + lib/ layout, modes and links kept`, async () => {
    const archive = buildTarZst(OLLAMA_TREE);
    const sums = `${sha256hex(archive)}  ./ollama-linux-amd64.tar.zst\n${sha256hex('other')}  ./ollama-darwin.tgz\n`;
    await withMirror({ '/v0.32.15/ollama-linux-amd64.tar.zst': archive, '/v0.32.15/sha256sum.txt': sums }, async (m, home) => {
      const w: DownloadWith = { url: `${m.url}/v0.32.15/ollama-linux-amd64.tar.zst`, checksums_url: `${m.url}/v0.32.15/sha256sum.txt`, dest: 'bin/ollama-0.32.15' };
      const run = await withDecoder(() => runKind(w, { baseDir: home, env }));
      assert.equal(run.error, undefined, run.error?.message);
      const dest = join(home, 'bin', 'ollama-0.32.15');
      assert.deepEqual(run.result!.outputs['files'], ['bin/ollama', 'lib/ollama/cuda_v12/libcudart.so.12.8.90', 'lib/ollama/libggml-base.so']);
      assert.equal(run.result!.outputs['path'], dest);
      assert.equal(statSync(join(dest, 'bin/ollama')).mode & 0o777, 0o755);
      assert.equal(statSync(join(dest, 'lib/ollama/libggml-base.so')).mode & 0o777, 0o644);
      assert.ok(readFileSync(join(dest, 'lib/ollama/libggml-base.so')).equals(OLLAMA_TREE[3]!.content as Buffer));
      assert.equal(readFileSync(join(dest, 'lib/ollama/cuda_v12/libcudart.so.12'), 'utf8'), 'cuda'.repeat(50_000));
      assert.ok(lstatSync(join(dest, 'lib/ollama/cuda_v12/libcudart.so.12')).isSymbolicLink());
      const how = decoder === 'js' ? 'fzstd (JavaScript)' : 'zstd (';
      assert.ok(run.lines.some((l) => l.startsWith(`extracting ollama-linux-amd64.tar.zst with ${how}`)), run.lines.join('\n'));
      assert.deepEqual(temps(dest), []);
    });
  });

  test(`hostile .tar.zst archives (${decoder} decoder) are rejected whole with the same messages as .tar.gz`, async () => {
    const home = tempHome();
    const mirror = await startMirror({});
    try {
      mkdirSync(join(home, 'a', 'b'), { recursive: true });
      writeFileSync(join(home, 'a', 'keep'), 'untouched');
      const before = tree(home);
      for (const h of hostile) {
        const archive = buildTarZst([{ path: 'LICENSE', content: 'MIT\n' }, { path: 'ollama', content: TEMPORAL, mode: 0o755 }, ...h.entries(home)]);
        mirror.routes['/o.tar.zst'] = archive;
        const dest = join(home, 'a', 'b', 'dest');
        const run = await withDecoder(() => runKind({ url: `${mirror.url}/o.tar.zst`, sha256: sha256hex(archive), dest }, { baseDir: home, env }));
        assert.equal(run.error?.failure.reason, 'unsafe-archive', `${h.name}: ${run.error?.message ?? 'installed'}`);
        assert.equal(run.error?.message, `refused archive: entry "${h.entry(home)}" ${h.why}`, h.name);
        assert.deepEqual(tree(home), before, h.name);
        assert.equal(readFileSync(join(home, 'a', 'keep'), 'utf8'), 'untouched');
      }
    } finally {
      await mirror.close();
      await cleanupHome(home);
    }
  });

  test(`a damaged .tar.zst (${decoder} decoder) with a matching sha256 is a bad archive; nothing installed`, async () => {
    const good = buildTarZst(OLLAMA_TREE);
    const cases: [string, Buffer][] = [
      ['not zstd at all', Buffer.from('this is not zstd data at all, just text')],
      ['cut in the middle of a frame', good.subarray(0, Math.floor(good.length / 2))],
      ['zstd of something that is not a tar', zstdCompress(randomBytes(4096))],
    ];
    for (const [name, body] of cases) {
      await withMirror({ '/o.tar.zst': body }, async (m, home) => {
        const run = await withDecoder(() => runKind({ url: `${m.url}/o.tar.zst`, sha256: sha256hex(body), dest: 'o' }, { baseDir: home, env }));
        assert.equal(run.error?.failure.reason, 'bad-archive', `${name}: ${run.error?.message ?? 'installed'}`);
        assert.match(run.error!.message, /o\.tar\.zst/, name);
        assert.deepEqual(tree(home), [], name);
      });
    }
  });
}
