/**
 * Failures as data: every reason renders through describeFailure, the JSON output carries each
 * reason's own fields, and a kind's unexpected throw is an internal error whose stack trace
 * shows only with STIGMER_DEBUG=1, and then only in the final report: never in a task line, a
 * JSON event or the state file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runGraph } from '../src/engine/run.js';
import { reportFailures } from '../src/engine/drivers.js';
import { buildGraph } from '../src/engine/graph.js';
import { loadTasksFile } from '../src/engine/load.js';
import { StateStore } from '../src/engine/state.js';
import type { EngineEvent, FailedEvent } from '../src/model/event.js';
import { describeFailure, fail, type Failure } from '../src/model/failure.js';
import { kindRegistry, type TaskKind } from '../src/model/kind.js';
import type { TaskSpec } from '../src/model/task.js';
import { createJsonRenderer } from '../src/render/json.js';
import { createPlainRenderer } from '../src/render/plain.js';
import { kinds } from '../src/commands/kinds.js';
import { repoRoot } from './helpers.js';

const sink = (lines: string[]): Writable =>
  new Writable({
    write: (chunk, _enc, cb) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });

test('every reason renders one line; a kind or the tasks file may override the hint', () => {
  const all: Failure[] = [
    fail.exitNonZero('make', 2, null, ['boom'], '/l/a.log'),
    fail.exitedBeforeReady(null, 'SIGKILL', [], '/l/a.log'),
    fail.readyTimeout('GET /healthz', 1500, 'HTTP 503', [], '/l/a.log'),
    fail.portTimeout('localhost', 7233, 30_000),
    fail.portInUse(7233, { pid: 4121, command: 'temporal server start-dev' }),
    fail.spawnFailed('temporal', 'ENOENT'),
    fail.timeout(2000),
    fail.aborted('interrupted by SIGINT'),
    fail.downloadFailed('https://x/a.tgz', 'HTTP 404'),
    fail.checksumMissing('a.tgz', 'https://x/checksums.txt'),
    fail.checksumMismatch('https://x/a.tgz', 'a'.repeat(64), 'b'.repeat(64)),
    fail.unsafeArchive('../etc/passwd', 'escapes the destination'),
    fail.badArchive('a.tgz', 'TAR_BAD_ARCHIVE'),
    fail.badArchive('a.tgz'),
    fail.destNotOurs('/opt/bin'),
    fail.writeFailed('write', '/d/a.tgz', 'ENOSPC'),
    fail.missingSecret('ANTHROPIC_API_KEY', 'CI is set'),
    fail.llmUnreachable('http://127.0.0.1:11434', 'llama3.2', 'connection refused'),
    fail.modelMissing('http://127.0.0.1:11434', 'llama3.2'),
    fail.invalidInput('Expected with.port to be a number, got "x"'),
    fail.rollbackFailed('EPERM', 'stop its previous instance'),
    fail.internalError('exec', new Error('kaboom')),
  ];
  for (const f of all) {
    const { message } = describeFailure(f);
    assert.ok(message.length > 0 && !message.includes('\n'), `${f.reason}: ${JSON.stringify(message)}`);
  }
  assert.equal(describeFailure(all[4]!).message, 'port 7233 is held by pid 4121 (temporal server start-dev)');
  assert.equal(describeFailure(all[4]!).hint, 'Stop that process, or change the port.');
  assert.equal(describeFailure({ ...all[4]!, hint: 'Use it as an external Temporal.' }).hint, 'Use it as an external Temporal.');
  assert.equal(describeFailure(all[20]!).message, 'could not stop its previous instance: EPERM');
  assert.equal(describeFailure(all[21]!).message, 'Internal error in task kind exec: kaboom');
  // the two check-llm failures are told apart, and say different things to do
  assert.notEqual(describeFailure(all[17]!).hint, describeFailure(all[18]!).hint);
});

test('the stack file gives check-llm a different hint for each of its two failures', async () => {
  const file = await loadTasksFile(join(repoRoot, 'stigmer.tasks.yaml'), { kinds });
  const hints = file.tasks.get('check-llm')?.hints ?? {};
  assert.ok(hints['llm-unreachable'] && hints['model-missing'], JSON.stringify(hints));
  assert.notEqual(hints['llm-unreachable'], hints['model-missing']);
  assert.match(hints['model-missing']!, /ollama pull \$\{\{ tasks\.resolve-config\.outputs\.llm\.model \}\}/);
});

test('the JSON output carries the reason\'s own fields next to the rendered message', () => {
  const lines: string[] = [];
  const json = createJsonRenderer(sink(lines));
  const failed = (task: string, failure: Failure): FailedEvent => ({ type: 'failed', task, time: 0, failure, durationMs: 12, optional: false, mode: 'service' });
  json.event(failed('t', fail.portInUse(7233, { pid: 4121, command: 'temporal server start-dev' })));
  json.event(failed('d', fail.checksumMismatch('https://x/a.tgz', 'a'.repeat(64), 'b'.repeat(64))));
  json.event(failed('s', fail.exitedBeforeReady(3, null, ['line 1', 'exiting'], '/l/s.log')));
  json.event({ type: 'skipped', task: 'after', time: 0, why: 'needs t, which failed' });
  const [port, sum, exited, skipped] = lines.map((l) => JSON.parse(l) as { error?: Record<string, unknown>; why?: string; reason?: string });
  assert.deepEqual(port!.error, {
    reason: 'port-in-use',
    port: 7233,
    holder: { pid: 4121, command: 'temporal server start-dev' },
    message: 'port 7233 is held by pid 4121 (temporal server start-dev)',
    hint: 'Stop that process, or change the port.',
  });
  assert.equal(sum!.error!['url'], 'https://x/a.tgz');
  assert.equal(sum!.error!['expected'], 'a'.repeat(64));
  assert.equal(sum!.error!['actual'], 'b'.repeat(64));
  assert.equal(exited!.error!['exitCode'], 3);
  assert.deepEqual(exited!.error!['logTail'], ['line 1', 'exiting']);
  assert.equal(exited!.error!['log'], '/l/s.log');
  assert.equal(exited!.error!['message'], 'exited with code 3 before it was ready');
  assert.equal(skipped!.why, 'needs t, which failed');
  assert.equal(skipped!.reason, undefined, 'reason is only ever the failure enum, under error');
});

/** Runs one task of a kind that throws a plain Error: what each output shows of it. */
async function throwingRun(debug: boolean): Promise<{ plain: string[]; json: string[]; state: string; report: string; failure: Failure }> {
  const dir = mkdtempSync(join(tmpdir(), 'stigmer-test-failures-'));
  const before = process.env['STIGMER_DEBUG'];
  if (debug) process.env['STIGMER_DEBUG'] = '1';
  else delete process.env['STIGMER_DEBUG'];
  try {
    const throws: TaskKind = {
      name: 'test-throws',
      mode: 'oneshot',
      run: () => Promise.reject(new Error('kaboom')),
    };
    const spec: TaskSpec = { name: 'boom', uses: 'test-throws', needs: [], with: {}, optional: false, env: {} };
    const graph = buildGraph({ path: '/t/x.yaml', displayPath: 'x.yaml', dir, tasks: new Map([['boom', spec]]), usesConfig: false });
    const plain: string[] = [];
    const json: string[] = [];
    const renderers = [createPlainRenderer(sink(plain)), createJsonRenderer(sink(json))];
    const events: EngineEvent[] = [];
    const outcome = await runGraph({
      graph,
      kinds: kindRegistry({ 'test-throws': async () => ({ default: throws }) }),
      baseDir: dir,
      dataDir: dir,
      state: new StateStore(join(dir, 'state.json')),
      config: undefined,
      env: {},
      signal: new AbortController().signal,
      canPrompt: false,
      emit: (ev) => {
        events.push(ev);
        for (const r of renderers) r.event(ev);
      },
    });
    const failure = events.find((e): e is FailedEvent => e.type === 'failed')!.failure;
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
    try {
      reportFailures(outcome, new Map([['boom', failure]]));
    } finally {
      process.stderr.write = write;
    }
    return { plain, json, state: readFileSync(join(dir, 'state.json'), 'utf8'), report: written.join(''), failure };
  } finally {
    if (before === undefined) delete process.env['STIGMER_DEBUG'];
    else process.env['STIGMER_DEBUG'] = before;
    rmSync(dir, { recursive: true, force: true });
  }
}

