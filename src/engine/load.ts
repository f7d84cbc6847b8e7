/**
 * Loading a tasks file: YAML -> schema (precompiled ajv) -> graph checks -> references. Every
 * problem of the file is collected and reported together as `file:line:col: message` with a caret;
 * nothing runs unless the whole file is valid.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { isScalar, type Document, type LineCounter, type Node as YamlNode } from 'yaml';
import { didYouMean, formatDiagnostics, suggesting, type Diagnostic } from '../util/diagnostics.js';
import { readYaml } from '../util/yaml-read.js';
import { diagnosticAt, findNode, pairIndex, problemDiagnostic, type AjvError, type Validator } from '../util/yaml-source.js';
import { fieldName, schemaProblems } from '../util/schema-errors.js';
import { UserError, EXIT } from '../util/errors.js';
import { findRefs, parseRef } from './expressions.js';
import { validatorFile } from '../util/paths.js';
import type { TaskSpec } from '../model/task.js';
import type { KindRegistry } from '../model/kind.js';

export interface TasksFile {
  /** absolute path */
  path: string;
  /** as the user named it, for messages */
  displayPath: string;
  /** directory relative paths resolve against */
  dir: string;
  /** in file order */
  tasks: Map<string, TaskSpec>;
  /** some expression reads `${{ config.* }}`: the run needs the config */
  usesConfig: boolean;
}

export interface LoadOptions {
  /** the kinds `uses:` may name */
  kinds: KindRegistry;
  /**
   * The resolved config, to check `config.*` references; called only when the file has one, so a
   * file that never mentions `config` works whatever state the config is in. Skipped when absent.
   */
  config?: () => Promise<unknown>;
}

let validator: Validator | undefined;
/**
 * The precompiled validator: an ESM module that Node >= 20.19 requires (as config's is). Required,
 * not imported: validate and graph run from a script with a code cache (scripts/bundle.mjs), whose
 * code cannot import().
 */
function tasksValidator(): Validator {
  validator ??= (createRequire(import.meta.url)(validatorFile('tasks')) as { default: Validator }).default;
  return validator;
}

/** Diagnostics at paths of one parsed tasks file. */
class Positions {
  /** a file with 40,000 tasks must not scan its tasks map once per diagnostic */
  readonly lookup = pairIndex();
  constructor(
    readonly doc: Document,
    readonly lc: LineCounter,
  ) {}
  /** the value node at a path, and the key node holding it */
  find(path: (string | number)[]): { node?: YamlNode | undefined; key?: YamlNode | undefined } {
    return findNode(this.doc, path, this.lookup);
  }
  diag(file: string, path: (string | number)[], message: string, opts: { onKey?: boolean; offset?: number; length?: number } = {}): Diagnostic {
    const { node, key } = this.find(path);
    const target = opts.onKey && key ? key : (node ?? key);
    return diagnosticAt(file, this.lc, target, message, { offset: opts.offset, length: opts.length, maxLength: 80 });
  }
}

/** One diagnostic per schema problem, worded by util/schema-errors.ts. */
function schemaDiagnostics(errors: AjvError[], data: unknown, pos: Positions, file: string): Diagnostic[] {
  return schemaProblems(errors, data).map((p) => problemDiagnostic(file, pos.doc, pos.lc, p, pos.lookup));
}

/**
 * Find a cycle among `needs` (depth-first, with an explicit stack: a chain of 40,000 tasks must
 * not overflow the call stack); returns the path a -> b -> a, or undefined.
 */
