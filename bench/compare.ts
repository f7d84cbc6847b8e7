/**
 * 5. Side by side: the seven-task stack of real processes brought up by stigmer, by
 * `concurrently` + `wait-on`, and by `wireit`; wall time from spawning the tool until the whole
 * graph is up. Each tool's runs take turns with the others'.
 *
 *   stigmer:              spawn -> `stigmer up` exits (it returns once every task is ready)
 *   concurrently/wireit:  spawn -> the last service (agent-runner) opens its port, from its own
 *                         stamp: neither tool says "all ready", so this is their best case
 *
 * After each run everything the tool started is stopped (stigmer down; the others by process
 * group) and the temp home is checked for leftovers.
 */
import { writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { epochNow, finishHome, note, readStamps, repoRoot, sleep, start, stats, stopGroup, tempHome, until } from './lib.js';
import { runStigmerUp, stackPorts } from './overhead.js';
import type { Row, Suite, SuiteResult } from './report.js';
import { SERVICE, WORK, seconds, serviceArgs, type StackPorts } from './stack.js';

const SETTLE_MS = 300;
/** wait-on's interval when tuned (its default is 250 ms). */
const TUNED_MS = 10;

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const nodeBin = join(repoRoot, 'node_modules', '.bin');

function serviceCommand(port: number, afterMs: number): string {
  return [process.execPath, ...serviceArgs(port, afterMs)].map(q).join(' ');
}

/**
 * The way a package.json script usually does it: one-shots chained with `&&`, services started
 * by concurrently, the service that needs others behind `wait-on tcp:...`.
 */
export function concurrentlyCommand(p: StackPorts, o: { intervalMs?: number; allReady?: boolean } = {}): string {
  const waitOn = o.intervalMs === undefined ? 'wait-on' : `wait-on -i ${o.intervalMs}`;
  const temporal = `sleep ${seconds(WORK.download)} && exec ${serviceCommand(p.temporal, WORK.temporalAfter)}`;
  const server = `sleep ${seconds(WORK.secrets)} && exec ${serviceCommand(p.server, WORK.serverAfter)}`;
  const runner = `${waitOn} tcp:127.0.0.1:${p.temporal} tcp:127.0.0.1:${p.server} && exec ${serviceCommand(p.runner, WORK.runnerAfter)}`;
  // The readiness a script needs to say "everything is up": one more wait-on, on every service.
  const ready = `${waitOn} tcp:127.0.0.1:${p.temporal} tcp:127.0.0.1:${p.server} tcp:127.0.0.1:${p.runner} && echo ${ALL_READY}`;
  const commands = o.allReady ? [temporal, server, runner, ready] : [temporal, server, runner];
  return `sleep ${seconds(WORK.config)} && concurrently --names ${o.allReady ? 'temporal,server,runner,ready' : 'temporal,server,runner'} ${commands.map(q).join(' ')}`;
}

const ALL_READY = 'all-services-ready';

/** The stack as wireit scripts: one-shots are plain scripts, services wait for their listen line. */
export function wireitPackage(p: StackPorts): Record<string, unknown> {
  const service = (port: number, after: number, dependencies: string[]): Record<string, unknown> => ({
    command: serviceCommand(port, after),
    service: { readyWhen: { lineMatches: 'listening on' } },
    dependencies,
  });
  return {
    name: 'bench-stack',
    private: true,
    scripts: { 'start-agent-runner': 'wireit' },
    wireit: {
      'resolve-config': { command: `sleep ${seconds(WORK.config)}` },
      'download-temporal': { command: `sleep ${seconds(WORK.download)}`, dependencies: ['resolve-config'] },
      // wireit waits for a service's ready line itself: the wait-port step folds into it.
      'start-temporal': service(p.temporal, WORK.temporalAfter, ['download-temporal']),
      'gather-secrets': { command: `sleep ${seconds(WORK.secrets)}`, dependencies: ['resolve-config'] },
      'start-server': service(p.server, WORK.serverAfter, ['resolve-config', 'gather-secrets']),
      'start-agent-runner': service(p.runner, WORK.runnerAfter, ['start-temporal', 'start-server', 'gather-secrets']),
    },
  };
}

/**
 * Start a tool that stays in the foreground; time spawn -> the agent-runner's listen stamp, or
 * (`allReady`) -> the moment it prints that every service answers.
 */
async function untilRunnerListens(command: string, args: string[], dir: string, ports: StackPorts, env: Record<string, string | undefined>, allReady = false): Promise<number> {
  let readyAt: number | undefined;
  const p = start(command, args, {
    cwd: dir,
    home: dir,
    env,
    onStdout: () => {
      if (allReady && readyAt === undefined && p.stdout().includes(ALL_READY)) readyAt = epochNow();
    },
  });
  try {
    await Promise.race([
      allReady
        ? until('the tool to say all services are ready', () => readyAt !== undefined, 60_000)
        : until('the agent-runner to listen', () => readStamps(p.stdout(), 'listening', ports.runner).length > 0, 60_000),
      p.exited.then((e) => {
        throw new Error(`${command} exited early with ${e.code ?? e.signal}:\n${p.stdout()}${p.stderr()}`);
      }),
    ]);
    return (allReady ? readyAt! : readStamps(p.stdout(), 'listening', ports.runner)[0]!) - p.startedAt;
  } finally {
    await stopGroup(p, 5000);
  }
}

async function runConcurrently(o: { intervalMs?: number; allReady?: boolean } = {}): Promise<number> {
  const dir = tempHome('stigmer-bench-');
  try {
    const ports = await stackPorts();
    return await untilRunnerListens('sh', ['-c', concurrentlyCommand(ports, o)], dir, ports, { PATH: `${nodeBin}${delimiter}${process.env['PATH'] ?? ''}` }, o.allReady);
  } finally {
    await finishHome(dir);
  }
}

async function runWireit(): Promise<number> {
  const dir = tempHome('stigmer-bench-');
  try {
    const ports = await stackPorts();
    const pkg = join(dir, 'package.json');
    writeFileSync(pkg, JSON.stringify(wireitPackage(ports), null, 2));
    // What `node --run start-agent-runner` sets: the quickest way to launch wireit (npm run adds ~0.3 s).
    // Under `npm run bench` npm's own variables (npm_lifecycle_event, ...) would tell wireit to run
    // the `bench` script of this package.json instead: hide them.
    const npmVars = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('npm_')).map((k) => [k, undefined]));
    const env = { ...npmVars, NODE_RUN_SCRIPT_NAME: 'start-agent-runner', NODE_RUN_PACKAGE_JSON_PATH: pkg, WIREIT_CACHE: 'none', PATH: `${nodeBin}${delimiter}${process.env['PATH'] ?? ''}` };
    return await untilRunnerListens(process.execPath, [join(repoRoot, 'node_modules', 'wireit', 'bin', 'wireit.js')], dir, ports, env);
  } finally {
    await finishHome(dir);
  }
}

