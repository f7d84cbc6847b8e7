/**
 * Read-only views of a data dir: status and the plan of a tasks file (logs: logs.ts). None takes
 * the lock; status needs no valid tasks file or config (it reads only the state).
 */
import { join } from 'node:path';
import { EXIT } from '../util/errors.js';
import { formatMs } from '../model/failure.js';
import { criticalPath, type Graph } from './graph.js';
import { mask } from '../util/mask.js';
import { dataPaths } from '../util/paths.js';
import { isAlive } from '../process/proc.js';
import { StateStore } from './state.js';
import type { RecordedState, TaskRecord } from '../model/kind.js';

export interface TaskStatusView {
  task: string;
  kind: string;
  /** recorded status, or `dead` for a service whose process is gone */
  state: RecordedState;
  pid?: number;
  uptime_ms?: number;
  address?: string;
  last_probe?: string;
  error?: string;
  started_at?: string;
}

function view(task: string, rec: TaskRecord): TaskStatusView {
  const proc = rec.undo.find((u) => u.type === 'stop-process');
  const out = (rec.outputs ?? {}) as Record<string, unknown>;
  const v: TaskStatusView = { task, kind: rec.kind, state: rec.status };
  if (proc && proc.type === 'stop-process') {
    v.pid = proc.pid;
    if (isAlive(proc)) v.uptime_ms = Date.now() - Date.parse(proc.startedAt);
    else v.state = rec.status === 'ready' || rec.status === 'running' ? 'dead' : rec.status;
  }
  if (typeof out['address'] === 'string') v.address = out['address'];
  if (rec.lastProbe) v.last_probe = rec.lastProbe;
  if (rec.error) v.error = rec.error;
  if (rec.startedAt) v.started_at = rec.startedAt;
  return v;
}

export function readStatus(dataDir: string): { file?: string; tasks: TaskStatusView[] } {
  const data = StateStore.read(dataPaths(dataDir).state);
  if (!data) return { tasks: [] };
  const tasks = Object.entries(data.tasks)
    .sort((a, b) => (a[1].seq ?? Infinity) - (b[1].seq ?? Infinity))
    .map(([n, r]) => view(n, r));
  return { ...(data.file ? { file: data.file } : {}), tasks };
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function printStatus(dataDir: string, json: boolean): number {
  const s = readStatus(dataDir);
  if (json) {
    process.stdout.write(JSON.stringify({ data_dir: dataPaths(dataDir).root, file: s.file ?? null, tasks: s.tasks }, null, 2) + '\n');
    return EXIT.ok;
  }
  if (!s.tasks.length) {
    process.stdout.write(`nothing is running (no state in ${dataPaths(dataDir).root}; \`stigmer ls\` lists every stack)\n`);
    return EXIT.ok;
  }
  const rows = [['TASK', 'STATE', 'PID', 'UPTIME', 'ADDRESS', 'LAST PROBE / ERROR']];
  for (const t of s.tasks) {
    rows.push([t.task, t.state, t.pid ? String(t.pid) : '-', t.uptime_ms !== undefined ? formatMs(t.uptime_ms) : '-', t.address ?? '-', t.error ?? t.last_probe ?? '']);
  }
  process.stdout.write(mask(table(rows)) + '\n');
  if (s.file) process.stdout.write(`\nstack: ${s.file}\n`);
  return EXIT.ok;
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
