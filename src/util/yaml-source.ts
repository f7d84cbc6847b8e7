/**
 * What the readers of YAML files (tasks file, config.yaml, agent.yaml) share to turn problems into
 * `file:line:col` diagnostics: YAML syntax errors, JSON-pointer paths of ajv errors, and the node
 * (value or key) a path points at. Schema errors are worded by src/util/schema-errors.ts and placed
 * here; src/util/yaml-read.ts parses and src/util/diagnostics.ts formats the result.
 */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';
import type { Diagnostic } from './diagnostics.js';
import type { SchemaProblem } from './schema-errors.js';

export { decodePointer, pointerPath, type AjvError, type Validator } from './json-pointer.js';

/** The pair of a YAML map whose key reads `key`; undefined when `map` is not a map or has none. */
export function pairOf(map: unknown, key: string | number): Pair<Node, unknown> | undefined {
  if (!isMap(map)) return undefined;
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key)) as Pair<Node, unknown> | undefined;
}

/** How findNode finds the pair of a key in a map. */
export type PairLookup = (map: unknown, key: string | number) => Pair<Node, unknown> | undefined;

/**
 * pairOf with each map indexed on first use, for many lookups in a document that no longer
 * changes (pairOf scans the map every time).
 */
export function pairIndex(): PairLookup {
  const index = new WeakMap<object, Map<string, Pair<Node, unknown>>>();
  return (map, key) => {
    if (!isMap(map)) return undefined;
    let byKey = index.get(map);
    if (!byKey) {
      byKey = new Map();
      for (const p of map.items) {
        const name = isScalar(p.key) ? String(p.key.value) : undefined;
        if (name !== undefined && !byKey.has(name)) byKey.set(name, p as Pair<Node, unknown>);
      }
      index.set(map, byKey);
    }
    return byKey.get(String(key));
  };
}

/**
 * The value node at a path and the key node holding it. Where the path leaves the document, the
 * deepest node reached (and its key), with `found: false`.
 */
export function findNode(doc: Document, path: readonly (string | number)[], lookup: PairLookup = pairOf): { node?: Node | undefined; key?: Node | undefined; found: boolean } {
  let node: unknown = doc.contents;
  let key: Node | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = lookup(node, seg);
      if (!pair) return { node: node as Node, key, found: false };
      key = pair.key;
      node = pair.value;
    } else if (isSeq(node)) {
      const item: unknown = node.items[Number(seg)];
      if (item === undefined) return { node: node as Node, key, found: false };
      node = item;
      key = undefined;
    } else return { node: (node ?? undefined) as Node | undefined, key, found: false };
  }
  return { node: (node ?? undefined) as Node | undefined, key, found: true };
}

/**
 * A diagnostic at a node's text. Without a node it points at `fallback` (default: the start of
 * the file). `offset` moves the start into the node; `length` overrides the underline, which is
 * otherwise the node's text (at most `maxLength`), or one character without a node.
 */
export function diagnosticAt(
  file: string,
  lc: LineCounter,
  node: Node | null | undefined,
  message: string,
  opts: { fallback?: number | undefined; offset?: number | undefined; length?: number | undefined; maxLength?: number | undefined } = {},
): Diagnostic {
  const range = node?.range;
  const { line, col } = lc.linePos((range?.[0] ?? opts.fallback ?? 0) + (opts.offset ?? 0));
  const length = opts.length ?? (range ? Math.max(1, Math.min(range[1] - range[0], opts.maxLength ?? Infinity)) : 1);
  return { file, line, col, message, length };
}

/**
 * A schema problem at its place in the document: the key for a key's problem, else the value; a
 * scalar is underlined (at most 80 characters), a mapping or list marked by its first character.
 */
export function problemDiagnostic(file: string, doc: Document, lc: LineCounter, problem: SchemaProblem, lookup: PairLookup = pairOf): Diagnostic {
  const { node, key } = findNode(doc, problem.path, lookup);
  const target = problem.onKey && key ? key : (node ?? key);
  return diagnosticAt(file, lc, target, problem.message, isScalar(target) ? { maxLength: 80 } : { length: 1 });
}
