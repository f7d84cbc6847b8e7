/**
 * 6-8. What a user pays, as whole processes (spawn -> exit, or -> the moment it says everything is
 * ready), each interleaved with a baseline that is the physical limit (A B A B ..., the order
 * turning every round), reported as per-round ratios with the absolute times beside:
 *
 *   6 up/down   the seven-process stack shape: `stigmer up` against the critical path of the same
 *               work run bare (measured again every round) and against a bash script with `&` and
 *               10 ms polling loops; `stigmer down` of it against `kill` of the process groups and
 *               against `node -e 0`; up + down against the script + kill
 *   7 exec      N `exec` tasks running `true` with `--concurrency 2` against `xargs -P2`
 *   8 port->run the moment a service's port opens (its own stamp) to the moment the process of the
 *               task that needs it runs (`date +%s%N` as that task's command), when it is the
 *               run's first `exec` and when an `exec` ran before; against a bash 10 ms loop
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, finishHome, freePort, note, readStamps, runToEnd, sleep, stats, tempHome } from './lib.js';
import { measureBaselines, stackPorts } from './overhead.js';
import type { Row, Suite, SuiteResult } from './report.js';
import { WORK, criticalPath, seconds, serviceArgs, taskWeights, writeStigmerStack, type StackPorts } from './stack.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The stack shape by hand: one-shots run in line or in the background, services start with `&`
 * (job control on: each in its own process group, recorded in `pids`), readiness is a bash loop
 * polling the ports every 10 ms through /dev/tcp. It prints `ready` and exits, leaving the
 * services running, as `stigmer up` does.
 */
export function bashStackScript(p: StackPorts): string {
  const svc = (port: number, after: number, log: string): string => `${[process.execPath, ...serviceArgs(port, after)].map(q).join(' ')} >${log} 2>&1`;
  return `set -m
open() { (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; }
sleep ${seconds(WORK.config)}
(sleep ${seconds(WORK.download)}; exec ${svc(p.temporal, WORK.temporalAfter, 'temporal.log')}) &
echo $! >>pids
sleep ${seconds(WORK.secrets)}
${svc(p.server, WORK.serverAfter, 'server.log')} &
echo $! >>pids
until open ${p.temporal} && open ${p.server}; do sleep 0.01; done
${svc(p.runner, WORK.runnerAfter, 'runner.log')} &
echo $! >>pids
until open ${p.runner}; do sleep 0.01; done
echo ready
`;
}

/**
 * Teardown by hand: SIGTERM to every recorded process group, then wait until each is gone (a zombie
 * counts as gone: who reaps an orphan, and when, is up to init).
 */
export const KILL_SCRIPT = `gone() { local s; read -r s 2>/dev/null </proc/$1/stat || return 0; s=\${s##*) }; [ "\${s%% *}" = Z ]; }
for p in $(cat pids); do kill -TERM -- -$p 2>/dev/null; done
for p in $(cat pids); do until gone $p; do sleep 0.005; done; done
`;

interface StackRound {
  up: number;
  down: number;
  bashUp: number;
  kill: number;
  node: number;
  criticalPath: number;
}

async function stigmerStack(): Promise<{ up: number; down: number }> {
  const home = tempHome('stigmer-bench-');
  try {
    const file = writeStigmerStack(home, await stackPorts());
    const up = await runToEnd(process.execPath, [cliPath, 'up', '-f', file, '--no-input'], { cwd: home, home });
    const down = await runToEnd(process.execPath, [cliPath, 'down', '-f', file], { cwd: home, home });
    return { up: up.ms, down: down.ms };
  } finally {
    await finishHome(home);
  }
}

