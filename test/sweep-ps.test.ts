/**
 * The marker sweep without /proc (macOS): the environments come from `ps -E`. The parser and the
 * marker match are tested on recorded macOS output; the whole path (ps, selection, stop) runs here
 * on Linux by asking for the `ps` source, since procps prints the environment too (`ps e`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { isAlive, readProcStat } from '../src/process/identity.js';
import { findMarked, INSTANCE_VAR, parsePsEnviron, psEnvironArgs, psMarker, STACK_VAR, sweep } from '../src/process/sweep.js';
import { cleanupHome, tempHome, until } from './helpers.js';

// `ps -A -E -ww -o pid=,ppid=,pgid=,command=` on macOS 14 (user "ana"; paths shortened): another
// user's processes show no environment, a data dir may hold spaces, and one dir is a prefix of another.
const MACOS = [
  '    1     0     1 /sbin/launchd',
  '  388     1   388 /usr/libexec/logd',
  ' 4120  4118  4120 -zsh TERM_PROGRAM=Apple_Terminal SHELL=/bin/zsh TMPDIR=/var/folders/k2/T/ USER=ana HOME=/Users/ana',
  ' 5301     1  5301 /Users/ana/.stigmer/bin/temporal server start-dev --port 7233 STIGMER_STACK=/Users/ana/Library/Application Support/stigmer STIGMER_INSTANCE=3f9a0c11d2e4 PATH=/usr/bin:/bin HOME=/Users/ana',
  ' 5302  5301  5301 /Users/ana/.stigmer/bin/temporal-ui STIGMER_INSTANCE=3f9a0c11d2e4 STIGMER_STACK=/Users/ana/Library/Application Support/stigmer',
  ' 5410     1  5410 node server.js STIGMER_STACK=/Users/ana/Library/Application Support/stigmer-2 STIGMER_INSTANCE=77aa00bb11cc',
  ' 5500  4120  5500 grep STIGMER_STACK=/Users/ana/Library/Application',
  '',
  'not a ps line',
].join('\n');
const STACK = '/Users/ana/Library/Application Support/stigmer';

test('ps output in the macOS format: pid, ppid, pgid and the words after them, malformed lines left out', () => {
  const entries = parsePsEnviron(MACOS);
  assert.deepEqual(
    entries.map((e) => [e.pid, e.ppid, e.pgid]),
    [[1, 0, 1], [388, 1, 388], [4120, 4118, 4120], [5301, 1, 5301], [5302, 5301, 5301], [5410, 1, 5410], [5500, 4120, 5500]],
  );
  assert.equal(entries[1]!.text, '/usr/libexec/logd');
  assert.match(entries[3]!.text, /^\/Users\/ana\/\.stigmer\/bin\/temporal server start-dev --port 7233 STIGMER_STACK=/);
});

test('the marker matches its whole data dir (spaces included), not a longer one nor a cut one, and gives the instance', () => {
  const entries = parsePsEnviron(MACOS);
  const marked = entries.map((e) => [e.pid, psMarker(e, STACK)] as const).filter(([, m]) => m);
  assert.deepEqual(marked, [
    [5301, { instance: '3f9a0c11d2e4' }],
    [5302, { instance: '3f9a0c11d2e4' }],
  ]);
  assert.deepEqual(psMarker(entries[5]!, `${STACK}-2`), { instance: '77aa00bb11cc' });
  assert.equal(psMarker(entries[4]!, '/Users/ana'), undefined);
});

test('ps is asked for the environment the way each platform spells it', () => {
  assert.deepEqual(psEnvironArgs('darwin'), ['-A', '-E', '-ww', '-o', 'pid=,ppid=,pgid=,command=']);
  assert.deepEqual(psEnvironArgs('linux'), ['-A', 'eww', '-o', 'pid=,ppid=,pgid=,command=']);
});

test('through ps (forced on Linux): the same marked processes as /proc, the instance filter, and the sweep stops an escapee', async () => {
  const home = tempHome();
  const dataDir = join(home, 'data dir');
  // A marked service and a grandchild that left its group (setsid), as an escapee would.
  const script = `const { spawn } = require('node:child_process'); spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' }).unref(); setInterval(() => {}, 1000);`;
  const svc = spawn(process.execPath, ['-e', script], { env: { ...process.env, [STACK_VAR]: dataDir, [INSTANCE_VAR]: 'c0ffee123456' }, detached: true, stdio: 'ignore' });
  svc.unref();
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { ...process.env, [STACK_VAR]: `${dataDir}-2`, [INSTANCE_VAR]: 'aaaaaaaaaaaa' }, detached: true, stdio: 'ignore' });
  other.unref();
  try {
    // (between its fork and its setsid the grandchild still shows the service's group: wait until it has left)
    const settled = (): boolean => {
      const marked = findMarked(dataDir, undefined, 'proc');
      return marked.length === 2 && marked.every((p) => p.pid === svc.pid || (p.pgid === p.pid && p.command.endsWith('setInterval(() => {}, 1000)')));
    };
    await until('the service and its grandchild, which left the group', () => settled() && !!readProcStat(other.pid!));
    const byProc = findMarked(dataDir, undefined, 'proc');
    const byPs = findMarked(dataDir, undefined, 'ps');
    const ids = (ps: typeof byProc): string[] => ps.map((p) => `${p.pid}/${p.pgid}/${p.startTime}/${p.instance}`).sort();
    assert.deepEqual(ids(byPs), ids(byProc));
    assert.ok(byPs.some((p) => p.pid === svc.pid && p.pgid === svc.pid));
    const grandchild = byPs.find((p) => p.pid !== svc.pid)!;
    assert.notEqual(grandchild.pgid, svc.pid, 'the grandchild left the group');
    assert.match(grandchild.command, /setInterval/);
    assert.doesNotMatch(grandchild.command, /STIGMER_STACK/);
    assert.equal(findMarked(dataDir, 'c0ffee123456', 'ps').length, 2);
    assert.equal(findMarked(dataDir, '000000000000', 'ps').length, 0);

    const res = await sweep(dataDir, { source: 'ps', graceMs: 5000 });
    assert.deepEqual(res.found.map((p) => p.pid).sort(), byPs.map((p) => p.pid).sort());
    assert.equal(res.survived.length, 0);
    for (const p of byPs) assert.equal(isAlive(p), false, `pid ${p.pid} was stopped`);
    assert.deepEqual(findMarked(dataDir, undefined, 'ps'), []);
    assert.ok(readProcStat(other.pid!), 'the other stack was left alone');
  } finally {
    for (const p of [...findMarked(dataDir, undefined, 'proc'), ...findMarked(`${dataDir}-2`, undefined, 'proc')]) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await cleanupHome(home);
  }
});
