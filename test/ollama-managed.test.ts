/**
 * Managed Ollama through `stigmer local start` (issue 11), offline: the stand-in `ollama`
 * (test/fixtures/ollama.mjs) in real .tar.zst / .tgz release archives with a sha256sum.txt, served
 * by a local mirror; the stand-in Temporal from its mirror; the fixture server and agent-runner
 * (the real ones for the agent run). Models live in a temp OLLAMA_MODELS; nothing reaches beyond
 * loopback, and every test stops what it started (by pid) and checks nothing is left.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, cleanupHome, cliEnv, cliPath, fixture, freePort, processesWithHome, runCli, sleep, tempHome, type CliResult } from './helpers.js';
import { readEvents } from '../src/supervisor/events.js';
import { hasExited, readProcStat } from '../src/process/identity.js';
import { localStackEnv, startTemporalMirror, type TemporalMirror } from './temporal-mirror.js';
import { startOllamaMirror, standInOllama, type OllamaMirror, type OllamaMirrorOptions } from './ollama-mirror.js';

interface Rig {
  home: string;
  scratch: string;
  port: number;
  baseUrl: string;
  models: string;
  env: Record<string, string | undefined>;
  ollamaMirror: OllamaMirror;
  /** what the stand-in recorded: serve starts and pulls */
  records(): { event: string; pid: number; model?: string; from?: number; host?: string; models?: string; managedBy?: string | null }[];
  cli(args: string[], extra?: Record<string, string | undefined>): Promise<CliResult>;
}

let temporalMirror: TemporalMirror | undefined;
after(async () => {
  await temporalMirror?.close();
});

/** Alive and not a zombie (a stopped service's parent may not have reaped it yet). */
function alive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && !hasExited(stat);
}

async function rig(t: TestContext, opts: OllamaMirrorOptions & { managed?: 'auto' | 'true'; realStack?: boolean } = {}): Promise<Rig> {
  temporalMirror ??= await startTemporalMirror();
  const home = tempHome('stigmer-ollama-');
  const scratch = tempHome('stigmer-ollama-scratch-');
  const [temporal, ui, server, port] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const ollamaMirror = await startOllamaMirror(opts);
  const models = join(scratch, 'models');
  const recordFile = join(scratch, 'ollama.jsonl');
  // PATH without any real ollama (this machine has none; a developer's might)
  const path = (process.env['PATH'] ?? '').split(':').filter((d) => d && !existsSync(join(d, 'ollama'))).join(':');
  const env: Record<string, string | undefined> = {
    ...localStackEnv(temporalMirror, { temporal, ui, server }),
    // the fixture server and runner, or (realStack) the real reference ones, for an agent run
    STIGMER_SERVER_BIN: opts.realStack ? undefined : fixture('stack-server.mjs'),
    STIGMER_AGENT_RUNNER_BIN: opts.realStack ? undefined : fixture('stack-runner.mjs'),
    STIGMER_LEASE_MS: undefined,
    STIGMER_RUNNER_SLOTS: undefined,
    FAKE_TEMPORAL_SERVING_AFTER_MS: '0',
    FIXTURE_RECORD_FILE: join(scratch, 'stack.jsonl'),
    STIGMER_LLM_BASE_URL: `http://127.0.0.1:${port}`,
    STIGMER_OLLAMA_MANAGED: opts.managed ?? 'auto',
    STIGMER_OLLAMA_DOWNLOAD_URL: ollamaMirror.url,
    STIGMER_OLLAMA_VERSION: undefined,
    STIGMER_OLLAMA_PULL: undefined,
    OLLAMA_MODELS: models,
    OLLAMA_HOST: undefined,
    FAKE_OLLAMA_RECORD: recordFile,
    PATH: path,
  };
  const r: Rig = {
    home,
    scratch,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    models,
    env,
    ollamaMirror,
    records: () => {
      try {
        return readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      } catch {
        return [];
      }
    },
    cli: (args, extra = {}) => runCli(args, { home, env: { ...env, ...extra }, timeout: 90_000 }),
  };
  t.after(async () => {
    try {
      await runCli(['local', 'stop'], { home, env, timeout: 30_000 });
      assert.deepEqual(processesWithHome(home), [], 'nothing started under the home is left');
    } finally {
      await ollamaMirror.close();
      await cleanupHome(home);
      rmSync(scratch, { recursive: true, force: true });
    }
  });
  return r;
}

