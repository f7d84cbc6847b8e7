/**
 * 1. Overhead: the seven-task stack through the real CLI (`stigmer up --output json`) in a temp
 * STIGMER_HOME with random ports, against the critical path of the same work run bare.
 *
 *   critical path = the longest chain of needs, each task weighted by its bare run (baselines)
 *   engine overhead = first event (queued) -> last ready/done event, minus the critical path
 *   end-to-end overhead = spawn of the CLI -> its exit, minus the critical path
 *     (includes the CLI's cold start, which benchmark 4 measures on its own)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, finishHome, freePort, note, readStamps, runToEnd, start, stats, stopGroup, tempHome, until, type Stats } from './lib.js';
import type { Row, Suite, SuiteResult } from './report.js';
import { NEEDS, WORK, criticalPath, seconds, serviceArgs, taskWeights, writeStigmerStack, type Baselines, type StackPorts, type StackTask } from './stack.js';

export interface JsonEvent {
  event: string;
  task: string;
  timestamp: string;
  duration_ms?: number;
}

export function parseEvents(stdout: string): (JsonEvent & { time: number })[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent)
    .map((e) => ({ ...e, time: Date.parse(e.timestamp) }));
}

export async function stackPorts(): Promise<StackPorts> {
  return { temporal: await freePort(), server: await freePort(), runner: await freePort() };
}

/** Spawn to exit of a one-shot `sleep`. */
async function timeSleep(ms: number, home: string): Promise<number> {
  return (await runToEnd('sleep', [seconds(ms)], { cwd: home, home })).ms;
}

/** Spawn of the fake service to its start and listen stamps. */
async function timeService(afterMs: number, home: string): Promise<{ started: number; listening: number }> {
  const port = await freePort();
  const p = start(process.execPath, serviceArgs(port, afterMs), { cwd: home, home });
  try {
    await until('the fake service to listen', () => readStamps(p.stdout(), 'listening').length > 0, 20_000);
    return { started: readStamps(p.stdout(), 'started')[0]! - p.startedAt, listening: readStamps(p.stdout(), 'listening')[0]! - p.startedAt };
  } finally {
    await stopGroup(p);
  }
}

/** The bare cost of each task's work, medians of `runs` runs. */
export async function measureBaselines(runs: number): Promise<{ baselines: Baselines; samples: Record<string, Stats> }> {
  const home = tempHome('stigmer-bench-');
  try {
    const samples: Record<string, number[]> = { config: [], download: [], secrets: [], serviceStarted: [], temporalListen: [], serverListen: [], runnerListen: [] };
    for (let i = 0; i < runs; i++) {
      samples['config']!.push(await timeSleep(WORK.config, home));
      samples['download']!.push(await timeSleep(WORK.download, home));
      samples['secrets']!.push(await timeSleep(WORK.secrets, home));
      const t = await timeService(WORK.temporalAfter, home);
      samples['serviceStarted']!.push(t.started);
      samples['temporalListen']!.push(t.listening);
      samples['serverListen']!.push((await timeService(WORK.serverAfter, home)).listening);
      samples['runnerListen']!.push((await timeService(WORK.runnerAfter, home)).listening);
    }
    const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
    const baselines = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.median])) as unknown as Baselines;
    return { baselines, samples: s };
  } finally {
    await finishHome(home);
  }
}

export interface UpRun {
  /** spawn -> exit */
  wallMs: number;
  /** first event -> last ready/done event */
  engineMs: number;
  /** spawn -> first event */
  startupMs: number;
  /** last event -> exit */
  exitMs: number;
  /** the JSON event stream, with parsed times */
  events: (JsonEvent & { time: number })[];
  /** spawn -> the agent-runner's port open (its listen stamp) */
  runnerListenMs: number;
  startedAt: number;
  endedAt: number;
}