const STACK = /\n\s+at /;

test('a kind\'s unexpected throw: "Internal error in task kind X: <message>", no stack trace anywhere', async () => {
  const r = await throwingRun(false);
  assert.equal(r.failure.reason, 'internal-error');
  assert.equal(describeFailure(r.failure).message, 'Internal error in task kind test-throws: kaboom');
  assert.ok(r.plain.some((l) => /boom: FAILED: Internal error in task kind test-throws: kaboom \(\d+ ms\)$/.test(l)), r.plain.join('\n'));
  assert.equal(JSON.parse(r.json.find((l) => l.includes('"failed"'))!).error.message, 'Internal error in task kind test-throws: kaboom');
  assert.equal((JSON.parse(r.state) as { tasks: Record<string, { error?: string }> }).tasks['boom']?.error, 'Internal error in task kind test-throws: kaboom');
  for (const [what, text] of Object.entries({ plain: r.plain.join('\n'), json: r.json.join('\n'), state: r.state, report: r.report })) {
    assert.doesNotMatch(text, STACK, `${what} holds a stack trace`);
    assert.doesNotMatch(text, /failures\.test\.js/, `${what} names a source file`);
  }
  assert.match(r.report, /^stigmer: boom failed: Internal error in task kind test-throws: kaboom\n  hint: .*STIGMER_DEBUG=1/);
});

test('with STIGMER_DEBUG=1 the stack trace follows the final report, and only there', async () => {
  const r = await throwingRun(true);
  assert.match(r.report, /^stigmer: boom failed: Internal error in task kind test-throws: kaboom\n/);
  assert.match(r.report, /Error: kaboom\n\s+at /);
  for (const [what, text] of Object.entries({ plain: r.plain.join('\n'), json: r.json.join('\n'), state: r.state })) assert.doesNotMatch(text, STACK, `${what} holds a stack trace`);
});