type Event = Record<string, unknown> & { event: string; task?: string };
const eventsOf = (out: string): Event[] => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event);
const of = (events: Event[], task: string, event?: string): Event[] => events.filter((e) => e.task === task && (!event || e.event === event));

/** A stand-in `ollama serve` of the user's own, on `port`, outside any stigmer home. */
async function ownOllama(t: TestContext, port: number, models: string, record: string): Promise<ChildProcess> {
  const dir = tempHome('stigmer-own-ollama-');
  const bin = join(dir, 'ollama');
  writeFileSync(bin, standInOllama('0.30.0'));
  chmodSync(bin, 0o755);
  const env: NodeJS.ProcessEnv = { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}`, OLLAMA_MODELS: models, FAKE_OLLAMA_RECORD: record };
  delete env['STIGMER_HOME'];
  const child = spawn(process.execPath, [bin, 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('Listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`own ollama exited ${code}`)));
  });
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return child;
}

const MODEL = 'qwen2.5-coder:7b';

test('auto with no Ollama anywhere: download (.tar.zst), verify, install, start, pull with progress; a second start reuses all of it; stop stops it', async (t) => {
  const r = await rig(t);
  const start = await r.cli(['local', 'start', '--output', 'json']);
  assert.equal(start.code, 0, start.stderr + start.stdout);
  const events = eventsOf(start.stdout);
  const find = of(events, 'find-ollama', 'done')[0];
  assert.match(String(find?.['summary']), /^Ollama 0\.32\.15 installed by stigmer in .*\/bin\/ollama-0\.32\.15, run on 127\.0\.0\.1:\d+$/);
  assert.ok(of(events, 'download-ollama', 'progress').length > 0, 'download progress events');
  const installed = join(r.home, 'bin', 'ollama-0.32.15');
  assert.ok(existsSync(join(installed, 'bin', 'ollama')));
  assert.ok(existsSync(join(installed, 'lib', 'ollama', 'libggml-base.so')));
  assert.deepEqual(r.ollamaMirror.requests, ['/v0.32.15/sha256sum.txt', `/v0.32.15/${r.ollamaMirror.asset}`]);
  // started with OLLAMA_HOST on base_url's port, models in OLLAMA_MODELS, marked as stigmer's
  const serves = r.records().filter((x) => x.event === 'serve');
  assert.equal(serves.length, 1);
  assert.equal(serves[0]!.host, `127.0.0.1:${r.port}`);
  assert.equal(serves[0]!.models, r.models);
  assert.equal(serves[0]!.managedBy, r.home);
  // pulled, with progress (bytes and total) and a line per layer step
  const pulls = r.records().filter((x) => x.event === 'pull');
  assert.deepEqual(pulls.map((p) => [p.model, p.from]), [[MODEL, 0]]);
  const progress = of(events, 'pull-model', 'progress').map((e) => e['progress'] as { done: number; total: number; unit: string });
  assert.ok(progress.length > 0, 'pull progress events');
  assert.deepEqual(progress.at(-1), { done: 4000, total: 4000, unit: 'bytes' });
  // check-llm, after the pull, has nothing to warn about
  assert.equal(of(events, 'check-llm', 'failed').length, 0, JSON.stringify(of(events, 'check-llm')));
  assert.equal(of(events, 'check-llm', 'done').length, 1);
  const tags = (await (await fetch(`${r.baseUrl}/api/tags`)).json()) as { models: { name: string }[] };
  assert.deepEqual(tags.models.map((m) => m.name), [MODEL]);

  const status = await r.cli(['local', 'status']);
  assert.match(status.stdout, /^Ollama: +Ollama 0\.32\.15 installed by stigmer in .*, run on 127\.0\.0\.1:\d+$/m, status.stdout);
  // a component of the stack, like the others: state, pid, address (supervised: restarts, health)
  assert.match(status.stdout, new RegExp(`\\nollama +ready +${serves[0]!.pid} +\\S+ .*127\\.0\\.0\\.1:${r.port}\\n`), status.stdout);
  const statusJson = JSON.parse((await r.cli(['local', 'status', '--json'])).stdout) as { stack: string; components: { name: string; state: string; pid: number | null; address: string | null; restarts: number | null }[] };
  assert.equal(statusJson.stack, 'running');
  assert.deepEqual(
    statusJson.components.map((c) => [c.name, c.state]),
    [['temporal', 'ready'], ['server', 'ready'], ['agent-runner', 'ready'], ['ollama', 'ready']],
  );
  const row = statusJson.components.find((c) => c.name === 'ollama')!;
  assert.deepEqual([row.pid, row.address], [serves[0]!.pid, `127.0.0.1:${r.port}`]);

  const again = await r.cli(['local', 'start', '--output', 'json']);
  assert.equal(again.code, 0, again.stderr);
  const ev2 = eventsOf(again.stdout);
  assert.equal(of(ev2, 'download-ollama', 'done')[0]?.['satisfied'], true);
  assert.equal(of(ev2, 'start-ollama', 'ready')[0]?.['satisfied'], true, JSON.stringify(of(ev2, 'start-ollama')));
  assert.equal(of(ev2, 'pull-model', 'done')[0]?.['satisfied'], true);
  assert.equal(r.records().filter((x) => x.event === 'serve').length, 1, 'not started twice');
  assert.equal(r.ollamaMirror.requests.length, 2, 'not downloaded twice');

  // `local restart ollama`: through the stack's supervisor, a new `ollama serve`; the rest keeps running
  const pid = serves[0]!.pid;
  const pidsBefore = Object.fromEntries(statusJson.components.map((c) => [c.name, c.pid]));
  const restart = await r.cli(['local', 'restart', 'ollama']);
  assert.equal(restart.code, 0, restart.stderr + restart.stdout);
  assert.equal(alive(pid), false, 'the old ollama was stopped');
  const serves2 = r.records().filter((x) => x.event === 'serve');
  assert.equal(serves2.length, 2);
  const after = JSON.parse((await r.cli(['local', 'status', '--json'])).stdout) as { components: { name: string; state: string; pid: number | null }[] };
  const pidsAfter = Object.fromEntries(after.components.map((c) => [c.name, c.pid]));
  assert.deepEqual(pidsAfter, { ...pidsBefore, ollama: serves2[1]!.pid }, 'only ollama was restarted');
  assert.equal(after.components.find((c) => c.name === 'ollama')?.state, 'ready');
  // the model is still there; nothing was downloaded again
  assert.equal(r.records().filter((x) => x.event === 'pull').length, 1);
  assert.equal(r.ollamaMirror.requests.length, 2);

  const stop = await r.cli(['local', 'stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(alive(serves2[1]!.pid), false, 'local stop stopped stigmer\'s ollama');
});

test('auto with your own Ollama answering at base_url: used as it is (the model pulled into it), never stopped; nothing downloaded', async (t) => {
  const r = await rig(t);
  const own = await ownOllama(t, r.port, r.models, join(r.scratch, 'ollama.jsonl'));
  const start = await r.cli(['local', 'start', '--output', 'json']);
  assert.equal(start.code, 0, start.stderr);
  const events = eventsOf(start.stdout);
  assert.equal(of(events, 'find-ollama', 'done')[0]?.['summary'], `your Ollama 0.30.0 at ${r.baseUrl} (external: stigmer never starts or stops it)`);
  assert.equal(of(events, 'download-ollama', 'skipped').length, 1);
  assert.equal(of(events, 'start-ollama', 'skipped').length, 1);
  assert.deepEqual(r.ollamaMirror.requests, []);
  assert.deepEqual(r.records().filter((x) => x.event === 'pull').map((p) => p.pid), [own.pid]);
  const status = await r.cli(['local', 'status', '--json']);
  const s = JSON.parse(status.stdout) as { stack: string; llm: { ollama: { source: string } }; components: { name: string; state: string; pid: number | null; address: string | null }[] };
  assert.equal(s.llm.ollama.source, 'external');
  assert.equal(s.stack, 'running');
  assert.deepEqual(s.components.find((c) => c.name === 'ollama'), { name: 'ollama', task: 'start-ollama', state: 'external', pid: null, uptime_ms: null, address: r.baseUrl, restarts: null, last_exit: null, health: null, next_restart_in_ms: null });
  const restart = await r.cli(['local', 'restart', 'ollama']);
  assert.equal(restart.code, 2);
  assert.equal(restart.stderr, `stigmer local restart ollama: the Ollama at ${r.baseUrl} is your own (external): stigmer never starts, stops or restarts it\n`);
  assert.equal(alive(own.pid!), true);
  const stop = await r.cli(['local', 'stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(own.exitCode, null, 'your own Ollama still runs');
  assert.equal(alive(own.pid!), true);
});

test('auto with `ollama` on PATH: that one is started by stigmer (and stopped); nothing downloaded; --no-pull skips the pull and check-llm warns', async (t) => {
  const r = await rig(t);
  const dir = join(r.scratch, 'path-bin');
  mkdirSync(dir);
  writeFileSync(join(dir, 'ollama'), standInOllama('0.31.0'));
  chmodSync(join(dir, 'ollama'), 0o755);
  const env = { PATH: `${dir}:${r.env['PATH']}` };
  const start = await r.cli(['local', 'start', '--output', 'json', '--no-pull'], env);
  assert.equal(start.code, 0, start.stderr);
  const events = eventsOf(start.stdout);
  assert.equal(of(events, 'find-ollama', 'done')[0]?.['summary'], `${join(dir, 'ollama')} (from PATH), run by stigmer on 127.0.0.1:${r.port}`);
  assert.deepEqual(r.ollamaMirror.requests, []);
  assert.equal(of(events, 'start-ollama', 'ready').length, 1);
  assert.equal(of(events, 'pull-model', 'skipped').length, 1);
  const warn = of(events, 'check-llm', 'failed')[0];
  assert.equal((warn?.['error'] as { reason?: string })?.reason, 'model-missing', JSON.stringify(warn));
  assert.equal(r.records().filter((x) => x.event === 'pull').length, 0);
  const version = (await (await fetch(`${r.baseUrl}/api/version`)).json()) as { version: string };
  assert.equal(version.version, '0.31.0');
  const stop = await r.cli(['local', 'stop'], env);
  assert.equal(stop.code, 0, stop.stderr);
  const serve = r.records().find((x) => x.event === 'serve')!;
  assert.equal(alive(serve.pid), false);
});

for (const [name, opts] of [
  ['checksum mismatch', { corrupt: true }],
  ['truncated archive', { truncateAt: 1000 }],
] as const) {
  test(`auto, ${name}: a warning with the three ways out, nothing installed, the rest of the stack up`, async (t) => {
    const r = await rig(t, opts);
    const start = await r.cli(['local', 'start', '--output', 'json']);
    assert.equal(start.code, 0, start.stderr);
    const events = eventsOf(start.stdout);
    const failed = of(events, 'download-ollama', 'failed')[0];
    assert.equal(failed?.['optional'], true);
    assert.equal((failed?.['error'] as { reason: string }).reason, name === 'checksum mismatch' ? 'checksum-mismatch' : 'download-failed');
    assert.equal(of(events, 'use-ollama', 'done')[0]?.['summary'], 'no Ollama: the download failed (see the warning above); the stack comes up without the local model');
    assert.equal(of(events, 'start-ollama', 'skipped').length, 1);
    assert.equal(of(events, 'start-agent-runner', 'ready').length, 1);
    assert.deepEqual(readdirSync(join(r.home, 'bin')).filter((n) => n.startsWith('ollama')), []);
    if (name === 'truncated archive') {
      const hint = String((failed?.['error'] as { hint?: string }).hint ?? '') + JSON.stringify(failed);
      assert.match(hint, /Three ways out: install Ollama yourself/);
    }
  });
}

test('auto, offline (the download location refuses connections): a warning with the three ways out, the rest of the stack up (no Ollama in the summary)', async (t) => {
  const r = await rig(t);
  const offline = `http://127.0.0.1:${await freePort()}`;
  const start = await r.cli(['local', 'start'], { STIGMER_OLLAMA_DOWNLOAD_URL: offline });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stderr, new RegExp(`stigmer: warning: download-ollama: .*${offline.replace(/[.]/g, '\\.')}/v0\\.32\\.15/sha256sum\\.txt.*connection refused`), start.stderr);
  assert.match(start.stderr, /Three ways out: install Ollama yourself/);
  assert.ok(start.stdout.includes('\n✓ Stigmer is running\n'), start.stdout);
  assert.ok(!start.stdout.includes('  Ollama:  '), 'no Ollama runs');
  const status = JSON.parse((await r.cli(['local', 'status', '--json'])).stdout) as { stack: string; components: { name: string; state: string }[] };
  assert.equal(status.stack, 'running', 'the stack is up without the local model');
  assert.equal(status.components.find((c) => c.name === 'ollama'), undefined, 'no Ollama component: stigmer runs none');
  const text = await r.cli(['local', 'status']);
  assert.match(text.stdout, /\nOllama: +none: its download failed, so the stack runs without the local model \(see `stigmer doctor`\)\n/, text.stdout);
  assert.equal(r.records().length, 0, 'no ollama was started');
});