async function bashStack(): Promise<{ up: number; kill: number }> {
  const home = tempHome('stigmer-bench-');
  try {
    writeFileSync(join(home, 'up.sh'), bashStackScript(await stackPorts()));
    writeFileSync(join(home, 'kill.sh'), KILL_SCRIPT);
    const up = await runToEnd('bash', ['up.sh'], { cwd: home, home });
    if (!up.stdout.includes('ready')) throw new Error(`the bash stack did not say ready:\n${up.stdout}${up.stderr}`);
    const kill = await runToEnd('bash', ['kill.sh'], { cwd: home, home });
    return { up: up.ms, kill: kill.ms };
  } finally {
    await finishHome(home);
  }
}

async function nodeFloor(): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    return (await runToEnd(process.execPath, ['-e', '0'], { cwd: home, home })).ms;
  } finally {
    await finishHome(home);
  }
}

/** Rows 6: `rounds` rounds of stigmer up + down, the bash script + kill, node -e 0 and the bare work. */
async function stackRows(rounds: number): Promise<{ rows: Row[]; samples: StackRound[] }> {
  const samples: StackRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const r: Partial<StackRound> = {};
    const steps: (() => Promise<void>)[] = [
      async () => void Object.assign(r, await stigmerStack()),
      async () => {
        const b = await bashStack();
        r.bashUp = b.up;
        r.kill = b.kill;
      },
      async () => void (r.node = await nodeFloor()),
      async () => void (r.criticalPath = criticalPath(taskWeights((await measureBaselines(1)).baselines)).ms),
    ];
    for (let k = 0; k < steps.length; k++) {
      await sleep(200); // the previous run's exits settle
      await steps[(i + k) % steps.length]!();
    }
    samples.push(r as StackRound);
    note(`up/down: round ${i + 1}/${rounds}: up ${r.up!.toFixed(0)} ms (bash ${r.bashUp!.toFixed(0)}, critical path ${r.criticalPath!.toFixed(0)}), down ${r.down!.toFixed(0)} ms (kill ${r.kill!.toFixed(0)}, node -e 0 ${r.node!.toFixed(0)})`);
  }
  const col = (f: (s: StackRound) => number, digits = 1): Row['stats'] => stats(samples.map(f), digits);
  const B = '6 up/down';
  const rows: Row[] = [
    { bench: B, metric: 'stigmer up / critical path (spawn -> exit, all ready)', unit: 'x', stats: col((s) => s.up / s.criticalPath, 2), goal: { max: 1.15 } },
    { bench: B, metric: '  bash script with & and 10 ms polls / critical path', unit: 'x', stats: col((s) => s.bashUp / s.criticalPath, 2) },
    { bench: B, metric: '  stigmer up / bash script', unit: 'x', stats: col((s) => s.up / s.bashUp, 2) },
    { bench: B, metric: '  stigmer up (absolute)', unit: 'ms', stats: col((s) => s.up) },
    { bench: B, metric: '  bash script (absolute)', unit: 'ms', stats: col((s) => s.bashUp) },
    { bench: B, metric: '  critical path, bare work (absolute)', unit: 'ms', stats: col((s) => s.criticalPath) },
    { bench: B, metric: 'stigmer down / node -e 0', unit: 'x', stats: col((s) => s.down / s.node, 2), goal: { max: 1.5 } },
    { bench: B, metric: '  stigmer down / kill of the process groups', unit: 'x', stats: col((s) => s.down / s.kill, 2) },
    { bench: B, metric: '  stigmer down (absolute)', unit: 'ms', stats: col((s) => s.down) },
    { bench: B, metric: '  kill of the process groups (absolute)', unit: 'ms', stats: col((s) => s.kill) },
    { bench: B, metric: '  node -e 0 (absolute)', unit: 'ms', stats: col((s) => s.node) },
    { bench: B, metric: 'stigmer up + down / bash script + kill', unit: 'x', stats: col((s) => (s.up + s.down) / (s.bashUp + s.kill), 2) },
    { bench: B, metric: '  stigmer up + down (absolute)', unit: 'ms', stats: col((s) => s.up + s.down) },
  ];
  return { rows, samples };
}

