/**
 * Preflight: before the live view takes the terminal, the graph's pure tasks (no side effects:
 * `resolve-config`, `gather-secrets`, ...) run once on their own, silently. So
 *   - a prompt one of them needs (an API key) is asked on the bare terminal, never under the view,
 *     and the answer is kept for the real run, which asks nothing twice;
 *   - Ctrl-C at that prompt is an interrupt (exit 130) with nothing started;
 *   - a failure among them (a missing key under --no-input) ends the run before anything with side
 *     effects (a download, a service) has started: the real run then runs only the pure tasks, so
 *     the failure is reported as usual.
 */
import type { Graph } from './graph.js';
import { buildGraph } from './graph.js';
import type { TasksFile } from './load.js';
import { runGraph, type RunOptions } from './run.js';
import type { PromptOptions } from '../model/kind.js';

export interface PreflightResult {
  /** the graph the real run should run: the whole one, or only its pure tasks after a failure */
  graph: Graph;
  /** answers given at preflight prompts, reused by the real run */
  answered: (task: string, options: PromptOptions) => string | undefined;
  /** true when the run was interrupted during preflight (Ctrl-C at a prompt): stop here */
  interrupted: boolean;
}

/** The tasks that are pure and need only pure tasks: they can run before anything else. */
async function pureClosure(graph: Graph, kinds: RunOptions['kinds']): Promise<string[]> {
  const pure = new Set<string>();
  for (const name of graph.order) {
    const node = graph.nodes.get(name)!;
    if ((await kinds.load(node.spec.uses)).pure && node.needs.every((n) => pure.has(n))) pure.add(name);
  }
  return [...pure];
}

const key = (task: string, options: PromptOptions): string => `${task}\u0000${options.message}`;

export async function preflight(o: Omit<RunOptions, 'graph' | 'emit' | 'force'>, file: TasksFile, graph: Graph): Promise<PreflightResult> {
  const answers = new Map<string, string>();
  const answered = (task: string, options: PromptOptions): string | undefined => answers.get(key(task, options));
  const pure = await pureClosure(graph, o.kinds);
  if (pure.length === 0 || pure.length === graph.nodes.size) return { graph, answered, interrupted: false };
  const sub = buildGraph(file, pure);
  const outcome = await runGraph({
    ...o,
    graph: sub,
    emit: () => {},
    ...(o.prompt
      ? {
          prompt: async (task: string, options: PromptOptions) => {
            const answer = await o.prompt!(task, options);
            answers.set(key(task, options), answer);
            return answer;
          },
        }
      : {}),
  });
  if (o.signal.aborted) return { graph: sub, answered, interrupted: true };
  return { graph: outcome.ok ? graph : sub, answered, interrupted: false };
}
