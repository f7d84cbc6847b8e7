/**
 * Read-only views of a data dir: status and the plan of a tasks file (logs: logs.ts). None takes
 * the lock; status needs no valid tasks file or config (it reads only the state).
 */
import { join } from 'node:path';
import { EXIT } from '../util/errors.js';
import { formatMs } from '../util/format.js';
import { criticalPath, type Graph } from './graph.js';
import { mask } from '../util/mask.js';
import { dataPaths } from '../util/paths.js';
import { StateStore } from './state.js';
import { readStatus, stackHealth, STATUS_EXIT, type SupervisorView, type TaskStatusView } from './status-view.js';

export { readStatus, type TaskStatusView } from './status-view.js';

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** "code 1" / "SIGKILL", and how long ago. */
export function describeExit(e: NonNullable<TaskStatusView['last_exit']>, now = Date.now()): string {
  return `${e.signal ? e.signal : `code ${e.code ?? '?'}`}, ${ago(e.at, now)}`;
}

/** "ok 2.0 s ago" / "failing (3) 1.1 s ago: <detail>" */
export function describeHealth(h: NonNullable<TaskStatusView['health']>, now = Date.now()): string {
  return h.ok ? `ok ${ago(h.at, now)}` : `failing (${h.failures}) ${ago(h.at, now)}${h.detail ? `: ${h.detail}` : ''}`;
}

export function ago(at: string, now = Date.now()): string {
  return `${formatMs(Math.max(0, now - Date.parse(at)))} ago`;
}

/** The supervisor line under a status table, or undefined when the stack has none. */
export function describeSupervisor(s: SupervisorView | null, now = Date.now()): string | undefined {
  if (!s) return undefined;
  if (s.alive) return `supervisor: pid ${s.pid}, up ${s.uptime_ms !== null ? formatMs(s.uptime_ms) : '?'}`;
  const seen = s.last_seen ? `, last seen ${s.last_seen} (${ago(s.last_seen, now)})` : '';
  return `supervisor: pid ${s.pid} is gone${seen}: nothing restarts the services now; \`stigmer up\` brings the stack back`;
}

/** The last column: why it is in its state, or what its probe last said. */
function note(t: TaskStatusView): string {
  if (t.state === 'restarting' && t.next_restart_in_ms !== undefined) return `next restart in ${formatMs(t.next_restart_in_ms)}`;
  if (t.state === 'crash-loop') return `gave up after ${t.restarts ?? '?'} restarts${t.error ? `: ${t.error}` : ''}`;
  // The readiness probe's result describes an instance that is up, not one being replaced.
  return t.error ?? (t.state === 'ready' || t.state === 'running' || t.state === 'done' ? (t.last_probe ?? '') : '');
}

/** Exit code 0 every service up, 1 degraded, 3 stopped (status-view.ts). */
export function printStatus(dataDir: string, json: boolean): number {
  const now = Date.now();
  const s = readStatus(dataDir, now);
  const health = stackHealth(s.tasks);
  const code = STATUS_EXIT[health];
  if (json) {
    process.stdout.write(mask(JSON.stringify({ data_dir: dataPaths(dataDir).root, file: s.file ?? null, state: health, tasks: s.tasks, supervisor: s.supervisor }, null, 2)) + '\n');
    return code;
  }
  if (!s.tasks.length) {
    process.stdout.write(`nothing is running (no state in ${dataPaths(dataDir).root}; \`stigmer ls\` lists every stack)\n`);
    return code;
  }
  // The supervision columns appear once a supervisor recorded something.
  const supervised = s.supervisor !== null || s.tasks.some((t) => t.restarts !== undefined || t.last_exit || t.health);
  const rows = [['TASK', 'STATE', 'PID', 'UPTIME', ...(supervised ? ['RESTARTS', 'LAST EXIT', 'HEALTH'] : []), 'ADDRESS', supervised ? 'NOTE' : 'LAST PROBE / ERROR']];
  for (const t of s.tasks) {
    const sup = supervised
      ? [t.restarts !== undefined ? String(t.restarts) : '-', t.last_exit ? describeExit(t.last_exit, now) : '-', t.health && t.uptime_ms !== undefined ? describeHealth(t.health, now) : '-']
      : [];
    rows.push([t.task, t.state, t.pid ? String(t.pid) : '-', t.uptime_ms !== undefined ? formatMs(t.uptime_ms) : '-', ...sup, t.address ?? '-', note(t)]);
  }
  const lines = [table(rows)];
  const supLine = describeSupervisor(s.supervisor, now);
  lines.push('', `${health === 'running' ? 'running' : health === 'stopped' ? 'stopped' : `degraded (${s.tasks.filter((t) => t.state !== 'ready' && t.state !== 'running' && t.state !== 'done' && t.state !== 'skipped').map((t) => `${t.task} ${t.state}`).join(', ')})`}${s.file ? `: ${s.file}` : ''}`);
  if (supLine) lines.push(supLine);
  process.stdout.write(mask(lines.join('\n')) + '\n');
  return code;
}