/** A tasks file of `n` independent `exec` tasks running `true`. */
export function execTasksYaml(n: number): string {
  const lines = ['version: 1', 'tasks:'];
  for (let i = 0; i < n; i++) lines.push(`  t${i}: { uses: exec, with: { command: "true" } }`);
  return `${lines.join('\n')}\n`;
}

async function stigmerExec(n: number): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    const file = join(home, 'stigmer.tasks.yaml');
    writeFileSync(file, execTasksYaml(n));
    return (await runToEnd(process.execPath, [cliPath, 'up', '-f', file, '--concurrency', '2', '--no-input'], { cwd: home, home, timeoutMs: 600_000 })).ms;
  } finally {
    await finishHome(home);
  }
}

async function xargsExec(n: number): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    return (await runToEnd('sh', ['-c', `seq ${n} | xargs -P2 -n1 true`], { cwd: home, home })).ms;
  } finally {
    await finishHome(home);
  }
}

/** Rows 7: N exec tasks vs xargs -P2, `rounds` pairs each. */
async function execRows(sizes: number[], rounds: number): Promise<{ rows: Row[]; samples: Record<number, { stigmer: number[]; xargs: number[] }> }> {
  const rows: Row[] = [];
  const samples: Record<number, { stigmer: number[]; xargs: number[] }> = {};
  for (const n of sizes) {
    const s: number[] = [];
    const x: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (i % 2) {
        x.push(await xargsExec(n));
        s.push(await stigmerExec(n));
      } else {
        s.push(await stigmerExec(n));
        x.push(await xargsExec(n));
      }
    }
    note(`exec: ${n} tasks: stigmer ${stats(s).median} ms, xargs -P2 ${stats(x).median} ms`);
    samples[n] = { stigmer: s, xargs: x };
    const label = n.toLocaleString('en-US');
    rows.push(
      { bench: '7 exec tasks', metric: `${label} x true, --concurrency 2 / xargs -P2`, unit: 'x', stats: stats(s.map((v, i) => v / x[i]!), 2), ...(n === 1000 ? { goal: { max: 2 } } : {}) },
      { bench: '7 exec tasks', metric: `  stigmer, per task (absolute)`, unit: 'ms', stats: stats(s.map((v) => v / n), 2) },
      { bench: '7 exec tasks', metric: `  xargs -P2, per task (absolute)`, unit: 'ms', stats: stats(x.map((v) => v / n), 2) },
    );
  }
  return { rows, samples };
}

/** The dependent's own command: prints the epoch in ns the moment it runs. */
const DATE = { command: 'date', args: ['+%s%N'] };
const epochNsToMs = (text: string): number | undefined => {
  const m = /^(\d{16,})$/m.exec(text);
  return m ? Number(BigInt(m[1]!) / 1000n) / 1000 : undefined;
};

/** stigmer: a process task with a tcp probe, then `date` (with an exec before the service when `later`). */
async function stigmerPortToRun(later: boolean): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    const port = await freePort();
    const file = join(home, 'stigmer.tasks.yaml');
    const data = join(home, 'data');
    const args = serviceArgs(port, 100 + Math.floor(Math.random() * 50)).map((a) => JSON.stringify(a));
    writeFileSync(
      file,
      `version: 1
tasks:
${later ? '  first:\n    uses: exec\n    with: { command: "true" }\n' : ''}  svc:
    uses: process
${later ? '    needs: [first]\n' : ''}    with:
      command: ${JSON.stringify(process.execPath)}
      args: [${args.join(', ')}]
      ports: [${port}]
      ready: { tcp: { host: 127.0.0.1, port: ${port} }, timeout: 20s }
      stop: { signal: SIGTERM, grace: 5s }
  after:
    uses: exec
    needs: [svc]
    with: { command: ${DATE.command}, args: ["${DATE.args[0]}"] }
`,
    );
    try {
      await runToEnd(process.execPath, [cliPath, 'up', '-f', file, '--data-dir', data, '--no-input'], { cwd: home, home });
      const listenAt = readStamps(readFileSync(join(data, 'logs', 'svc.log'), 'utf8'), 'listening')[0];
      const ranAt = epochNsToMs(readFileSync(join(data, 'logs', 'after.log'), 'utf8'));
      if (listenAt === undefined || ranAt === undefined) throw new Error('port->run: a stamp is missing from the logs');
      return ranAt - listenAt;
    } finally {
      await runToEnd(process.execPath, [cliPath, 'down', '-f', file, '--data-dir', data], { cwd: home, home });
    }
  } finally {
    await finishHome(home);
  }
}

