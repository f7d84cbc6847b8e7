/**
 * From a graph node to a `Target`: evaluate the task's `if`, `env`, `timeout` and `with` against
 * the config, the environment and the outputs of its needs so far.
 */
import { createHash } from 'node:crypto';
import { durationOr } from '../util/duration.js';
import { evaluate, truthy, type Scope } from './expressions.js';
import { fail, type Failure } from '../model/failure.js';
import { err, ok, type Result } from '../model/result.js';
import type { Target, TaskNode } from '../model/task.js';

/** The task runs with these inputs, or `if:` turned it off. */
export type Resolution = { run: Target } | { skip: string };

let lastSpec = { json: '', hash: '' };

/** The first 16 hex digits of the sha256 of the resolved spec (the last one kept: generated tasks repeat theirs). */
export function specHash(uses: string, w: unknown, env: unknown): string {
  const json = JSON.stringify({ uses, with: w, env });
  if (json !== lastSpec.json) lastSpec = { json, hash: createHash('sha256').update(json).digest().toString('hex', 0, 8) };
  return lastSpec.hash;
}

/** An expression that cannot be evaluated is an `invalid-input` failure of the task. */
export function resolveTask(node: TaskNode, scope: Scope): Result<Resolution, Failure> {
  const { spec, name } = node;
  try {
    if (spec.if !== undefined && !truthy(evaluate(spec.if, scope))) {
      return ok({ skip: `if: ${typeof spec.if === 'string' ? spec.if : JSON.stringify(spec.if)} is false` });
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(evaluate(spec.env, scope) as Record<string, unknown>)) env[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const timeoutMs = spec.timeout === undefined ? undefined : durationOr(evaluate(spec.timeout, scope), 0, `tasks.${name}.timeout`);
    const w = evaluate(spec.with, scope) as Record<string, unknown>;
    // Field by field, not {...node}: a spread gave every target a hidden class of its own.
    const { needs, dependents, depth, height } = node;
    const hash = specHash(spec.uses, w, env);
    const run: Target = timeoutMs
      ? { spec, name, needs, dependents, depth, height, with: w, env, timeoutMs, specHash: hash }
      : { spec, name, needs, dependents, depth, height, with: w, env, specHash: hash };
    return ok({ run });
  } catch (e) {
    return err(fail.invalidInput(e instanceof Error ? e.message : String(e)));
  }
}
