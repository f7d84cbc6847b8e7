/**
 * The benchmark helpers (statistics, critical path, table), and the engine on a large in-process
 * graph the way the scale benchmark drives it: every task runs, `${{ tasks.X.outputs.Y }}` reads
 * its needs' outputs, and a failure cancels the tasks in flight. No timing is asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { formatTable } from '../bench/report.js';
import { stats } from '../bench/lib.js';
import { NEEDS, criticalPath, stigmerYaml, taskWeights } from '../bench/stack.js';
import { concurrentlyCommand, wireitPackage } from '../bench/compare.js';
import { bashStackScript, execTasksYaml } from '../bench/whole.js';
import { BEGIN, END, readmeBlock, replaceBlock } from '../bench/readme-table.js';
import { runGraph } from '../src/engine/run.js';
import type { CancelledEvent, EngineEvent, FailedEvent } from '../src/model/event.js';
import { describeFailure, fail } from '../src/model/failure.js';
import { buildGraph } from '../src/engine/graph.js';
import { parseTasks } from '../src/engine/load.js';
import type { TaskSpec } from '../src/model/task.js';
import { createPlainRenderer } from '../src/render/plain.js';
import { StateStore } from '../src/engine/state.js';
import { TaskError, type TaskKind } from '../src/model/kind.js';
import { kinds } from '../src/commands/kinds.js';
import { kindRegistry } from '../src/model/kind.js';

test('stats: median of odd and even samples, min, max', () => {
  assert.deepEqual(stats([5, 1, 3]), { median: 3, min: 1, max: 5, runs: [5, 1, 3] });
  assert.equal(stats([4, 1, 3, 2]).median, 2.5);
  assert.throws(() => stats([]), /no samples/);
  // ratios keep two decimals
  assert.deepEqual(stats([1.234, 1.5, 1.126], 2), { median: 1.23, min: 1.13, max: 1.5, runs: [1.23, 1.5, 1.13] });
});

test('critical path of the bench stack follows the heaviest chain of needs', () => {
  const w = taskWeights({ config: 50, download: 200, secrets: 50, serviceStarted: 60, temporalListen: 360, serverListen: 260, runnerListen: 160 });
  const cp = criticalPath(w);
  assert.deepEqual(cp.path, ['resolve-config', 'download-temporal', 'start-temporal', 'wait-temporal', 'start-agent-runner']);
  assert.equal(cp.ms, 50 + 200 + 60 + 300 + 160);
  // A slow server moves the path through it.
  const slow = criticalPath({ ...w, 'start-server': 900 });
  assert.deepEqual(slow.path, ['resolve-config', 'gather-secrets', 'start-server', 'start-agent-runner']);
});

test('the bench stack is a valid tasks file with the same needs as the other tools get', async () => {
  const yaml = stigmerYaml({ temporal: 17233, server: 17234, runner: 17235 });
  const file = await parseTasks(yaml, '/bench/stigmer.tasks.yaml', 'stigmer.tasks.yaml', { kinds });
  assert.equal(file.tasks.size, 7);
  for (const [name, needs] of Object.entries(NEEDS)) assert.deepEqual(file.tasks.get(name)?.needs, needs, name);
  const w = wireitPackage({ temporal: 17233, server: 17234, runner: 17235 }) as { wireit: Record<string, { dependencies?: string[] }> };
  assert.deepEqual(w.wireit['start-agent-runner']?.dependencies, ['start-temporal', 'start-server', 'gather-secrets']);
  assert.match(concurrentlyCommand({ temporal: 17233, server: 17234, runner: 17235 }), /wait-on tcp:127\.0\.0\.1:17233 tcp:127\.0\.0\.1:17234 && exec /);
});

test('the whole-process rows: N independent exec tasks, and a bash stack with the same order of work', async () => {
  const file = await parseTasks(execTasksYaml(25), '/bench/stigmer.tasks.yaml', 'stigmer.tasks.yaml', { kinds });
  assert.equal(file.tasks.size, 25);
  for (const t of file.tasks.values()) {
    assert.equal(t.uses, 'exec');
    assert.deepEqual(t.needs, []);
  }
  const script = bashStackScript({ temporal: 17233, server: 17234, runner: 17235 }).split('\n');
  const at = (re: RegExp): number => script.findIndex((l) => re.test(l));
  // the agent-runner starts only once both other ports answer, and the script says ready after its own
  assert.ok(at(/until open 17233 && open 17234/) < at(/--listen' '17235'/));
  assert.ok(at(/--listen' '17235'/) < at(/until open 17235/));
  assert.ok(at(/until open 17235/) < at(/^echo ready$/));
});

test("the README block lists each goal row of the run, met or missed, with the run's node -e 0", () => {
  const block = readmeBlock(
    [
      {
        name: 'x',
        details: {},
        rows: [
          { bench: '4 cold start', metric: 'node -e 0 (the floor)', unit: 'ms', stats: stats([80, 90, 85]) },
          { bench: '4 cold start', metric: 'a | b / node -e 0', unit: 'x', stats: stats([1.2, 1.3, 1.25], 2), goal: { max: 1.5 } },
          { bench: '3 scale', metric: 'per task', unit: 'us', stats: stats([70]), goal: { max: 60 } },
        ],
      },
    ],
    { date: '2026-12-02T14:00:00.000Z', node: 'v20.20.0', cpus: 2, loadavg: [1, 2, 3] },
  );
  const lines = block.split('\n');
  assert.equal(lines[0], BEGIN);
  assert.equal(lines.at(-1), END);
  assert.match(lines[1]!, /2026-12-02 14:00 UTC, Node v20\.20\.0, 2 CPUs.*`node -e 0` median 85\.0 ms/);
  assert.ok(lines.includes('| 4 cold start | a \\| b / node -e 0 | 1.25x | 1.20x .. 1.30x | 3 | <= 1.50x | met |'));
  assert.ok(lines.includes('| 3 scale | per task | 70.0 us | 70.0 us .. 70.0 us | 1 | <= 60.0 us | **missed** |'));
  assert.equal(lines.filter((l) => l.includes('floor')).length, 0);
  assert.equal(replaceBlock(`a\n${BEGIN}\nold\n${END}\nb`, block), `a\n${block}\nb`);
  assert.equal(replaceBlock('no markers', block), undefined);
});

test('the table marks goals met and missed', () => {
  const table = formatTable([
    {
      name: 'x',
      details: {},
      rows: [
        { bench: '9 demo', metric: 'fast', unit: 'ms', stats: stats([10, 12, 11]), goal: { max: 30 } },
        { bench: '9 demo', metric: 'slow', unit: 'ms', stats: stats([50]), goal: { max: 30 } },
        { bench: '9 demo', metric: 'info', unit: 'MB', stats: stats([1.5]) },
      ],
    },
  ]).split('\n');
  assert.equal(table.length, 5);
  assert.match(table[2]!, /^9 demo\s+fast\s+11\.0 ms\s+10\.0 ms \.\. 12\.0 ms\s+3\s+<= 30\.0 ms\s+ok$/);
  assert.match(table[3]!, /slow .* MISSED$/);
  assert.match(table[4]!, /info\s+1\.5 MB\s+1\.5 MB \.\. 1\.5 MB\s+1$/);
});

/** A kind that adds one to its `n` parameter (in-process, instant). */
const increment: TaskKind<{ n: number }> = { name: 'test-increment', mode: 'oneshot', pure: true, run: async (ctx) => ({ outputs: { n: Number(ctx.with.n) + 1 } }) };
/** Waits until aborted. */
const hang: TaskKind = {
  name: 'test-hang',
  mode: 'oneshot',
  run: (ctx) => new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(new Error('aborted')), { once: true })),
};
const boom: TaskKind = {
  name: 'test-boom',
  mode: 'oneshot',
  run: async () => {
    await new Promise((r) => setTimeout(r, 20));
    throw new TaskError(fail.invalidInput('boom'));
  },
};