test('managed true, offline: start fails at use-ollama and everything is undone', async (t) => {
  const r = await rig(t, { managed: 'true' });
  const start = await r.cli(['local', 'start', '--output', 'json'], { STIGMER_OLLAMA_DOWNLOAD_URL: `http://127.0.0.1:${await freePort()}` });
  assert.notEqual(start.code, 0);
  assert.equal((of(eventsOf(start.stdout), 'use-ollama', 'failed')[0]?.['error'] as { reason: string })?.reason, 'llm-unreachable');
  assert.deepEqual(processesWithHome(r.home), []);
});

test('managed true, download blocked: start fails at use-ollama and everything is undone', async (t) => {
  const r = await rig(t, { managed: 'true', corrupt: true });
  const start = await r.cli(['local', 'start', '--output', 'json']);
  assert.notEqual(start.code, 0);
  const events = eventsOf(start.stdout);
  assert.equal((of(events, 'use-ollama', 'failed')[0]?.['error'] as { reason: string })?.reason, 'llm-unreachable');
  assert.deepEqual(processesWithHome(r.home), []);
});

test('a hostile archive is refused whole: nothing installed', async (t) => {
  const r = await rig(t, { extra: [{ path: 'lib/evil', type: 'symlink', linkpath: '/etc' }] });
  const start = await r.cli(['local', 'start', '--output', 'json']);
  assert.equal(start.code, 0, start.stderr);
  const failed = of(eventsOf(start.stdout), 'download-ollama', 'failed')[0];
  assert.equal((failed?.['error'] as { reason: string }).reason, 'unsafe-archive');
  assert.equal(existsSync(join(r.home, 'bin', 'ollama-0.32.15')), false);
});

