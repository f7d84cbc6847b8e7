/**
 * A task in its three stages, as lage separates `TargetConfig` from `Target`: what the YAML says
 * (`TaskSpec`), where it sits in the graph (`TaskNode`), and what actually runs once its
 * expressions are evaluated (`Target`).
 */

/** A task as the YAML says it. */
export interface TaskSpec {
  name: string;
  uses: string;
  needs: string[];
  with: Record<string, unknown>;
  if?: unknown;
  optional: boolean;
  timeout?: unknown;
  env: Record<string, unknown>;
  description?: string;
  /** hints by failure reason, shown instead of the kind's own */
  hints?: Record<string, string>;
}

/** A task's place in the graph (src/engine/graph.ts builds these). */
export interface TaskNode {
  spec: TaskSpec;
  name: string;
  needs: string[];
  dependents: string[];
  /** longest chain of needs below it (0 for a task with no needs) */
  depth: number;
  /** longest chain of dependents above it (0 for a task nothing needs): start the tallest first */
  height: number;
}

/** A task ready to run: its node plus the inputs its expressions resolved to at run time. */
export interface Target extends TaskNode {
  /** the kind's parameters, expressions evaluated */
  with: Record<string, unknown>;
  /** the task-level `env`, every value a string */
  env: Record<string, string>;
  /** the task's `timeout` in ms, when it has one */
  timeoutMs?: number;
  /** hash of `uses`, `with` and `env`: a change means the task must run again */
  specHash: string;
}