/** bash: start the service in the background, poll its port every 10 ms, then run `date`. */
async function bashPortToRun(): Promise<number> {
  const home = tempHome('stigmer-bench-');
  try {
    const port = await freePort();
    const svc = [process.execPath, ...serviceArgs(port, 100 + Math.floor(Math.random() * 50))].map(q).join(' ');
    writeFileSync(join(home, 'run.sh'), `set -m\n${svc} >svc.log 2>&1 &\necho $! >pids\nuntil (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; do sleep 0.01; done\n${DATE.command} ${DATE.args[0]} >date.log\n`);
    writeFileSync(join(home, 'kill.sh'), KILL_SCRIPT);
    try {
      await runToEnd('bash', ['run.sh'], { cwd: home, home });
      const listenAt = readStamps(readFileSync(join(home, 'svc.log'), 'utf8'), 'listening')[0];
      const ranAt = epochNsToMs(readFileSync(join(home, 'date.log'), 'utf8'));
      if (listenAt === undefined || ranAt === undefined) throw new Error('port->run (bash): a stamp is missing');
      return ranAt - listenAt;
    } finally {
      await runToEnd('bash', ['kill.sh'], { cwd: home, home });
    }
  } finally {
    await finishHome(home);
  }
}

async function portToRunRows(rounds: number): Promise<{ rows: Row[]; samples: Record<string, number[]> }> {
  const first: number[] = [];
  const later: number[] = [];
  const bash: number[] = [];
  const steps = [async () => void first.push(await stigmerPortToRun(false)), async () => void later.push(await stigmerPortToRun(true)), async () => void bash.push(await bashPortToRun())];
  for (let i = 0; i < rounds; i++) for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
  const B = '8 port -> run';
  return {
    rows: [
      { bench: B, metric: 'port opens -> dependent process runs (first exec of the run)', unit: 'ms', stats: stats(first), goal: { max: 15 } },
      { bench: B, metric: 'port opens -> dependent process runs (an exec ran before)', unit: 'ms', stats: stats(later), goal: { max: 15 } },
      { bench: B, metric: '  bash, 10 ms polling loop', unit: 'ms', stats: stats(bash) },
      { bench: B, metric: '  first exec / bash', unit: 'x', stats: stats(first.map((v, i) => v / bash[i]!), 2) },
      { bench: B, metric: '  later exec / bash', unit: 'x', stats: stats(later.map((v, i) => v / bash[i]!), 2) },
    ],
    samples: { first, later, bash },
  };
}

export const whole: Suite = {
  name: 'whole',
  title: 'whole processes: stack up/down vs bash + kill, exec tasks vs xargs -P2, port open -> dependent process runs',
  async run({ quick }): Promise<SuiteResult> {
    const rounds = quick ? 3 : 7;
    note(`up/down: ${rounds} rounds of stigmer up + down, bash + kill, node -e 0, the bare work`);
    const stack = await stackRows(rounds);
    const sizes = quick ? [100, 1000] : [100, 1000, 5000];
    note(`exec: ${sizes.join(' / ')} tasks, ${rounds} pairs each`);
    const exec = await execRows(sizes, rounds);
    note(`port -> run: ${quick ? 3 : 9} rounds`);
    const port = await portToRunRows(quick ? 3 : 9);
    return { name: 'whole', rows: [...stack.rows, ...exec.rows, ...port.rows], details: { stack: stack.samples, exec: exec.samples, portToRun: port.samples } };
  },
};
