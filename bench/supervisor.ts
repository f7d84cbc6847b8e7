/**
 * 9. The supervisor (issue 9), on `stigmer up --foreground` (the CLI attaches to the data dir's
 * supervisor, src/daemon/, which hosts the watch loop, src/engine/supervise.ts; CPU and RSS are
 * the supervisor's, its pid from the state's `supervisor` record), each against what the service
 * costs by itself:
 *
 *   restart   a service (policy always, 20 ms backoff) crashed from here (SIGKILL, at a known
 *             moment) -> its `ready` event, minus the backoff, minus the same fixture's own start
 *             run bare (spawn -> its port open) in the same pair; >= 7 pairs, interleaved (the
 *             order turning every pair), the median of the per-pair differences   goal <= 30 ms
 *   hung      a service that stops answering (event loop blocked, port open) 400 ms after it
 *             starts, with `health: { http, interval: 200ms, timeout: 100ms, failures: 3 }`: its
 *             `hanging now` line (the log's stamp) -> the `unhealthy` event, minus interval x
 *             failures                                                goal <= 50 ms
 *   logs      a service printing 200k lines as fast as it can (one write per line) through the
 *             supervisor vs to /dev/null, its own time for the loop (it says it on stderr),
 *             interleaved; the supervisor's CPU over the print and its peak RSS  goal >= 0.8x
 *   rss       the supervisor's peak RSS with the Stigmer stack up (`local start --foreground` on the
 *             stand-ins, health checks running)                        goal <= 60 MB
 *
 *   node dist/bench/supervisor.js [--quick]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents, type SupervisorEvent } from '../src/supervisor/events.js';
import { parseLogLine } from '../src/process/log-line.js';
import { readProcStat } from '../src/process/identity.js';
import { cliPath, epochNow, finishHome, fixture, freePort, note, readStamps, round, runIfMain, sleep, start, stats, stopGroup, tempHome, until, type Spawned } from './lib.js';
import { formatTable, type Row, type Suite, type SuiteResult } from './report.js';

const node = process.execPath;
const B = '9 supervisor';
/** Which process hosts the watch loop in these rows. */
const HOST_LABEL = 'the supervisor of up --foreground';

interface Session {
  home: string;
  data: string;
  host: Spawned;
}

/** `up --foreground` on a tasks file of `tasks` in a fresh home. */
function session(tasks: string[]): Session {
  const home = tempHome('stigmer-bench-');
  const data = join(home, 'data');
  const file = join(home, 'stigmer.tasks.yaml');
  writeFileSync(file, ['version: 1', 'tasks:', ...tasks, ''].join('\n'));
  const host = start(node, [cliPath, 'up', '--foreground', '--output', 'plain', '-f', file, '--data-dir', data], { cwd: home, home });
  return { home, data, host };
}

/** The pid of the data dir's supervisor (the host of the watch loop), once the state records it. */
async function supervisorPid(dataDir: string): Promise<number> {
  let pid: number | undefined;
  await until(`the supervisor of ${dataDir} recorded`, () => {
    try {
      pid = (JSON.parse(readFileSync(join(dataDir, 'state.json'), 'utf8')) as { supervisor?: { pid?: number } }).supervisor?.pid;
    } catch {
      // not written yet
    }
    return pid !== undefined;
  });
  return pid!;
}