/** `stigmer graph`: tasks, needs and the critical path (weighted by the last recorded durations). */
export function describeGraph(graph: Graph, format: 'text' | 'mermaid' | 'json', dataDir: string): string {
  const state = StateStore.read(join(dataPaths(dataDir).root, 'state.json'));
  const known = (t: string): number | undefined => state?.tasks[t]?.durationMs;
  const weighted = graph.order.every((t) => known(t) !== undefined);
  const crit = criticalPath(graph, weighted ? (t) => known(t)! : () => 1);
  const onPath = new Set(crit.path);
  if (format === 'json') {
    return JSON.stringify(
      {
        tasks: graph.order.map((n) => {
          const node = graph.nodes.get(n)!;
          return { name: n, uses: node.spec.uses, needs: node.needs, depth: node.depth, optional: node.spec.optional, ...(node.spec.description ? { description: node.spec.description } : {}) };
        }),
        critical_path: crit.path,
        critical_path_weight: crit.total,
        weighted_by: weighted ? 'last-duration-ms' : 'task-count',
      },
      null,
      2,
    );
  }
  if (format === 'mermaid') {
    const id = (n: string): string => n.replace(/[^A-Za-z0-9_]/g, '_');
    const lines = ['graph TD'];
    for (const n of graph.order) {
      const node = graph.nodes.get(n)!;
      lines.push(`  ${id(n)}["${n}<br/><small>${node.spec.uses}</small>"]`);
    }
    for (const n of graph.order) for (const need of graph.nodes.get(n)!.needs) lines.push(`  ${id(need)} --> ${id(n)}`);
    if (crit.path.length) lines.push(`  classDef critical stroke-width:3px`, `  class ${crit.path.map(id).join(',')} critical`);
    return lines.join('\n');
  }
  const lines: string[] = [];
  const byDepth = new Map<number, string[]>();
  for (const n of graph.order) {
    const d = graph.nodes.get(n)!.depth;
    byDepth.set(d, [...(byDepth.get(d) ?? []), n]);
  }
  for (const [d, names] of [...byDepth].sort((a, b) => a[0] - b[0])) {
    lines.push(`level ${d}:`);
    for (const n of names) {
      const node = graph.nodes.get(n)!;
      const flags = [node.spec.uses, ...(node.spec.optional ? ['optional'] : []), ...(node.spec.if !== undefined ? [`if ${String(node.spec.if)}`] : [])];
      lines.push(`  ${onPath.has(n) ? '*' : ' '} ${n} [${flags.join(', ')}]${node.needs.length ? ` <- ${node.needs.join(', ')}` : ''}${node.spec.description ? `  # ${node.spec.description}` : ''}`);
    }
  }
  lines.push('');
  lines.push(`critical path (*): ${crit.path.join(' -> ')}${weighted ? ` (${formatMs(crit.total)} last run)` : ` (${crit.total} tasks)`}`);
  return lines.join('\n');
}
