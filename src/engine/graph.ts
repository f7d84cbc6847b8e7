/**
 * The plan: tasks with their needs and dependents, a topological order, depths, and the
 * critical path. Plain data; the engine and `stigmer graph` read it.
 */
import type { TasksFile } from './load.js';
import type { TaskNode } from '../model/task.js';

export type GraphNode = TaskNode;

export interface Graph {
  nodes: Map<string, GraphNode>;
  /** a topological order (needs before dependents), file order among equals */
  order: string[];
}

export function buildGraph(file: TasksFile, only?: string[]): Graph {
  let names = [...file.tasks.keys()];
  if (only && only.length) {
    const keep = new Set<string>();
    const todo = [...only];
    while (todo.length) {
      const n = todo.pop()!;
      if (keep.has(n)) continue;
      keep.add(n);
      todo.push(...(file.tasks.get(n)?.needs ?? []));
    }
    names = names.filter((n) => keep.has(n));
  }
  const nodes = new Map<string, GraphNode>();
  for (const n of names) {
    const spec = file.tasks.get(n)!;
    nodes.set(n, { spec, name: n, needs: [...spec.needs], dependents: [], depth: 0, height: 0 });
  }
  for (const node of nodes.values()) for (const need of node.needs) nodes.get(need)?.dependents.push(node.name);
  // Kahn's algorithm; the loader already rejected cycles.
  const indegree = new Map<string, number>();
  for (const [k, v] of nodes) indegree.set(k, v.needs.length);
  const order: string[] = [];
  const ready = names.filter((n) => indegree.get(n) === 0);
  // An index, not shift(): shifting a large array moves all of it, and a wide graph starts with thousands ready.
  for (let at = 0; at < ready.length; at++) {
    const n = ready[at]!;
    order.push(n);
    for (const d of nodes.get(n)!.dependents) {
      const left = indegree.get(d)! - 1;
      indegree.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  for (const n of order) {
    const node = nodes.get(n)!;
    node.depth = node.needs.reduce((m, need) => Math.max(m, nodes.get(need)!.depth + 1), 0);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = nodes.get(order[i]!)!;
    node.height = node.dependents.reduce((m, d) => Math.max(m, nodes.get(d)!.height + 1), 0);
  }
  // Among tasks that become ready together, the one with the longest chain ahead goes first.
  const byHeight = (a: string, b: string): number => nodes.get(b)!.height - nodes.get(a)!.height;
  for (const node of nodes.values()) if (node.dependents.length > 1) node.dependents.sort(byHeight);
  return { nodes, order };
}

/**
 * The longest chain through the graph, weighted by `weight(task)` (e.g. last run's durations;
 * 1 per task when nothing is known). Returns the chain and its total weight.
 */
export function criticalPath(graph: Graph, weight: (task: string) => number = () => 1): { path: string[]; total: number } {
  const best = new Map<string, { total: number; prev?: string }>();
  for (const n of graph.order) {
    const node = graph.nodes.get(n)!;
    let from: { total: number; prev?: string } = { total: 0 };
    for (const need of node.needs) {
      const b = best.get(need)!;
      if (b.total > from.total) from = { total: b.total, prev: need };
    }
    best.set(n, { total: from.total + weight(n), ...(from.prev ? { prev: from.prev } : {}) });
  }
  let end: string | undefined;
  for (const [n, b] of best) if (!end || b.total > best.get(end)!.total) end = n;
  const path: string[] = [];
  for (let cur = end; cur; cur = best.get(cur)!.prev) path.unshift(cur);
  return { path, total: end ? best.get(end)!.total : 0 };
}