/** Ctrl-C the foreground CLI (the supervisor undoes everything), check nothing is left, remove the home. */
async function end(s: Session): Promise<void> {
  s.host.child.kill('SIGINT');
  const done = await Promise.race([s.host.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!done) await stopGroup(s.host);
  await finishHome(s.home);
}

/** The pid of the task's instance, once the watch loop recorded it ready. */
function recordedPid(s: Session, name: string): number | undefined {
  try {
    const rec = (JSON.parse(readFileSync(join(s.data, 'state.json'), 'utf8')) as { tasks: Record<string, { service?: string; undo: { type: string; pid?: number }[] }> }).tasks[name];
    return rec?.service === 'ready' ? rec.undo.find((u) => u.type === 'stop-process')?.pid : undefined;
  } catch {
    return undefined; // not written yet, or being replaced
  }
}

const events = (s: Session, task: string): SupervisorEvent[] => readEvents(s.data).filter((e) => e.task === task);
const at = (e: SupervisorEvent): number => Date.parse(e.at);

function task(name: string, lines: string[]): string {
  return [`  ${name}:`, '    uses: process', '    with:', ...lines.map((l) => `      ${l}`)].join('\n');
}

const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/** The fixture run bare: spawn -> its port open (what a restart costs the service itself). */
async function bareStart(port: number): Promise<number> {
  const home = tempHome('stigmer-bench-');
  const p = start(node, [fixture('service.mjs'), '--listen', String(port), '--stamp'], { cwd: home, home });
  try {
    await until('bare service listening', () => readStamps(p.stdout(), 'listening').length > 0, 20_000);
    return readStamps(p.stdout(), 'listening')[0]! - p.startedAt;
  } finally {
    await stopGroup(p);
    await finishHome(home);
  }
}

/**
 * `pairs` interleaved pairs (the order turning every pair), each: the fixture started bare (spawn
 * -> its port open), and a crash of the supervised instance (SIGKILL from here, at a known moment)
 * -> its `ready` event; the pair's overhead is the second minus the backoff minus the first.
 */
async function restartOverhead(pairs: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const port = await freePort();
  const barePort = await freePort();
  const backoffMs = 20;
  const s = session([
    task('flaky', [
      `command: ${node}`,
      `args: ${list([fixture('service.mjs'), '--listen', String(port), '--stamp'])}`,
      `ports: [${port}]`,
      `ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s }`,
      `stop: { signal: SIGTERM, grace: 2s }`,
      `restart: { policy: always, backoff: ${backoffMs}ms, max_backoff: ${backoffMs}ms, max_restarts: 100000, window: 1h }`,
    ]),
  ]);
  const bare: number[] = [];
  const gaps: number[] = [];
  const overhead: number[] = [];
  /** where a restart's time goes: crash -> spawned (minus the backoff: see the exit, stop what is left, schedule), spawned -> ready */
  const toSpawn: number[] = [];
  const toReady: number[] = [];
  const crash = async (): Promise<number> => {
    const before = events(s, 'flaky').length;
    const pid = recordedPid(s, 'flaky');
    if (!pid) throw new Error('no running instance of flaky to crash');
    const at0 = epochNow();
    process.kill(pid, 'SIGKILL');
    await until('flaky ready again', () => events(s, 'flaky').slice(before).some((e) => e.type === 'ready'), 60_000);
    const evs = events(s, 'flaky').slice(before);
    const started = evs.find((e) => e.type === 'started');
    const ready = evs.find((e) => e.type === 'ready')!;
    const delay = evs.find((e) => e.type === 'restarting')?.delay_ms ?? backoffMs;
    if (started) {
      toSpawn.push(at(started) - at0 - delay);
      toReady.push(at(ready) - at(started));
    }
    return at(ready) - at0 - delay;
  };
  try {
    // the first instance (started by up), then one warm-up restart
    await until('flaky ready', () => recordedPid(s, 'flaky') !== undefined, 60_000);
    await crash();
    toSpawn.length = 0;
    toReady.length = 0;
    for (let i = 0; i < pairs; i++) {
      await sleep(300); // the previous restart's work settles
      let b: number;
      let g: number;
      if (i % 2 === 0) {
        b = await bareStart(barePort);
        await sleep(100);
        g = await crash();
      } else {
        g = await crash();
        await sleep(100);
        b = await bareStart(barePort);
      }
      bare.push(b);
      gaps.push(g);
      overhead.push(g - b);
    }
  } finally {
    await end(s);
  }
  return {
    rows: [
      { bench: B, metric: `crash -> ready again: supervisor overhead over the service's own start (backoff excluded; ${HOST_LABEL})`, unit: 'ms', stats: stats(overhead), goal: { max: 30 } },
      { bench: B, metric: '  crash -> ready again, minus the backoff (absolute)', unit: 'ms', stats: stats(gaps) },
      { bench: B, metric: "  the service's own start, spawn -> port open, bare, in the same pair (absolute)", unit: 'ms', stats: stats(bare) },
      { bench: B, metric: '  of which crash -> the new process spawned, minus the backoff', unit: 'ms', stats: stats(toSpawn) },
      { bench: B, metric: '  of which spawned -> ready (the readiness probe passed)', unit: 'ms', stats: stats(toReady) },
    ],
    details: { restart: { host: HOST_LABEL, backoff_ms: backoffMs, overhead_ms: overhead, gaps_ms: gaps, bare_start_ms: bare, crash_to_spawn_ms: toSpawn, spawn_to_ready_ms: toReady } },
  };
}

/** Epoch ms of each `hanging now` line in the task's logs (the writer's stamps). */
function hangStamps(s: Session, name: string): number[] {
  let text = '';
  for (const f of [`${name}.log.3`, `${name}.log.2`, `${name}.log.1`, `${name}.log`]) {
    try {
      text += readFileSync(join(s.data, 'logs', f), 'utf8');
    } catch {
      // not rotated that far
    }
  }
  return text
    .split('\n')
    .map((l) => parseLogLine(l))
    .filter((l) => l.text === 'hanging now' && l.time !== undefined)
    .map((l) => l.time!);
}

async function hungNoticed(cycles: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const port = await freePort();
  const intervalMs = 200;
  const failures = 3;
  const url = `http://127.0.0.1:${port}/healthz`;
  const s = session([
    task('hangs', [
      `command: ${node}`,
      `args: ${list([fixture('service.mjs'), '--listen', String(port), '--http', '--hang-after', '400'])}`,
      `ports: [${port}]`,
      `ready: { http: { url: "${url}" }, timeout: 20s }`,
      // it ignores SIGTERM once hung: a short grace keeps the cycles short
      `stop: { signal: SIGTERM, grace: 200ms }`,
      `health: { http: { url: "${url}" }, interval: ${intervalMs}ms, timeout: 100ms, failures: ${failures} }`,
      `restart: { policy: always, backoff: 20ms, max_backoff: 20ms, max_restarts: 100000, window: 1h }`,
    ]),
  ]);
  const late: number[] = [];
  try {
    await until(`${cycles} unhealthy`, () => events(s, 'hangs').filter((e) => e.type === 'unhealthy').length >= cycles, 180_000);
    const unhealthy = events(s, 'hangs').filter((e) => e.type === 'unhealthy').map(at);
    const hangs = hangStamps(s, 'hangs');
    // each instance hangs once, then is noticed once
    for (const u of unhealthy) {
      const h = hangs.filter((x) => x <= u).at(-1);
      if (h !== undefined) late.push(u - h);
    }
  } finally {
    await end(s);
  }
  const budget = intervalMs * failures;
  return {
    rows: [
      { bench: B, metric: `hung service noticed, beyond interval x failures (${intervalMs} ms x ${failures}; ${HOST_LABEL})`, unit: 'ms', stats: stats(late.map((l) => l - budget)), goal: { max: 50 } },
      { bench: B, metric: '  hang -> unhealthy (absolute)', unit: 'ms', stats: stats(late) },
    ],
    details: { hung: { interval_ms: intervalMs, failures, hang_to_unhealthy_ms: late } },
  };
}

const LINES = 200_000;
/** Prints `go`, waits for the watch loop to be on, prints LINES lines, says how long that took. */
const PRINTER = `const n = ${LINES}; const pad = ' the quick brown fox jumps over the lazy dog';
console.log('go');
setTimeout(() => {
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) process.stdout.write('line ' + i + pad + '\\n');
  process.stderr.write('took ' + (performance.now() - t0).toFixed(3) + '\\n');
  setTimeout(() => process.exit(0), 100_000);
}, 300);`;

/** utime + stime of a process, ms. */
function cpuMs(pid: number): number {
  return ((readProcStat(pid)?.cpuTicks ?? NaN) * 1000) / 100; // USER_HZ is 100 on Linux
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function toDevNull(): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    const { spawn } = await import('node:child_process');
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync('/dev/null', 'w');
    let err = '';
    const child = spawn(node, ['-e', PRINTER], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, STIGMER_HOME: home } });
    closeSync(fd);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await until('the bare printer done', () => /took [\d.]+\n/.test(err), 60_000);
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
    return Number(/took ([\d.]+)/.exec(err)![1]);
  } finally {
    await finishHome(home);
  }
}