/** One `stigmer up` of the stack in a fresh home; `down` afterwards; asserts nothing is left. */
export async function runStigmerUp(): Promise<UpRun> {
  const home = tempHome('stigmer-bench-');
  try {
    const ports = await stackPorts();
    const file = writeStigmerStack(home, ports);
    const data = join(home, 'data');
    const r = await runToEnd(process.execPath, [cliPath, 'up', '-f', file, '--data-dir', data, '--output', 'json', '--no-input'], { cwd: home, home });
    try {
      const events = parseEvents(r.stdout);
      const first = Math.min(...events.filter((e) => e.event === 'queued').map((e) => e.time));
      const last = Math.max(...events.filter((e) => e.event === 'ready' || e.event === 'done').map((e) => e.time));
      const finished = events.filter((e) => e.event === 'ready' || e.event === 'done').length;
      if (finished !== 7) throw new Error(`stigmer up finished ${finished} of 7 tasks:\n${r.stdout}${r.stderr}`);
      const runnerListen = readStamps(readFileSync(join(data, 'logs', 'start-agent-runner.log'), 'utf8'), 'listening', ports.runner)[0];
      if (runnerListen === undefined) throw new Error('the agent-runner log has no listen stamp');
      return {
        wallMs: r.ms,
        engineMs: last - first,
        startupMs: first - r.startedAt,
        exitMs: r.endedAt - last,
        events,
        runnerListenMs: runnerListen - r.startedAt,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
      };
    } finally {
      await runToEnd(process.execPath, [cliPath, 'down', '-f', file, '--data-dir', data, '--output', 'json'], { cwd: home, home });
    }
  } finally {
    await finishHome(home);
  }
}

/** A task's finish minus the finish of its last need (or the first event), minus its bare work. */
function taskExtra(u: UpRun, task: StackTask, weight: number): number {
  const finish = (t: string): number => u.events.find((e) => e.task === t && (e.event === 'ready' || e.event === 'done'))!.time;
  const first = Math.min(...u.events.filter((e) => e.event === 'queued').map((e) => e.time));
  const from = NEEDS[task].length ? Math.max(...NEEDS[task].map(finish)) : first;
  return finish(task) - from - weight;
}

/** The port-holder check the process kind makes before each start (in this process, a free port). */
async function portCheckMs(runs: number): Promise<number[]> {
  const { inspectPort } = await import('../src/process/proc.js');
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const t = performance.now();
    inspectPort(port);
    out.push(performance.now() - t);
  }
  return out;
}

export const overhead: Suite = {
  name: 'overhead',
  title: 'engine overhead on the seven-task stack (stigmer up vs its critical path)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 3 : 7;
    note(`overhead: measuring the bare work (${quick ? 3 : 5} runs each)`);
    const { baselines, samples } = await measureBaselines(quick ? 3 : 5);
    const cp = criticalPath(taskWeights(baselines));
    note(`overhead: critical path ${cp.path.join(' -> ')} = ${cp.ms.toFixed(1)} ms; ${runs} runs of stigmer up`);
    const ups: UpRun[] = [];
    for (let i = 0; i < runs; i++) ups.push(await runStigmerUp());
    const weights = taskWeights(baselines);
    // Where the overhead goes: each task on the critical path, from the moment its last need
    // finished (or the run began) to its own finish, minus its bare work.
    const extra = cp.path.map((task) => ({ task, stats: stats(ups.map((u) => taskExtra(u, task, weights[task]))) }));
    // A cost the process kind pays on the path, measured alone.
    const portCheck = stats(await portCheckMs(runs * 3));
    const rows: Row[] = [
      { bench: '1 overhead', metric: 'engine: first event -> all ready, minus critical path', unit: 'ms', stats: stats(ups.map((u) => u.engineMs - cp.ms)), goal: { max: 60 } },
      { bench: '1 overhead', metric: 'end to end: spawn -> exit, minus critical path', unit: 'ms', stats: stats(ups.map((u) => u.wallMs - cp.ms)) },
      { bench: '1 overhead', metric: '  of which CLI start: spawn -> first event', unit: 'ms', stats: stats(ups.map((u) => u.startupMs)) },
      { bench: '1 overhead', metric: '  of which exit: last event -> exit', unit: 'ms', stats: stats(ups.map((u) => u.exitMs)) },
      { bench: '1 overhead', metric: 'critical path (bare work)', unit: 'ms', stats: stats([cp.ms]) },
      ...extra.map((e): Row => ({ bench: '1 overhead', metric: `  on the path: ${e.task}, beyond its bare work`, unit: 'ms', stats: e.stats })),
      { bench: '1 overhead', metric: '  alone: port-holder check before a service starts', unit: 'ms', stats: portCheck },
    ];
    return {
      name: 'overhead',
      rows,
      details: { work: WORK, baselines: samples, criticalPath: cp, extraOnPath: Object.fromEntries(extra.map((e) => [e.task, e.stats])), runs: ups.map((u) => ({ wallMs: u.wallMs, engineMs: u.engineMs, startupMs: u.startupMs, exitMs: u.exitMs })) },
    };
  },
};