export function findCycle(tasks: Map<string, { needs: string[] }>): string[] | undefined {
  const color = new Map<string, 1 | 2>();
  for (const root of tasks.keys()) {
    if (color.has(root)) continue;
    const path: string[] = [root];
    const next: number[] = [0]; // per path entry: the index of the need to look at next
    color.set(root, 1);
    while (path.length) {
      const n = path[path.length - 1]!;
      const needs = tasks.get(n)?.needs ?? [];
      const i = next[next.length - 1]!;
      if (i >= needs.length) {
        color.set(n, 2);
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = i + 1;
      const m = needs[i]!;
      if (!tasks.has(m)) continue;
      const c = color.get(m);
      if (c === 1) return [...path.slice(path.indexOf(m)), m];
      if (c === undefined) {
        color.set(m, 1);
        path.push(m);
        next.push(0);
      }
    }
  }
  return undefined;
}

/** Every task reachable through `needs` from `name` (not including it). */
export function transitiveNeeds(tasks: Map<string, { needs: string[] }>, name: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...(tasks.get(name)?.needs ?? [])];
  while (todo.length) {
    const n = todo.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    todo.push(...(tasks.get(n)?.needs ?? []));
  }
  return seen;
}

/** Read, parse and check a tasks file. Throws UserError (exit 2) listing every problem. */
export async function loadTasksFile(file: string, opts: LoadOptions): Promise<TasksFile> {
  const path = resolve(file);
  const displayPath = relative(process.cwd(), path).startsWith('..') ? path : relative(process.cwd(), path) || path;
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${displayPath}: no such file. Point at a tasks file with -f/--file (default ./stigmer.tasks.yaml).`
        : `${displayPath}: cannot read: ${(err as Error).message}`,
      EXIT.usage,
    );
  }
  return parseTasks(source, path, displayPath, opts);
}

export async function parseTasks(source: string, path: string, displayPath: string, opts: LoadOptions): Promise<TasksFile> {
  const read = readYaml(source, displayPath, {
    underline: true,
    // yaml would keep only the last of two equal keys, silently
    duplicateMessage: (at, key, first) =>
      at.length === 1 && at[0] === 'tasks' ? `duplicate task "${key}" (first defined on line ${first})` : `${at.length ? `${fieldName(at)}: ` : ''}duplicate key "${key}" (first defined on line ${first})`,
  });
  const { doc, lc } = read;
  const pos = new Positions(doc, lc);
  const diags: Diagnostic[] = read.diagnostics;
  const fail = (): never => {
    throw new UserError(formatDiagnostics(diags, source), EXIT.usage);
  };
  if (diags.length) fail();
  const data = read.data;
  const validate = tasksValidator();
  if (!validate(data)) diags.push(...schemaDiagnostics(validate.errors ?? [], data, pos, displayPath));

  const tasks = new Map<string, TaskSpec>();
  const raw = (data && typeof data === 'object' ? (data as Record<string, unknown>)['tasks'] : undefined) as Record<string, Record<string, unknown>> | undefined;
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [name, t] of Object.entries(raw)) {
      if (!t || typeof t !== 'object') continue;
      tasks.set(name, {
        name,
        uses: typeof t['uses'] === 'string' ? t['uses'] : '',
        needs: Array.isArray(t['needs']) ? (t['needs'] as unknown[]).filter((n): n is string => typeof n === 'string') : [],
        with: (t['with'] && typeof t['with'] === 'object' ? t['with'] : {}) as Record<string, unknown>,
        ...(t['if'] !== undefined ? { if: t['if'] } : {}),
        optional: t['optional'] === true,
        ...(t['timeout'] !== undefined ? { timeout: t['timeout'] } : {}),
        env: (t['env'] && typeof t['env'] === 'object' ? t['env'] : {}) as Record<string, unknown>,
        ...(typeof t['description'] === 'string' ? { description: t['description'] } : {}),
        hints: (t['hints'] && typeof t['hints'] === 'object' ? t['hints'] : {}) as Record<string, string>,
      });
    }
  }

  // Kinds and needs.
  const kindNames = opts.kinds.names;
  for (const t of tasks.values()) {
    if (t.uses && !kindNames.includes(t.uses)) {
      diags.push(pos.diag(displayPath, ['tasks', t.name, 'uses'], `tasks.${t.name}.uses: unknown task kind "${t.uses}"${didYouMean(t.uses, kindNames)} (known: ${kindNames.join(', ')})`));
    }
    t.needs.forEach((n, i) => {
      if (n === t.name) diags.push(pos.diag(displayPath, ['tasks', t.name, 'needs', i], `tasks.${t.name}.needs[${i}]: a task cannot need itself`));
      else if (!tasks.has(n)) diags.push(suggesting(pos.diag(displayPath, ['tasks', t.name, 'needs', i], `tasks.${t.name}.needs[${i}]: unknown task "${n}"`), n, () => tasks.keys()));
    });
  }
  const selfless = new Map([...tasks].map(([k, v]) => [k, { needs: v.needs.filter((n) => n !== k) }]));
  const cycle = findCycle(selfless);
  if (cycle) {
    const from = cycle[cycle.length - 2]!;
    const to = cycle[cycle.length - 1]!;
    const i = tasks.get(from)!.needs.indexOf(to);
    diags.push(pos.diag(displayPath, ['tasks', from, 'needs', i], `dependency cycle: ${cycle.join(' -> ')}`));
  }

  // References. `config.*` ones are checked once all are seen, and only if there is one.
  const configRefs: { path: (string | number)[]; at: { offset: number; length: number }; where: string; keys: string[] }[] = [];
  for (const t of tasks.values()) {
    // computed on the first tasks.* reference only: most tasks have none
    let reachableSet: Set<string> | undefined;
    const reachable = (): Set<string> => (reachableSet ??= cycle ? new Set(t.needs) : transitiveNeeds(tasks, t.name));
    const visit = (value: unknown, path: (string | number)[]): void => {
      if (typeof value === 'string') {
        for (const r of findRefs(value)) {
          const { node } = pos.find(path);
          const quoted = isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') ? 1 : 0;
          const at = { offset: quoted + r.index, length: r.text.length + 6 };
          const ref = parseRef(r.text);
          const where = fieldName(path);
          if (typeof ref === 'string') diags.push(pos.diag(displayPath, path, `${where}: ${ref}`, at));
          else if (ref.root === 'tasks') {
            if (!tasks.has(ref.task)) {
              diags.push(suggesting(pos.diag(displayPath, path, `${where}: unknown task "${ref.task}" in \${{ ${r.text} }}`, at), ref.task, () => tasks.keys()));
            } else if (!reachable().has(ref.task)) {
              diags.push(pos.diag(displayPath, path, `${where}: \${{ ${r.text} }} refers to task "${ref.task}", which is not among the needs of "${t.name}" (add it to needs)`, at));
            }
          } else if (ref.root === 'config') configRefs.push({ path, at, where, keys: ref.path });
        }
      } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, i]));
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
    };
    const spec = raw?.[t.name] ?? {};
    for (const key of ['with', 'env', 'if', 'timeout', 'hints'] as const) if (spec[key] !== undefined) visit(spec[key], ['tasks', t.name, key]);
  }

  if (configRefs.length && opts.config) {
    const config = await opts.config();
    for (const { path: p, at, where, keys } of configRefs) {
      let cur: unknown = config;
      for (let i = 0; i < keys.length; i++) {
        const seg = keys[i]!;
        const obj = cur && typeof cur === 'object' ? (cur as Record<string, unknown>) : undefined;
        if (!obj || !(seg in obj)) {
          const known = obj ? Object.keys(obj) : [];
          diags.push(pos.diag(displayPath, p, `${where}: unknown config key "${['config', ...keys.slice(0, i + 1)].join('.')}"${didYouMean(seg, known)}`, at));
          break;
        }
        cur = obj[seg];
      }
    }
  }

  if (diags.length) fail();
  return { path, displayPath, dir: dirname(path), tasks, usesConfig: configRefs.length > 0 };
}
