/**
 * The one way stigmer turns YAML text into data (tasks file, config.yaml, agent files). YAML can
 * say things plain data cannot hold, and the yaml library reports some of them by throwing
 * (`ReferenceError`), warning on the process (`emitWarning`) or naming its own API in a message.
 * Everything is checked here first and becomes a `file:line:col` diagnostic:
 *
 *   syntax errors          yaml's, reworded where they speak of the library
 *   nesting depth          deeper than MAX_DEPTH (downstream code walks data recursively)
 *   aliases                unknown (`*x` without `&x` before it), recursive, or expanding past
 *                          MAX_EXPANSION nodes (billion laughs)
 *   keys                   a list or map used as a key (a JS object key cannot hold it)
 *   duplicate keys         yaml's own error, or the reader's wording (`duplicateMessage`)
 *   numbers                not finite (`1e309`, `.inf`, `.nan`)
 *
 * Only a document that passes is converted with `toJS`; every pass is linear in its size.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic } from './diagnostics.js';

/** Deeper structures are refused: nothing stigmer reads nests past a dozen levels. */
export const MAX_DEPTH = 64;
/** Nodes the aliases of one document may expand to (a few MB of data at most). */
export const MAX_EXPANSION = 100_000;

export interface YamlReadOptions {
  /** put before yaml's own syntax messages, e.g. "invalid YAML: " */
  prefix?: string;
  /** underline a syntax error's whole text instead of one character */
  underline?: boolean;
  /**
   * The wording of a repeated key (`path` is where the map is). Without it, yaml's own
   * "Map keys must be unique" error is reported at the repeated key.
   */
  duplicateMessage?: (path: readonly string[], key: string, firstLine: number) => string;
}

export interface YamlRead {
  doc: Document;
  lc: LineCounter;
  /** the plain data; `undefined` when there are diagnostics */
  data: unknown;
  /** every problem found; empty when `data` is usable */
  diagnostics: Diagnostic[];
}

/** Parse, check and convert YAML text; problems come back as diagnostics, never as a throw. */
export function readYaml(source: string, file: string, opts: YamlReadOptions = {}): YamlRead {
  const lc = new LineCounter();
  const deep = flowDepthOverflow(source);
  if (deep !== undefined) {
    // refused before yaml sees the text: its parser recurses once per level of flow nesting
    const line = countLines(source, deep);
    const col = deep - (source.lastIndexOf('\n', deep - 1) + 1) + 1;
    return { doc: parseDocument(''), lc, data: undefined, diagnostics: [{ file, line, col, message: tooDeep(), length: 1 }] };
  }
  const doc = parseDocument(source, { lineCounter: lc, uniqueKeys: !opts.duplicateMessage, prettyErrors: false, logLevel: 'error', schema: 'core' });
  const diagnostics = syntaxErrors(doc, lc, file, opts);
  // an unknown tag (`!!set`, `!!binary`, `!custom`) would be dropped silently and the value read as plain text or a map
  for (const w of doc.warnings) {
    if (w.code === 'TAG_RESOLVE_FAILED') diagnostics.push({ file, ...lc.linePos(w.pos[0]), message: `${w.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace('Unresolved tag', 'unsupported tag')} (stigmer reads plain YAML: text, numbers, true/false, lists and maps)`, length: Math.max(1, w.pos[1] - w.pos[0]) });
  }
  if (diagnostics.length) return { doc, lc, data: undefined, diagnostics };
  diagnostics.push(...checkNodes(doc, lc, file, source, opts));
  if (diagnostics.length) return { doc, lc, data: undefined, diagnostics };
  let data: unknown;
  try {
    // aliases were bounded above (MAX_EXPANSION), so yaml's own per-anchor count is not needed
    data = doc.toJS({ maxAliasCount: -1 });
  } catch (err) {
    return { doc, lc, data: undefined, diagnostics: [{ file, line: 1, col: 1, message: `cannot read this YAML: ${(err as Error).message}`, length: 1 }] };
  }
  return { doc, lc, data, diagnostics };
}

function countLines(source: string, end: number): number {
  let n = 1;
  for (let i = source.indexOf('\n'); i >= 0 && i < end; i = source.indexOf('\n', i + 1)) n++;
  return n;
}

function tooDeep(): string {
  return `nested more than ${MAX_DEPTH} levels deep`;
}

/** yaml's syntax errors, one diagnostic each, in words that do not name the library's API. */
function syntaxErrors(doc: Document, lc: LineCounter, file: string, opts: YamlReadOptions): Diagnostic[] {
  return doc.errors.map((e) => {
    const { line, col } = e.pos[0] >= 0 ? lc.linePos(e.pos[0]) : { line: 1, col: 1 };
    let message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    if (e.code === 'MULTIPLE_DOCS') message = 'a second YAML document starts here; the file must hold one document (remove the "---" line and what follows, or merge them)';
    else if (e.code === 'RESOURCE_EXHAUSTION' || /call stack/i.test(message)) message = tooDeep();
    message = `${opts.prefix ?? ''}${message}`;
    const length = Math.max(1, e.pos[1] - e.pos[0]);
    return opts.underline ? { file, line, col, message, length } : { file, line, col, message };
  });
}

