/**
 * 2. Readiness latency: the moment a port opens (the fake service's `--stamp` at listen, epoch ms)
 * to the moment the task that needs it starts (its `started` event from `--output json`).
 *
 *   wait-port: the bench starts the service itself once the wait-port task has started polling,
 *              with a random delay so the port opens at a random phase of the poll interval
 *   process:   a process task with a tcp probe starts the service (random --after); its stamp is
 *              read from the task's log file
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cliPath, finishHome, freePort, note, readStamps, runToEnd, start, stats, stopGroup, tempHome, until, type Spawned } from './lib.js';
import { parseEvents } from './overhead.js';
import type { Suite, SuiteResult } from './report.js';
import { serviceArgs } from './stack.js';

interface Sample {
  /** listen -> the dependent task's `started` event */
  latencyMs: number;
  /** listen -> the waiting task's `done`/`ready` event */
  noticedMs: number;
}

const dependent = `  after:
    uses: exec
    needs: [{NEED}]
    with: { command: "true" }
`;

/** The data dir is named, so the logs are found where the bench looks. */
function cliArgs(file: string): string[] {
  return [cliPath, 'up', '-f', file, '--data-dir', join(dirname(file), 'data'), '--output', 'json', '--no-input'];
}

function measure(stdout: string, waiter: string, listenAt: number): Sample {
  const events = parseEvents(stdout);
  const started = events.find((e) => e.task === 'after' && e.event === 'started');
  const noticed = events.find((e) => e.task === waiter && (e.event === 'done' || e.event === 'ready'));
  if (!started || !noticed) throw new Error(`missing events in:\n${stdout}`);
  return { latencyMs: started.time - listenAt, noticedMs: noticed.time - listenAt };
}

/** A wait-port task, the service started by the bench while it polls. */
async function viaWaitPort(): Promise<Sample> {
  const home = tempHome('stigmer-bench-');
  let svc: Spawned | undefined;
  try {
    const port = await freePort();
    const file = join(home, 'stigmer.tasks.yaml');
    writeFileSync(file, `version: 1\ntasks:\n  wait:\n    uses: wait-port\n    with: { host: 127.0.0.1, port: ${port}, timeout: 20s }\n${dependent.replace('{NEED}', 'wait')}`);
    let launched = false;
    const cli = start(process.execPath, cliArgs(file), {
      cwd: home,
      home,
      onStdout: () => {
        if (launched || !cli.stdout().includes('"event":"started","task":"wait"')) return;
        launched = true;
        svc = start(process.execPath, serviceArgs(port, Math.floor(Math.random() * 50)), { cwd: home, home });
      },
    });
    const exit = await cli.exited;
    if (exit.code !== 0) throw new Error(`stigmer up exited with ${exit.code}:\n${cli.stdout()}${cli.stderr()}`);
    await until('the service stamp', () => !!svc && readStamps(svc.stdout(), 'listening').length > 0, 5000);
    return measure(cli.stdout(), 'wait', readStamps(svc!.stdout(), 'listening')[0]!);
  } finally {
    if (svc) await stopGroup(svc);
    await finishHome(home);
  }
}

/** A process task with a tcp probe starts the service; a task needs it. */
async function viaProcessProbe(): Promise<Sample> {
  const home = tempHome('stigmer-bench-');
  try {
    const port = await freePort();
    const file = join(home, 'stigmer.tasks.yaml');
    const args = serviceArgs(port, 150 + Math.floor(Math.random() * 50)).map((a) => JSON.stringify(a));
    writeFileSync(
      file,
      `version: 1
tasks:
  svc:
    uses: process
    with:
      command: ${JSON.stringify(process.execPath)}
      args: [${args.join(', ')}]
      ports: [${port}]
      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s }
      stop: { signal: SIGTERM, grace: 5s }
${dependent.replace('{NEED}', 'svc')}`,
    );
    try {
      const r = await runToEnd(process.execPath, cliArgs(file), { cwd: home, home });
      const listenAt = readStamps(readFileSync(join(home, 'data', 'logs', 'svc.log'), 'utf8'), 'listening')[0];
      if (listenAt === undefined) throw new Error('the service log has no listen stamp');
      return measure(r.stdout, 'svc', listenAt);
    } finally {
      await runToEnd(process.execPath, [cliPath, 'down', '-f', file, '--data-dir', join(home, 'data')], { cwd: home, home });
    }
  } finally {
    await finishHome(home);
  }
}

export const readiness: Suite = {
  name: 'readiness',
  title: 'port opens -> the task that needs it starts (wait-port, and process with a tcp probe)',
  async run({ quick }): Promise<SuiteResult> {
    const runs = quick ? 3 : 9;
    note(`readiness: ${runs} runs each of wait-port and process + tcp probe`);
    const waitPort: Sample[] = [];
    const processProbe: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      waitPort.push(await viaWaitPort());
      processProbe.push(await viaProcessProbe());
    }
    return {
      name: 'readiness',
      rows: [
        { bench: '2 readiness', metric: 'wait-port: port open -> dependent started', unit: 'ms', stats: stats(waitPort.map((s) => s.latencyMs)), goal: { max: 30 } },
        { bench: '2 readiness', metric: '  port open -> wait-port done', unit: 'ms', stats: stats(waitPort.map((s) => s.noticedMs)) },
        { bench: '2 readiness', metric: 'process + tcp probe: port open -> dependent started', unit: 'ms', stats: stats(processProbe.map((s) => s.latencyMs)), goal: { max: 30 } },
        { bench: '2 readiness', metric: '  port open -> process ready', unit: 'ms', stats: stats(processProbe.map((s) => s.noticedMs)) },
      ],
      details: { waitPort, processProbe },
    };
  },
};