/** The engine gets only these kinds: it knows none of its own. */
const testKinds = kindRegistry({
  'test-increment': async () => ({ default: increment as TaskKind<any> }),
  'test-hang': async () => ({ default: hang }),
  'test-boom': async () => ({ default: boom }),
});

function graphOf(specs: Array<Pick<TaskSpec, 'name' | 'uses' | 'needs' | 'with'>>): ReturnType<typeof buildGraph> {
  const tasks = new Map<string, TaskSpec>(specs.map((s) => [s.name, { ...s, optional: false, env: {} }]));
  return buildGraph({ path: '/t/x.yaml', displayPath: 'x.yaml', dir: tmpdir(), tasks, usesConfig: false });
}

async function run(graph: ReturnType<typeof buildGraph>, events: EngineEvent[] = []): Promise<Awaited<ReturnType<typeof runGraph>>> {
  const dir = mkdtempSync(join(tmpdir(), 'stigmer-test-bench-'));
  try {
    const renderer = createPlainRenderer(new Writable({ write: (_c, _e, cb) => cb() }));
    return await runGraph({
      graph,
      kinds: testKinds,
      baseDir: dir,
      dataDir: dir,
      state: new StateStore(join(dir, 'state.json')),
      config: {},
      env: {},
      signal: new AbortController().signal,
      canPrompt: false,
      emit: (ev) => {
        events.push(ev);
        renderer.event(ev);
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a 3,000-task chain: every task runs and reads its need\'s outputs', async () => {
  const specs = Array.from({ length: 3000 }, (_, i) => ({
    name: `t${i}`,
    uses: 'test-increment',
    needs: i ? [`t${i - 1}`] : [],
    with: { n: i ? `\${{ tasks.t${i - 1}.outputs.n }}` : 0 },
  }));
  const outcome = await run(graphOf(specs));
  assert.equal(outcome.ok, true);
  assert.equal([...outcome.status.values()].filter((s) => s === 'done').length, 3000);
  assert.deepEqual(outcome.outputs.get('t2999'), { n: 3000 });
});

test('a reference to a task with no outputs still fails with its message', async () => {
  // "constructor" is a valid task name: the lookup must not find Object's own properties.
  const events: EngineEvent[] = [];
  const outcome = await run(graphOf([{ name: 'a', uses: 'test-increment', needs: [], with: { n: '${{ tasks.constructor.outputs.n }}' } }]), events);
  assert.equal(outcome.ok, false);
  assert.deepEqual(outcome.failed, ['a']);
  assert.equal(describeFailure(events.find((e): e is FailedEvent => e.type === 'failed')!.failure).message, 'tasks.constructor.outputs.n: task constructor has no outputs (it did not run)');
});

test('a failure cancels every task in flight and skips the rest', async () => {
  const hanging = Array.from({ length: 30 }, (_, i) => ({ name: `h${i}`, uses: 'test-hang', needs: [], with: {} }));
  const events: EngineEvent[] = [];
  const outcome = await run(graphOf([...hanging, { name: 'boom', uses: 'test-boom', needs: [], with: {} }, { name: 'after', uses: 'test-increment', needs: ['h0'], with: { n: 1 } }]), events);
  assert.equal(outcome.ok, false);
  assert.deepEqual(outcome.failed, ['boom']);
  for (const h of hanging) assert.equal(outcome.status.get(h.name), 'cancelled', h.name);
  assert.equal(outcome.status.get('after'), 'skipped');
  assert.equal(events.find((e): e is CancelledEvent => e.task === 'h7' && e.type === 'cancelled')?.why, 'boom failed');
});

test('1,000 tasks ready at once all start (in waves), tallest first then file order, before what needs them', async () => {
  const roots = Array.from({ length: 1000 }, (_, i) => ({ name: `r${i}`, uses: 'test-increment', needs: [], with: { n: i } }));
  // r999 has the longest chain above it: the tallest root goes first.
  const events: EngineEvent[] = [];
  const outcome = await run(graphOf([...roots, { name: 'top', uses: 'test-increment', needs: ['r999'], with: { n: 0 } }, { name: 'top2', uses: 'test-increment', needs: ['top'], with: { n: 0 } }, { name: 'all', uses: 'test-increment', needs: roots.map((r) => r.name), with: { n: 0 } }]), events);
  assert.equal(outcome.ok, true);
  const started = events.filter((e) => e.type === 'started').map((e) => e.task);
  assert.deepEqual(started.slice(0, 1000), ['r999', ...roots.slice(0, 999).map((r) => r.name)]);
  assert.deepEqual(new Set(started.slice(1000)), new Set(['top', 'top2', 'all']));
  for (const r of roots) assert.equal(outcome.status.get(r.name), 'done', r.name);
  assert.ok(events.findIndex((e) => e.task === 'all' && e.type === 'started') > Math.max(...roots.map((r) => events.findIndex((e) => e.task === r.name && e.type === 'done'))));
});