/**
 * The offset where `[`/`{` flow nesting first passes MAX_DEPTH, or undefined. A cheap scan that
 * skips quoted text and comments, and counts a bracket only where YAML could open a collection.
 */
export function flowDepthOverflow(source: string): number | undefined {
  let depth = 0;
  let prev = '\n'; // the last character that is not a space or tab
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '"' || c === "'") {
      if (!/[\s:,[{\-?]/.test(prev)) {
        prev = c;
        continue;
      }
      // skip the quoted scalar ('' and \" escape the quote)
      for (i++; i < source.length; i++) {
        if (c === '"' && source[i] === '\\') i++;
        else if (source[i] === c) {
          if (c === "'" && source[i + 1] === "'") i++;
          else break;
        }
      }
      prev = c;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(source[i - 1]!))) {
      while (i < source.length && source[i] !== '\n') i++;
      prev = '\n';
      continue;
    }
    if ((c === '[' || c === '{') && /[\s:,[{\-?]/.test(prev)) {
      if (++depth > MAX_DEPTH) return i;
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
    if (c !== ' ' && c !== '\t') prev = c;
  }
  return undefined;
}

/** The node checks (depth, aliases, keys, numbers, duplicates) in one walk in document order. */
function checkNodes(doc: Document, lc: LineCounter, file: string, source: string, opts: YamlReadOptions): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (node: { range?: [number, number, number] | null } | null | undefined, message: string): void => {
    const range = node?.range;
    out.push({ file, ...lc.linePos(range?.[0] ?? 0), message, length: range ? Math.max(1, Math.min(range[1] - range[0], 80)) : 1 });
  };
  const anchors = new Map<string, Node>(); // anchor name -> the last node that set it, so far
  const sizes = new Map<Node, number>(); // expanded size of each anchored node, once done
  const open = new Set<Node>(); // anchored nodes being walked (an alias to one is recursive)
  let expanded = 0;
  let stopped = false;

  /** Walk a node; returns its expanded size (nodes, aliases counted as what they stand for). */
  const walk = (node: unknown, depth: number, path: string[]): number => {
    if (stopped || node === null || node === undefined) return 0;
    if (depth > MAX_DEPTH) {
      at(node as Node, tooDeep());
      stopped = true;
      return 0;
    }
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target) {
        at(node, `unknown alias *${node.source}: no anchor &${node.source} before it`);
        return 0;
      }
      if (open.has(target)) {
        at(node, `alias *${node.source} is inside the node it stands for (a structure that contains itself)`);
        return 0;
      }
      const size = sizes.get(target) ?? 1;
      expanded += size;
      if (expanded > MAX_EXPANSION) {
        at(node, `aliases expand this document to more than ${MAX_EXPANSION} values (each *${node.source} copies ${size})`);
        stopped = true;
      }
      return size;
    }
    const anchored = (node as { anchor?: string }).anchor;
    if (anchored) {
      open.add(node as Node);
      anchors.set(anchored, node as Node);
    }
    let size = 1;
    expanded++;
    if (isMap(node)) {
      const seen = opts.duplicateMessage ? new Map<string, number>() : undefined;
      for (const pair of node.items) {
        if (stopped) break;
        const key = pair.key as unknown;
        const keyTarget = isAlias(key) ? anchors.get(key.source) : key;
        if (isMap(keyTarget) || isSeq(keyTarget)) {
          at(key as Node, `a key must be text or a number, got a ${isMap(keyTarget) ? 'map' : 'list'}`);
          continue;
        }
        size += walk(key, depth + 1, path);
        const name = isScalar(keyTarget) ? String(keyTarget.value) : '';
        if (seen && isScalar(key)) {
          const first = seen.get(name);
          if (first !== undefined) at(key, opts.duplicateMessage!(path, name, first));
          else seen.set(name, lc.linePos(key.range?.[0] ?? 0).line);
        }
        size += walk(pair.value, depth + 1, [...path, name]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        // `[a: 1]` holds a pair; its key needs the same check as a map's
        if (isPair(item)) {
          if (isMap(item.key) || isSeq(item.key)) at(item.key as Node, `a key must be text or a number, got a ${isMap(item.key) ? 'map' : 'list'}`);
          else size += walk(item.key, depth + 1, path) + walk(item.value, depth + 1, [...path, String(i)]);
        } else size += walk(item, depth + 1, [...path, String(i)]);
      });
    } else if (isScalar(node) && typeof node.value === 'number' && !Number.isFinite(node.value)) {
      const text = node.range ? source.slice(node.range[0], node.range[1]) : String(node.value);
      at(node, `expected a finite number, got ${text}`);
    }
    if (anchored) {
      open.delete(node as Node);
      sizes.set(node as Node, size);
    }
    return size;
  };
  walk(doc.contents, 0, []);
  return out;
}