async function throughSupervisor(): Promise<{ ms: number; cpuMs: number; rssMb: number }> {
  const s = session([task('printer', [`command: ${node}`, `args: ${list(['-e', PRINTER])}`, 'ready: { log: "^go$", timeout: 20s }', 'stop: { signal: SIGKILL, grace: 1s }'])]);
  try {
    const log = join(s.data, 'logs', 'printer.log');
    // ~15 MB of lines: the log rotates (10 MB by default), so the tail of .1 counts too.
    const read = (): string => {
      let text = '';
      for (const f of [`${log}.1`, log]) {
        try {
          const t = readFileSync(f, 'utf8');
          text += t.length > 4096 ? t.slice(-4096) : t;
        } catch {
          // not there (yet)
        }
      }
      return text;
    };
    await until('printer ready', () => / out go\n/.test(read()), 30_000);
    const sup = await supervisorPid(s.data);
    const cpu0 = cpuMs(sup);
    // stderr's line may land before the last of stdout's: kept once seen
    let took: number | undefined;
    await until('printer done', () => (took ??= Number(/ err took ([\d.]+)\n/.exec(read())?.[1] ?? NaN) || undefined) !== undefined, 60_000);
    await until(`${LINES} lines on disk`, () => read().includes(`line ${LINES} `), 60_000);
    const cpu = cpuMs(sup) - cpu0;
    return { ms: took!, cpuMs: cpu, rssMb: peakRssMb(sup) };
  } finally {
    await end(s);
  }
}

