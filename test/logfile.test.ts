import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { tailLines } from '../src/process/log-file.js';
import { LogScanner } from '../src/process/probes.js';
import { cleanupHome, tempHome } from './helpers.js';

test('tailLines: the last n lines, ANSI stripped; [] for a missing or empty file', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'a.log');
  assert.deepEqual(tailLines(file), []);
  writeFileSync(file, '');
  assert.deepEqual(tailLines(file), []);
  writeFileSync(file, 'one\r\n\u001b[32mtwo\u001b[0m\nthree\n');
  assert.deepEqual(tailLines(file), ['one', 'two', 'three']);
  assert.deepEqual(tailLines(file, 2), ['two', 'three']);
});

test('tailLines: since an offset, only what came after it; a line cut by maxBytes is dropped', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'svc.log');
  writeFileSync(file, 'earlier run\n');
  const since = statSync(file).size;
  assert.deepEqual(tailLines(file, 20, { since }), []);
  appendFileSync(file, 'abcdef\nline 2\nline 3\n');
  assert.deepEqual(tailLines(file, 20, { since }), ['abcdef', 'line 2', 'line 3']);
  assert.deepEqual(tailLines(file, 1, { since }), ['line 3']);
  // 17 bytes from the end start inside "abcdef": with `since` the cut line is left out ...
  assert.deepEqual(tailLines(file, 20, { since, maxBytes: 17 }), ['line 2', 'line 3']);
  // ... without it, it is kept as cut.
  assert.deepEqual(tailLines(file, 20, { maxBytes: 17 }), ['ef', 'line 2', 'line 3']);
});

test('captured lines: tailLines shows the text without its stamp; a log probe matches what the service printed, across a rotation, never stigmer\'s own lines', async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'svc.log');
  writeFileSync(file, '2026-12-02T06:37:22.123Z out \u001b[32mhello\u001b[0m\n2026-12-02T06:37:22.200Z --- restarted after exit code 1 (1/5)\nplain old line\n');
  assert.deepEqual(tailLines(file), ['hello', '--- restarted after exit code 1 (1/5)', 'plain old line']);

  const scanner = new LogScanner(file, 0);
  assert.equal(scanner.scan(/^restarted/), false, "stigmer's own line is not the service's output");
  assert.equal(new LogScanner(file, 0).scan(/^hello$/), true, 'anchored patterns see the text, not the stamp');
  const later = new LogScanner(file, statSync(file).size);
  assert.equal(later.scan(/./), false);
  // Rotated: a new file in its place, already longer than where the scanner was.
  renameSync(file, `${file}.1`);
  writeFileSync(file, `${'2026-12-02T06:37:23.000Z out filler\n'.repeat(10)}2026-12-02T06:37:23.000Z err ready to serve\n`);
  assert.equal(later.scan(/^ready to serve$/), true);
});
