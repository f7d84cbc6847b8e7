/**
 * Nothing lost when the disk is full or read-only: a data dir on a small tmpfs (mounted by the
 * test: root only), filled to a few KiB, then `up` and `down`. A failed state write fails the
 * task and the run stops what it started from memory; every error is one line naming the path and
 * the errno; `down` works without a writable lock or state. Nothing is ever left running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeft, cleanupHome, fixture, freePort, runCli, tempHome } from './helpers.js';

const node = JSON.stringify(process.execPath);
const service = JSON.stringify(fixture('service.mjs'));
const SIZE_KIB = 512;

function mount(dir: string, opts: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]).status === 0;
}
function umount(dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}

const canMount = ((): boolean => {
  const dir = mkdtempSync(join(tmpdir(), 'stigmer-mount-probe-'));
  try {
    if (!mount(dir, 'size=64k')) return false;
    umount(dir);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

async function withTmpfs(fn: (home: string, data: string) => Promise<void>): Promise<void> {
  const home = tempHome();
  const data = mkdtempSync(join(tmpdir(), 'stigmer-tmpfs-'));
  assert.ok(mount(data, `size=${SIZE_KIB}k,mode=0700`), 'mount tmpfs');
  try {
    await fn(home, data);
  } finally {
    // Whatever a failure left, stop it by the test's own record before unmounting.
    await runCli(['down', '--data-dir', data], { home });
    umount(data);
    rmSync(data, { recursive: true, force: true });
    await cleanupHome(home);
  }
}

/** Fill the tmpfs so that `freeKiB` stay free. */
function fill(data: string, freeKiB: number): void {
  const st = spawnSync('df', ['-k', '--output=avail', data], { encoding: 'utf8' });
  const avail = Number(st.stdout.trim().split('\n').pop());
  if (avail > freeKiB) writeFileSync(join(data, 'filler'), Buffer.alloc((avail - freeKiB) * 1024));
}

async function stackFile(home: string): Promise<string> {
  const [p1, p2] = [await freePort(), await freePort()];
  const svc = (name: string, port: number, needs?: string): string[] => [
    `  ${name}:`,
    '    uses: process',
    ...(needs ? [`    needs: [${needs}]`] : []),
    `    with: { command: ${node}, args: [${service}, "--listen", "${port}", "--lines", "40"], ports: [${port}], ready: { tcp: { host: 127.0.0.1, port: ${port} } } }`,
  ];
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(file, ['version: 1', 'tasks:', ...svc('one', p1), ...svc('two', p2, 'one'), '  after:', '    uses: exec', '    needs: [two]', '    with: { command: sh, args: ["-c", "echo done"] }', ''].join('\n'));
  return file;
}

/** One line naming a path under the data dir and the errno, and no stack trace. */
function assertOneLineErrno(text: string, data: string, errno: string): void {
  assert.doesNotMatch(text, /internal error|\n\s+at /);
  assert.match(text, new RegExp(`${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[\\w./-]+: ${errno} \\(`), text);
}

test('a full disk at any point of up loses nothing: the run fails with path and errno and stops what it started', { skip: !canMount && 'needs root to mount a tmpfs' }, async () => {
  for (const freeKiB of [0, 4, 8, 12, 16, 24, 32, 48]) {
    await withTmpfs(async (home, data) => {
      const file = await stackFile(home);
      fill(data, freeKiB);
      const up = await runCli(['up', '-f', file, '--data-dir', data], { home });
      const out = up.stdout + up.stderr;
      if (up.code !== 0) {
        assert.equal(up.code, 1, `${freeKiB} KiB free: ${out}`);
        assertOneLineErrno(up.stderr, data, 'ENOSPC');
        await assertNothingLeft(home);
      } else {
        // It fit: down must stop it all, even on the full disk.
        const down = await runCli(['down', '--data-dir', data], { home });
        assert.ok(down.code === 0 || down.code === 1, `${freeKiB} KiB free: down ${down.code}: ${down.stdout}${down.stderr}`);
        await assertNothingLeft(home);
      }
    });
  }
});

test('a state write failing at any point of up (simulated ENOSPC) fails the run, names the path and errno, and leaves nothing running', async () => {
  const home = tempHome();
  try {
    const file = await stackFile(home);
    // Every write of up in turn is the first to fail, until up writes fewer times than that.
    for (let n = 1; ; n++) {
      const up = await runCli(['up', '-f', file, '--data-dir', home], { home, env: { STIGMER_FAULT_STATE_WRITE: String(n) } });
      if (up.code === 0) {
        assert.ok(n > 4, `up needs at least the four records of its two services, yet it succeeded when write ${n} failed`);
        assert.equal((await runCli(['down', '--data-dir', home], { home })).code, 0);
        break;
      }
      assert.equal(up.code, 1, `write ${n}: ${up.stdout}${up.stderr}`);
      assertOneLineErrno(up.stderr, home, 'ENOSPC');
      assert.match(up.stderr, /what this run started was stopped from memory/);
      await assertNothingLeft(home);
      const down = await runCli(['down', '--data-dir', home], { home });
      assert.ok(down.code === 0, `write ${n}: down ${down.code}: ${down.stdout}${down.stderr}`);
    }
  } finally {
    await cleanupHome(home);
  }
});

test('down on a read-only data dir stops everything best effort, says so, exits 1; up there exits 2', { skip: !canMount && 'needs root to mount a tmpfs' }, async () => {
  await withTmpfs(async (home, data) => {
    const file = await stackFile(home);
    const up = await runCli(['up', '-f', file, '--data-dir', data], { home });
    assert.equal(up.code, 0, up.stderr);
    // The same data dir, seen read-only (a remount would fail while the services write their logs).
    const ro = mkdtempSync(join(tmpdir(), 'stigmer-ro-'));
    assert.equal(spawnSync('mount', ['--bind', '-o', 'ro', data, ro]).status, 0);
    try {
      // The stack's supervisor (it holds the lock) does the down, through the read-only view.
      const down = await runCli(['down', '--data-dir', ro], { home });
      assert.equal(down.code, 1, down.stdout + down.stderr);
      assert.match(down.stderr, /cannot write .*state\.json.*: EROFS \(read-only file system\)/);
      assert.match(down.stdout, /one: undone/);
      assert.match(down.stdout, /two: undone/);
      await assertNothingLeft(home);
      // The state on disk is stale (it still names them); with no supervisor left, a down takes the
      // lock itself, which it cannot on a read-only dir: it says so and undoes from the state anyway.
      const again1 = await runCli(['down', '--data-dir', ro], { home });
      assert.equal(again1.code, 1, again1.stdout + again1.stderr);
      assert.match(again1.stderr, new RegExp(`cannot take the lock ${ro}/run\\.lock: EROFS \\(read-only file system\\); stopping what the state records anyway`));
      assert.match(again1.stderr, /cannot write .*state\.json.*: EROFS \(read-only file system\)/);
      await assertNothingLeft(home);
      const again = await runCli(['up', '-f', file, '--data-dir', ro], { home });
      assert.equal(again.code, 2, again.stderr);
      assertOneLineErrno(again.stderr, ro, 'EROFS');
    } finally {
      umount(ro);
      rmSync(ro, { recursive: true, force: true });
    }
  });
});
