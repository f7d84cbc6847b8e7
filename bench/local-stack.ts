/**
 * Benchmarks of `stigmer local start|stop|status` on the stand-ins (issue 3): the packaged
 * stigmer.tasks.yaml, the stand-in Temporal CLI installed from a local release mirror, the fixture
 * server and agent-runner, a temp STIGMER_HOME and random ports (test/temporal-mirror.ts's rig).
 *
 *   node dist/bench/local-stack.js [--quick] [--no-save]      (npm run bench:stack)
 *
 * One unmeasured round first (`stigmer init` downloads Temporal; one start/stop warms the page
 * cache), then every round measures, in this order, each with its own checks:
 *
 *   stand-ins alone   each stand-in spawned the way the process kind spawns it (src/process/proc.ts) and
 *                     timed until the stack file's own probe passes (src/process/probes.ts): Temporal by
 *                     its grpc probe (Health/Check of the WorkflowService, SERVING), the server by GET
 *                     /healthz every 50 ms, the agent-runner by its "agent-runner ready" log line
 *                     (Temporal left running for it); then all three stopped
 *   1 warm start      `local start --output json`; its ratio to the slowest chain of the stand-ins,
 *                     max(temporal, server) + agent-runner, of this round (goal <= 1.1x), and the
 *                     overhead (wall minus that chain); SERVING -> ready: the stand-in's own stamp of
 *                     the moment its WorkflowService turned SERVING (in the temporal log) to
 *                     start-temporal's ready event (goal <= 50 ms)
 *   2 second start    `local start` on the running stack (checked: nothing was restarted)
 *   4 status          `node -e 0`, then `local status` (checked: running, health SERVING), three
 *                     times; each status divided by the floor run just before it (goal <= 2x)
 *   3 stop            `local stop` of the healthy stack (checked: no process of the home is left)
 *
 * Every wall time is spawn -> exit of the CLI (node's start included). The rounds interleave the
 * commands so a busy moment of the machine hits all of them alike; `node -e 0` is the floor.
 * bench/README-stack.md has the figures and where the time goes.
 */
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { cliEnv, cliPath, note, processesWithHome, repoRoot, runIfMain, runToEnd, stats, type Stats } from './lib.js';
import { assertNothingLeft } from '../test/helpers.js';
import { parseEvents } from './overhead.js';
import { formatTable, passes, type Row, type Suite, type SuiteOptions, type SuiteResult } from './report.js';
import { stackRig, type StackRig } from '../test/temporal-mirror.js';
import { spawnService, stopGroup, type StopProcess } from '../src/process/proc.js';
import { parseProbe, waitReady, type ProbeSpec } from '../src/process/probes.js';
import { StateStore } from '../src/engine/state.js';
import { dataPaths } from '../src/util/paths.js';

export const GOALS = { overhead: 100, secondStart: 300, stop: 500, status: 150, servingToReady: 50, startToChain: 1.1, statusToNode: 2 } as const;

const WORKFLOW_SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';