async function logThroughput(runs: number): Promise<{ rows: Row[]; details: Record<string, unknown> }> {
  const ratio: number[] = [];
  const cpu: number[] = [];
  const rss: number[] = [];
  const ms = { devnull: [] as number[], supervised: [] as number[] };
  await toDevNull(); // warm-up
  for (let i = 0; i < runs; i++) {
    const first = i % 2 === 0;
    const a = first ? await toDevNull() : undefined;
    const sup = await throughSupervisor();
    const d = a ?? (await toDevNull());
    ratio.push(d / sup.ms);
    cpu.push((sup.cpuMs * 100_000) / LINES);
    rss.push(sup.rssMb);
    ms.devnull.push(d);
    ms.supervised.push(sup.ms);
  }
  return {
    rows: [
      { bench: B, metric: `log throughput through the supervisor vs /dev/null (one write per line; ${HOST_LABEL})`, unit: 'x', stats: stats(ratio, 2), goal: { min: 0.8 } },
      { bench: B, metric: `  supervisor CPU per 100k lines (${HOST_LABEL})`, unit: 'ms', stats: stats(cpu) },
      { bench: B, metric: '  supervisor peak RSS, one chatty service', unit: 'MB', stats: stats(rss) },
    ],
    details: { logs: { lines: LINES, loop_ms: ms, lines_per_s_median: { devnull: round(LINES / (stats(ms.devnull).median / 1000), 0), supervised: round(LINES / (stats(ms.supervised).median / 1000), 0) } } },
  };
}

/**
 * The supervisor's peak RSS with the Stigmer stack (`local start --foreground` on the stand-ins of
 * test/temporal-mirror.ts: the packaged stack file, its health checks running) after it has been
 * up for `upMs`.
 */
async function stackRss(upMs: number): Promise<number> {
  const { stackRig } = await import('../test/temporal-mirror.js');
  const rig = await stackRig();
  try {
    const host = start(node, [cliPath, 'local', 'start', '--foreground', '--output', 'plain'], { cwd: rig.home, home: rig.home, env: rig.env });
    try {
      await until('the stack up', () => host.stdout().includes('Stigmer is running') || host.child.exitCode !== null, 120_000);
      if (host.child.exitCode !== null) throw new Error(`local start --foreground exited ${host.child.exitCode}\n${host.stdout()}${host.stderr()}`);
      const sup = await supervisorPid(rig.home);
      await sleep(upMs);
      return peakRssMb(sup);
    } finally {
      host.child.kill('SIGINT');
      const done = await Promise.race([host.exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!done) await stopGroup(host);
    }
  } finally {
    await rig.cleanup();
  }
}

export const supervisor: Suite = {
  name: 'supervisor',
  title: 'the supervisor: crash -> ready again, a hung service noticed, log throughput and the host\'s CPU and RSS',
  async run({ quick }): Promise<SuiteResult> {
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    note('supervisor: crash -> ready again');
    const r = await restartOverhead(quick ? 3 : 9);
    note('supervisor: a hung service noticed');
    const h = await hungNoticed(quick ? 3 : 8);
    note('supervisor: log throughput');
    const l = await logThroughput(quick ? 2 : 5);
    note('supervisor: RSS with the Stigmer stack');
    const rss: number[] = [];
    for (let i = 0; i < (quick ? 1 : 3); i++) rss.push(await stackRss(quick ? 2000 : 6000));
    l.rows.push({ bench: B, metric: 'supervisor peak RSS with the Stigmer stack (local start --foreground, stand-ins)', unit: 'MB', stats: stats(rss), goal: { max: 60 } });
    for (const x of [r, h, l]) {
      rows.push(...x.rows);
      Object.assign(details, x.details);
    }
    return { name: 'supervisor', rows, details };
  },
};

runIfMain(import.meta.url, async (argv) => {
  const r = await supervisor.run({ quick: argv.includes('--quick') });
  process.stdout.write(`${formatTable([r])}\n${JSON.stringify(r.details, null, 2)}\n`);
  return 0;
});