export const compare: Suite = {
  name: 'compare',
  title: 'the stack of real processes: stigmer vs concurrently + wait-on (default, tuned, on every service) vs wireit (spawn -> all up)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 2 : 7;
    note(`compare: ${runs} rounds of stigmer, concurrently + wait-on (three ways), wireit`);
    const s: number[] = [];
    const sListen: number[] = [];
    const c: number[] = [];
    const cTuned: number[] = [];
    const cAll: number[] = [];
    const w: number[] = [];
    const failures: string[] = [];
    const tools: (() => Promise<void>)[] = [
      async () => {
        const up = await runStigmerUp();
        s.push(up.wallMs);
        sListen.push(up.runnerListenMs);
      },
      async () => void c.push(await runConcurrently()),
      async () => void cTuned.push(await runConcurrently({ intervalMs: TUNED_MS })),
      async () => void cAll.push(await runConcurrently({ intervalMs: TUNED_MS, allReady: true })),
      async () => void w.push(await runWireit()),
    ];
    for (let i = 0; i < runs; i++) {
      // Each round starts with another tool, and every run waits for the previous one's teardown
      // to settle, so no tool always follows the same neighbour.
      for (let j = 0; j < tools.length; j++) {
        await sleep(SETTLE_MS);
        try {
          await tools[(i + j) % tools.length]!();
        } catch (err) {
          // One tool's stuck run (seen once with wireit) is a missing sample, not a lost benchmark.
          failures.push((err as Error).message.split('\n')[0]!);
          note(`compare: a run failed: ${failures.at(-1)}`);
        }
      }
    }
    const stigmer = stats(s);
    const others = [stats(c).median, stats(cTuned).median, stats(cAll).median, stats(w).median];
    const rows: Row[] = [
      { bench: '5 compare', metric: 'stigmer up: spawn -> exit, all ready', unit: 'ms', stats: stigmer, goal: { lowest: true }, pass: others.every((o) => stigmer.median < o) },
      { bench: '5 compare', metric: '  (stigmer: spawn -> agent-runner listening)', unit: 'ms', stats: stats(sListen) },
      { bench: '5 compare', metric: 'concurrently + wait-on (250 ms default): spawn -> agent-runner listening', unit: 'ms', stats: stats(c) },
      { bench: '5 compare', metric: `concurrently + wait-on -i ${TUNED_MS}: spawn -> agent-runner listening`, unit: 'ms', stats: stats(cTuned) },
      { bench: '5 compare', metric: `concurrently + wait-on -i ${TUNED_MS} on every service: spawn -> says all ready`, unit: 'ms', stats: stats(cAll) },
      { bench: '5 compare', metric: 'wireit: spawn -> agent-runner listening', unit: 'ms', stats: stats(w) },
    ];
    // Per-round ratios (a failed run drops its round from that peer's ratio).
    const peers: [string, number[]][] = [['concurrently + wait-on (default)', c], [`concurrently + wait-on -i ${TUNED_MS}`, cTuned], [`concurrently + wait-on -i ${TUNED_MS}, every service`, cAll], ['wireit', w]];
    for (const [label, xs] of peers) {
      const ratios = xs.length === s.length ? s.map((v, i) => v / xs[i]!) : [stigmer.median / stats(xs).median];
      rows.push({ bench: '5 compare', metric: `  stigmer up / ${label}`, unit: 'x', stats: stats(ratios, 2) });
    }
    return { name: 'compare', rows, details: { failures, concurrentlyCommand: concurrentlyCommand({ temporal: 7233, server: 7234, runner: 7235 }).replaceAll(SERVICE, 'test/fixtures/service.mjs').replaceAll(process.execPath, 'node') } };
  },
};