test('managed true with your own Ollama on the port: port-in-use names it, with the hint to use it', async (t) => {
  const r = await rig(t, { managed: 'true' });
  const own = await ownOllama(t, r.port, r.models, join(r.scratch, 'own.jsonl'));
  const start = await r.cli(['local', 'start', '--output', 'json']);
  assert.notEqual(start.code, 0);
  const failed = of(eventsOf(start.stdout), 'start-ollama', 'failed')[0];
  const f = failed?.['error'] as { reason: string; holder?: { pid: number } };
  assert.equal(f.reason, 'port-in-use', JSON.stringify(failed));
  assert.match(JSON.stringify(failed), new RegExp(`pid ${own.pid}|"pid":${own.pid}`));
  assert.match(JSON.stringify(failed), /backend\.local\.llm\.ollama\.managed auto/);
  assert.equal(own.exitCode, null);
});

test('Ctrl-C during the pull undoes the run; the next start resumes the pull where it stopped', async (t) => {
  const r = await rig(t);
  const slow = { FAKE_OLLAMA_PULL_DELAY_MS: '100', FAKE_OLLAMA_PULL_CHUNK: '100' };
  const child = spawn(process.execPath, [join(process.cwd(), 'bin', 'stigmer.js'), 'local', 'start', '--output', 'json'], {
    env: cliEnv(r.home, { ...r.env, ...slow }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // until the pull has fetched something
  for (let i = 0; i < 1200 && !eventsOf(out).some((e) => e.task === 'pull-model' && e.event === 'progress' && (e['progress'] as { done: number }).done >= 300); i++) await sleep(50);
  assert.match(out, /pull-model/, 'the pull started');
  child.kill('SIGINT');
  const code = await exited;
  assert.notEqual(code, 0);
  assert.deepEqual(processesWithHome(r.home), [], 'the run was undone');
  const first = r.records().filter((x) => x.event === 'pull');
  assert.equal(first.length, 1);
  const partials = readdirSync(join(r.models, 'blobs')).filter((n) => n.endsWith('-partial'));
  assert.equal(partials.length, 1, 'the partial blob stays');

  const again = await r.cli(['local', 'start', '--output', 'plain']);
  assert.equal(again.code, 0, again.stderr);
  const pulls = r.records().filter((x) => x.event === 'pull');
  assert.equal(pulls.length, 2);
  assert.ok(pulls[1]!.from! > 0, `resumed from ${pulls[1]!.from}`);
  // a line per layer step, and the bar of the total
  assert.match(again.stdout, /pull-model.*\| pulling [0-9a-f]{12}: 100%/, again.stdout);
  assert.match(again.stdout, /pull-model.*\[#{20}\] 100% 3\.9 KiB of 3\.9 KiB/, again.stdout);
  assert.match(again.stdout, /pull-model.*done/, again.stdout);
});

test('supervised: a kill -9 of stigmer\'s ollama is restarted by policy (local start --foreground); the model stays; Ctrl-C stops it all', async (t) => {
  const r = await rig(t);
  const child = spawn(process.execPath, [cliPath, 'local', 'start', '--foreground'], { cwd: r.home, env: cliEnv(r.home, r.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const ollamaEvents = (): string => readEvents(r.home).filter((e) => e.task === 'start-ollama').map((e) => e.type).join(' ');
  try {
    const deadline = Date.now() + 90_000;
    while (!stderr.includes('running in the foreground') && Date.now() < deadline && child.exitCode === null) await sleep(20);
    assert.match(stderr, /running in the foreground/);
    const first = r.records().filter((x) => x.event === 'serve');
    assert.equal(first.length, 1);
    assert.equal(r.records().filter((x) => x.event === 'pull').length, 1, 'pulled before the stack was up');
    process.kill(first[0]!.pid, 'SIGKILL');
    while (ollamaEvents() !== 'exited restarting started ready' && Date.now() < deadline) await sleep(25);
    assert.equal(ollamaEvents(), 'exited restarting started ready', stderr);
    const evs = readEvents(r.home).filter((e) => e.task === 'start-ollama');
    assert.equal(evs[0]!.signal, 'SIGKILL');
    assert.deepEqual([evs[1]!.attempt, evs[1]!.max, evs[1]!.delay_ms], [1, 5, 1000], 'the shipped policy: on-failure, 1s backoff, 5 restarts');
    const serves = r.records().filter((x) => x.event === 'serve');
    assert.equal(serves.length, 2);
    assert.equal(evs[2]!.pid, serves[1]!.pid);
    assert.equal(serves[1]!.host, `127.0.0.1:${r.port}`, 'the same address');
    // the restarted one has the model (Ollama's store is on disk); `local status` shows the restart
    const tags = (await (await fetch(`${r.baseUrl}/api/tags`)).json()) as { models: { name: string }[] };
    assert.deepEqual(tags.models.map((m) => m.name), [MODEL]);
    const status = JSON.parse((await r.cli(['local', 'status', '--json'])).stdout) as { components: { name: string; state: string; pid: number | null; restarts: number | null; last_exit: { signal: string | null } | null }[] };
    const row = status.components.find((c) => c.name === 'ollama')!;
    assert.deepEqual([row.state, row.pid, row.restarts, row.last_exit?.signal], ['ready', serves[1]!.pid, 1, 'SIGKILL'], JSON.stringify(row));
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 130, stderr);
  await assertNothingLeft(r.home, 5000);
  assert.equal(r.records().filter((x) => x.event === 'serve').every((x) => !alive(x.pid)), true);
});

test('end to end on a machine with no Ollama: local start installs, runs and pulls; agent run answers through the managed Ollama (the real server and agent-runner)', async (t) => {
  const r = await rig(t, { realStack: true });
  writeFileSync(join(r.home, 'agent.yaml'), 'name: my-agent\ninstructions: Answer in one short sentence.\n');
  const start = await r.cli(['local', 'start']);
  assert.equal(start.code, 0, start.stderr + start.stdout);
  assert.equal(start.stderr, '', 'no check-llm warning: the model is there');
  assert.ok(start.stdout.includes('\n✓ Stigmer is running\n'), start.stdout);
  assert.ok(start.stdout.includes(`  LLM:            ollama ${MODEL} at ${r.baseUrl}\n`), start.stdout);
  assert.match(start.stdout, new RegExp(`\n  Ollama:         Ollama 0\\.32\\.15 installed by stigmer in \\S+, run on 127\\.0\\.0\\.1:${r.port}\n`), start.stdout);
  assert.deepEqual(r.records().filter((x) => x.event === 'pull').map((p) => p.model), [MODEL]);
  const logs = await r.cli(['local', 'logs', '-n', '200']);
  assert.match(logs.stdout, /start-agent-runner +\| --- (\S+ )?starting \S+ \S+stigmer\.js internal agent-runner\n/, logs.stdout);

  const apply = await r.cli(['agent', 'apply', '-f', 'agent.yaml']);
  assert.deepEqual([apply.code, apply.stdout, apply.stderr], [0, 'agent "my-agent" created\n', '']);
  const run = await r.cli(['agent', 'run', 'my-agent', '--message', 'hi']);
  assert.deepEqual([run.code, run.stdout, run.stderr], [0, 'Hello from the stand-in ollama.\n', '']);
  // the stand-in stigmer runs answered it: /api/chat, streamed (NDJSON), the configured model
  const serve = r.records().find((x) => x.event === 'serve')!;
  const chats = r.records().filter((x) => x.event === 'chat') as unknown as { pid: number; model: string; stream: boolean; messages: { role: string; content: string }[] }[];
  assert.equal(chats.length, 1);
  assert.deepEqual([chats[0]!.pid, chats[0]!.model, chats[0]!.stream], [serve.pid, MODEL, true]);
  assert.deepEqual(chats[0]!.messages, [
    { role: 'system', content: 'Answer in one short sentence.' },
    { role: 'user', content: 'hi' },
  ]);
});

interface DoctorReport {
  ok: boolean;
  checks: { name: string; status: string; message: string; advice?: string }[];
}

test('doctor knows managed Ollama: not downloaded and no model (notes), running with the model, stopped (installed, the model on disk); a blocked download is a problem only under managed true', async (t) => {
  const r = await rig(t);
  const doctor = async (extra: Record<string, string | undefined> = {}): Promise<{ code: number | null; report: DoctorReport; check: (name: string) => { status: string; message: string; advice?: string } | undefined }> => {
    const d = await r.cli(['doctor', '--json'], extra);
    const report = JSON.parse(d.stdout) as DoctorReport;
    return { code: d.code, report, check: (name) => report.checks.find((c) => c.name === name) };
  };
  const installDir = join(r.home, 'bin', 'ollama-0.32.15');
  const fresh = await doctor();
  assert.equal(fresh.code, 0, JSON.stringify(fresh.report));
  assert.deepEqual(fresh.check('ollama'), {
    name: 'ollama',
    status: 'warn',
    message: `Ollama 0.32.15 not downloaded yet (${installDir})`,
    advice: 'stigmer local start downloads it (about 1.1 GB), verifies it against sha256sum.txt and runs it; or install Ollama yourself (https://ollama.com/download).',
  });
  assert.equal(fresh.check('ollama-download')?.message, `Ollama download location ${r.ollamaMirror.url}/v0.32.15/sha256sum.txt: reachable`);
  assert.deepEqual([fresh.check('llm')?.status, fresh.check('llm')?.message], ['warn', `Ollama model ${MODEL}: not pulled yet (${r.models})`]);

  const blocked = `http://127.0.0.1:${await freePort()}`;
  const auto = await doctor({ STIGMER_OLLAMA_DOWNLOAD_URL: blocked });
  assert.equal(auto.code, 0);
  assert.equal(auto.check('ollama-download')?.status, 'warn');
  const strict = await doctor({ STIGMER_OLLAMA_DOWNLOAD_URL: blocked, STIGMER_OLLAMA_MANAGED: 'true' });
  assert.equal(strict.code, 1);
  assert.deepEqual([strict.check('ollama-download')?.status, strict.check('ollama-download')?.message], ['fail', `Ollama download location ${blocked}/v0.32.15/sha256sum.txt: connection refused`]);
  assert.match(strict.check('ollama-download')!.advice!, /STIGMER_OLLAMA_DOWNLOAD_URL/);

  const start = await r.cli(['local', 'start']);
  assert.equal(start.code, 0, start.stderr);
  const serve = r.records().find((x) => x.event === 'serve')!;
  const up = await doctor();
  assert.equal(up.code, 0, JSON.stringify(up.report));
  assert.deepEqual([up.check('ollama')?.status, up.check('ollama')?.message], ['ok', `Ollama 0.32.15 installed by stigmer and verified: ${join(installDir, 'bin', 'ollama')}; running on 127.0.0.1:${r.port} (pid ${serve.pid})`]);
  assert.equal(up.check('ollama-download'), undefined, 'nothing to download');
  assert.deepEqual([up.check('llm')?.status, up.check('llm')?.message], ['ok', `Ollama at ${r.baseUrl}: reachable, model ${MODEL} pulled`]);

  assert.equal((await r.cli(['local', 'stop'])).code, 0);
  const down = await doctor();
  assert.equal(down.code, 0, JSON.stringify(down.report));
  assert.deepEqual(down.check('ollama'), {
    name: 'ollama',
    status: 'warn',
    message: `Ollama 0.32.15 installed by stigmer and verified: ${join(installDir, 'bin', 'ollama')}; not running: stigmer local start runs it on 127.0.0.1:${r.port}`,
    advice: 'stigmer local start starts it (and pulls the model when it is missing).',
  });
  assert.deepEqual([down.check('llm')?.status, down.check('llm')?.message], ['ok', `Ollama model ${MODEL}: pulled (in ${r.models})`]);
});

test('supervised by the detached supervisor: a kill -9 of stigmer\'s ollama after a plain local start is restarted by policy', async (t) => {
  const r = await rig(t);
  const start = await r.cli(['local', 'start']);
  assert.equal(start.code, 0, start.stderr);
  const first = r.records().filter((x) => x.event === 'serve');
  assert.equal(first.length, 1);
  process.kill(first[0]!.pid, 'SIGKILL');
  const ollamaEvents = (): string => readEvents(r.home).filter((e) => e.task === 'start-ollama').map((e) => e.type).join(' ');
  const deadline = Date.now() + 60_000;
  while (ollamaEvents() !== 'exited restarting started ready' && Date.now() < deadline) await sleep(25);
  assert.equal(ollamaEvents(), 'exited restarting started ready');
  const serves = r.records().filter((x) => x.event === 'serve');
  assert.equal(serves.length, 2);
  const status = JSON.parse((await r.cli(['local', 'status', '--json'])).stdout) as { stack: string; components: { name: string; state: string; pid: number | null; restarts: number | null }[] };
  const row = status.components.find((c) => c.name === 'ollama')!;
  assert.deepEqual([status.stack, row.state, row.pid, row.restarts], ['running', 'ready', serves[1]!.pid, 1]);
});
