/**
 * `${{ ... }}` references in task values: dotted paths only, never code.
 *
 *   ${{ config.backend.local.llm.provider }}   the resolved stigmer config
 *   ${{ env.HOME }}                            the environment (with .env under it); unset -> ""
 *   ${{ tasks.resolve-config.outputs.temporal.address }}   a need's outputs
 *
 * A string that is exactly one reference evaluates to the raw value (a boolean for `if`, a number
 * for a port, an object); references inside a longer string are interpolated as text.
 */
export const EXPRESSION = /\$\{\{\s*(.*?)\s*\}\}/g;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
const WHOLE = /^\$\{\{\s*(.*?)\s*\}\}$/;

export type Ref =
  | { root: 'config'; path: string[]; text: string }
  | { root: 'env'; name: string; text: string }
  | { root: 'tasks'; task: string; path: string[]; text: string };

/** Parse the inside of `${{ }}`; returns an error message when it is not a valid reference. */
export function parseRef(text: string): Ref | string {
  const parts = text.split('.');
  if (!text || parts.some((p) => !SEGMENT.test(p))) {
    return `"${text}" is not a reference: only dotted paths like config.a.b, env.NAME or tasks.NAME.outputs.KEY are allowed`;
  }
  const [root, ...rest] = parts as [string, ...string[]];
  switch (root) {
    case 'config':
      return { root, path: rest, text };
    case 'env':
      if (rest.length !== 1) return `"${text}": expected env.NAME`;
      return { root, name: rest[0]!, text };
    case 'tasks':
      if (rest.length < 3 || rest[1] !== 'outputs') return `"${text}": expected tasks.NAME.outputs.KEY`;
      return { root, task: rest[0]!, path: rest.slice(2), text };
    default:
      return `unknown name "${root}" in "${text}" (expected config, env or tasks)`;
  }
}

/** Every reference in a string, with its offset. */
export function findRefs(s: string): { text: string; index: number }[] {
  const out: { text: string; index: number }[] = [];
  for (const m of s.matchAll(EXPRESSION)) out.push({ text: m[1]!, index: m.index! });
  return out;
}

export interface Scope {
  config: unknown;
  env: Record<string, string | undefined>;
  tasks: Record<string, { outputs: Record<string, unknown> } | undefined>;
}

export class EvalError extends Error {}

function dig(value: unknown, path: string[]): unknown {
  let cur = value;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export function lookup(ref: Ref, scope: Scope): unknown {
  switch (ref.root) {
    case 'env':
      return scope.env[ref.name] ?? '';
    case 'config': {
      const v = dig(scope.config, ref.path);
      if (v === undefined) throw new EvalError(`${ref.text} is not set in the config`);
      return v;
    }
    case 'tasks': {
      const t = scope.tasks[ref.task];
      if (!t) throw new EvalError(`${ref.text}: task ${ref.task} has no outputs (it did not run)`);
      const v = dig(t.outputs, ref.path);
      if (v === undefined) {
        const keys = Object.keys(t.outputs);
        throw new EvalError(`${ref.text} is not set (${ref.task} outputs: ${keys.length ? keys.join(', ') : 'none'})`);
      }
      return v;
    }
  }
}

function evalString(s: string, scope: Scope): unknown {
  const whole = WHOLE.exec(s);
  if (whole && !s.slice(3).includes('${{')) {
    const ref = parseRef(whole[1]!);
    if (typeof ref === 'string') throw new EvalError(ref);
    return lookup(ref, scope);
  }
  return s.replace(EXPRESSION, (_m, inner: string) => {
    const ref = parseRef(inner);
    if (typeof ref === 'string') throw new EvalError(ref);
    const v = lookup(ref, scope);
    return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  });
}

/** Evaluate every reference inside a value (strings, arrays, objects). */
export function evaluate(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') return value.includes('${{') ? evalString(value, scope) : value;
  if (Array.isArray(value)) return value.map((v) => evaluate(v, scope));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = evaluate(v, scope);
    return out;
  }
  return value;
}

/** `if:` semantics: false, "false", "", 0, null and undefined are false. */
export function truthy(v: unknown): boolean {
  if (typeof v === 'string') return !['', 'false', '0', 'no', 'off'].includes(v.trim().toLowerCase());
  return Boolean(v);
}