/** The stand-in's own epoch stamp of the moment its WorkflowService turned SERVING: the last in its log. */
export function servingStamp(log: string): number | undefined {
  const all = [...log.matchAll(/stand-in frontend serving" serving_at=(\d+(?:\.\d+)?)/g)];
  const last = all.at(-1);
  return last ? Number(last[1]) : undefined;
}

/** What resolve-config recorded for the running stack: the stand-ins are started from it. */
interface Resolved {
  temporal: { bin: string; address: string; port: number; ui_port: number; db_file: string };
  server: { command: string; args: string[]; address: string; health_url: string; data_dir: string };
  agent_runner: { command: string; args: string[]; env: Record<string, string> };
}

interface Round {
  node: number;
  temporal: number;
  server: number;
  runner: number;
  chain: number;
  start: number;
  overhead: number;
  /** spawn -> the first task started (node, the CLI, config, the stack file, the lock) */
  boot: number;
  /** first task started -> last ready */
  engine: number;
  /** last event -> exit */
  exit: number;
  /** the stand-in's WorkflowService turned SERVING -> start-temporal's ready event */
  servingToReady: number;
  second: number[];
  status: number[];
  /** `node -e 0` run right before each `local status` */
  statusNode: number[];
  stop: number;
}

function recorded(home: string): Resolved {
  const state = StateStore.read(dataPaths(home).state);
  const r = state?.tasks['resolve-config']?.outputs as Resolved | undefined;
  if (!r?.temporal?.bin) throw new Error(`no resolve-config outputs recorded in ${dataPaths(home).state}`);
  return r;
}

/** Spawn like the process kind does and time until `ready` passes; returns the stop descriptor. */
async function standIn(
  home: string,
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: ProbeSpec,
): Promise<{ ms: number; stop: StopProcess }> {
  const logFile = join(home, 'bench-logs', `${name}.log`);
  const t0 = performance.now();
  const svc = await spawnService({ command, args, cwd: home, env, logFile });
  const stop: StopProcess = { type: 'stop-process', pid: svc.pid, pgid: svc.pgid, startTime: svc.startTime, command: svc.commandLine, signal: 'SIGTERM', graceMs: 5000, startedAt: new Date().toISOString() };
  const parsed = parseProbe(ready, { logFile, logOffset: svc.logOffset, cwd: home, env });
  const out = await waitReady(parsed.probe, { signal: AbortSignal.timeout(30_000), intervalMs: parsed.intervalMs, timeoutMs: parsed.timeoutMs, exited: svc.exited });
  const ms = performance.now() - t0;
  if (out.status !== 'ready') {
    await stopGroup(stop, { force: true });
    throw new Error(`stand-in ${name} was not ready: ${out.status} ${'lastProbe' in out ? (out.lastProbe ?? '') : ''}\n${readFileSync(logFile, 'utf8')}`);
  }
  return { ms, stop };
}

/** The three stand-ins alone, with the stack file's probes (keep in step with stigmer.tasks.yaml). */
async function standIns(rig: StackRig, r: Resolved): Promise<{ temporal: number; server: number; runner: number }> {
  const env = cliEnv(rig.home, rig.env);
  const stops: StopProcess[] = [];
  try {
    const t = r.temporal;
    const temporal = await standIn(
      rig.home,
      'temporal',
      t.bin,
      ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(t.port), '--ui-port', String(t.ui_port), '--db-filename', t.db_file, '--namespace', 'default'],
      env,
      { grpc: { address: t.address, service: WORKFLOW_SERVICE }, timeout: '60s' },
    );
    stops.push(temporal.stop);
    const s = r.server;
    const server = await standIn(rig.home, 'server', s.command, s.args, { ...env, STIGMER_SERVER_ADDRESS: s.address, STIGMER_DATA_DIR: s.data_dir }, { http: { url: s.health_url, status: 200 }, interval: '50ms', timeout: '30s' });
    stops.push(server.stop);
    const a = r.agent_runner;
    const runner = await standIn(rig.home, 'agent-runner', a.command, a.args, { ...env, ...a.env }, { log: 'agent-runner ready', timeout: '60s' });
    stops.push(runner.stop);
    return { temporal: temporal.ms, server: server.ms, runner: runner.ms };
  } finally {
    for (const s of stops.reverse()) await stopGroup(s);
    await assertNothingLeft(rig.home, 5000);
  }
}

async function cli(rig: StackRig, args: string[]): Promise<{ ms: number; stdout: string; startedAt: number; endedAt: number }> {
  return runToEnd(process.execPath, [cliPath, ...args], { cwd: rig.home, home: rig.home, env: rig.env, timeoutMs: 60_000 });
}

function check(ok: boolean, what: string, output: string): void {
  if (!ok) throw new Error(`${what}\n${output}`);
}

async function round(rig: StackRig, r: Resolved, statusRuns: number, secondRuns: number): Promise<Round> {
  const node = (await runToEnd(process.execPath, ['-e', '0'], { cwd: rig.home, home: rig.home })).ms;
  const alone = await standIns(rig, r);
  const chain = Math.max(alone.temporal, alone.server) + alone.runner;

  const temporalStarts = rig.temporalStarts().length;
  const start = await cli(rig, ['local', 'start', '--output', 'json']);
  const events = parseEvents(start.stdout).filter((e) => e.event !== 'summary' && e.event !== 'queued');
  check(events.some((e) => e.task === 'start-agent-runner' && e.event === 'ready'), 'local start: no ready event of start-agent-runner', start.stdout);
  check(rig.temporalStarts().length === temporalStarts + 1, 'local start: Temporal was not started once', start.stdout);
  const first = Math.min(...events.map((e) => e.time));
  const last = Math.max(...events.map((e) => e.time));
  const temporalReady = events.find((e) => e.task === 'start-temporal' && e.event === 'ready');
  const temporalLog = join(dataPaths(rig.home).logs, 'start-temporal.log');
  const serving = servingStamp(readFileSync(temporalLog, 'utf8'));
  check(temporalReady !== undefined && serving !== undefined, `local start: no ready event of start-temporal or no SERVING stamp in ${temporalLog}`, start.stdout);

  const second: number[] = [];
  const status: number[] = [];
  const statusNode: number[] = [];
  const starts = (): string => `${rig.temporalStarts().length}/${rig.records().length}`;
  const before = starts();
  for (let i = 0; i < secondRuns; i++) {
    const again = await cli(rig, ['local', 'start']);
    check(starts() === before, 'second local start restarted something', again.stdout);
    second.push(again.ms);
  }
  for (let i = 0; i < statusRuns; i++) {
    // the floor right before each status, so a busy moment hits both sides of the ratio
    statusNode.push((await runToEnd(process.execPath, ['-e', '0'], { cwd: rig.home, home: rig.home })).ms);
    const s = await cli(rig, ['local', 'status']);
    check(/^Stigmer local stack: running /.test(s.stdout) && s.stdout.includes('health: SERVING'), 'local status: not running and SERVING', s.stdout);
    status.push(s.ms);
  }

  const stop = await cli(rig, ['local', 'stop']);
  check(processesWithHome(rig.home).length === 0, 'local stop left processes running', stop.stdout);
  await assertNothingLeft(rig.home, 5000);
  return {
    node,
    ...alone,
    chain,
    start: start.ms,
    overhead: start.ms - chain,
    boot: first - start.startedAt,
    engine: last - first,
    exit: start.endedAt - last,
    servingToReady: temporalReady!.time - serving!,
    second,
    status,
    statusNode,
    stop: stop.ms,
  };
}

/** Run the benchmarks; the rows are what `npm run bench` prints. */
export async function runLocalStackBench(opts: SuiteOptions): Promise<SuiteResult> {
  const rounds = opts.quick ? 3 : 11;
  const rig = await stackRig();
  try {
    note(`local stack: ${rounds} rounds in ${rig.home}`);
    const init = await cli(rig, ['init']);
    check(init.stdout.includes('Temporal CLI'), 'stigmer init did not install Temporal', init.stdout);
    // Warm-up: the page cache, and the record of resolve-config the stand-ins are started from.
    await cli(rig, ['local', 'start']);
    const r = recorded(rig.home);
    await cli(rig, ['local', 'stop']);
    await assertNothingLeft(rig.home, 5000);

    const all: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      const x = await round(rig, r, 3, 2);
      note(`  round ${i + 1}: start ${x.start.toFixed(0)} ms (chain ${x.chain.toFixed(0)}, ${(x.start / x.chain).toFixed(2)}x; SERVING -> ready ${x.servingToReady.toFixed(0)} ms), second ${x.second.map((v) => v.toFixed(0)).join('/')} ms, status ${x.status.map((v) => v.toFixed(0)).join('/')} ms, stop ${x.stop.toFixed(0)} ms`);
      all.push(x);
    }
    const of = (f: (x: Round) => number | number[]): Stats => stats(all.flatMap((x) => f(x)));
    const ratios = (f: (x: Round) => number | number[]): Stats => stats(all.flatMap((x) => f(x)), 2);
    const B1 = '1 warm local start';
    const rows: Row[] = [
      { bench: B1, metric: 'ratio: wall / the stand-ins\' slowest chain (same round)', unit: 'x', stats: ratios((x) => x.start / x.chain), goal: { max: GOALS.startToChain } },
      { bench: B1, metric: 'overhead: wall minus the stand-ins\' slowest chain', unit: 'ms', stats: of((x) => x.overhead), goal: { max: GOALS.overhead } },
      { bench: B1, metric: 'wall: spawn -> exit of local start', unit: 'ms', stats: of((x) => x.start) },
      { bench: B1, metric: 'stand-ins alone: max(temporal, server) + agent-runner', unit: 'ms', stats: of((x) => x.chain) },
      { bench: B1, metric: '  temporal: spawn -> SERVING (grpc probe, as the stack file)', unit: 'ms', stats: of((x) => x.temporal) },
      { bench: B1, metric: '  server: spawn -> /healthz 200 (50 ms)', unit: 'ms', stats: of((x) => x.server) },
      { bench: B1, metric: '  agent-runner: spawn -> ready line', unit: 'ms', stats: of((x) => x.runner) },
      { bench: B1, metric: 'first task -> all ready, minus the chain', unit: 'ms', stats: of((x) => x.engine - x.chain) },
      { bench: B1, metric: 'managed Temporal: WorkflowService SERVING -> start-temporal ready', unit: 'ms', stats: of((x) => x.servingToReady), goal: { max: GOALS.servingToReady } },
      { bench: B1, metric: 'of the wall: spawn -> first task started', unit: 'ms', stats: of((x) => x.boot) },
      { bench: B1, metric: 'of the wall: first task started -> all ready', unit: 'ms', stats: of((x) => x.engine) },
      { bench: B1, metric: 'of the wall: all ready -> exit', unit: 'ms', stats: of((x) => x.exit) },
      { bench: '2 second local start', metric: 'local start on a running stack', unit: 'ms', stats: of((x) => x.second), goal: { max: GOALS.secondStart } },
      { bench: '3 local stop', metric: 'local stop of a healthy stack', unit: 'ms', stats: of((x) => x.stop), goal: { max: GOALS.stop } },
      { bench: '4 local status', metric: 'ratio: local status / node -e 0 run just before it', unit: 'x', stats: ratios((x) => x.status.map((v, i) => v / x.statusNode[i]!)), goal: { max: GOALS.statusToNode } },
      { bench: '4 local status', metric: 'local status of a running stack', unit: 'ms', stats: of((x) => x.status), goal: { max: GOALS.status } },
      { bench: '4 local status', metric: 'node -e 0 just before it', unit: 'ms', stats: of((x) => x.statusNode) },
      { bench: 'floor', metric: 'node -e 0', unit: 'ms', stats: of((x) => x.node) },
    ];
    return { name: 'local-stack', rows, details: { rounds, rawRounds: all } };
  } finally {
    await rig.cleanup();
  }
}

export const localStack: Suite = {
  name: 'local-stack',
  title: 'stigmer local start / second start / stop / status on the stand-ins',
  run: runLocalStackBench,
};

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--quick' && a !== '--no-save');
  if (unknown.length) {
    process.stderr.write(`usage: node dist/bench/local-stack.js [--quick] [--no-save]\n`);
    return 2;
  }
  const quick = argv.includes('--quick');
  const result = await runLocalStackBench({ quick });
  const table = formatTable([result]);
  process.stdout.write(`\n${table}\n`);
  const missed = result.rows.filter((row) => passes(row) === false);
  process.stdout.write(missed.length ? `\n${missed.length} goal(s) missed.\n` : '\nAll goals met.\n');
  if (!quick && !argv.includes('--no-save')) {
    const file = join(repoRoot, 'bench', 'stack-results.json');
    const machine = { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
    mkdirSync(join(repoRoot, 'bench'), { recursive: true });
    writeFileSync(file, JSON.stringify({ table: table.split('\n'), suites: [{ ...result, date: new Date().toISOString(), machine }] }, null, 2) + '\n');
    note(`results written to ${file}`);
  }
  return 0;
}

runIfMain(import.meta.url, main);
